package platform_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestBadInputGetsAClearErrorAndPublishesNothing(t *testing.T) {
	r := newStand(t).start(t)
	r.command(cmd("app.create", "weather", "name", "Weather"))
	r.command(cmd("app.submit_version", "weather", "version", "1.0.0"))
	r.caughtUp()

	cases := []struct {
		name        string
		path        string
		body        any
		code        int
		field, rule string
	}{
		{"malformed JSON", "/v1/commands", `{"type": "app.create",`, 400, "body", ""},
		{"not an object", "/v1/commands", `[1,2]`, 400, "", ""},
		{"unknown command", "/v1/commands", cmd("app.explode", "weather"), 400, "type", ""},
		{"unknown field", "/v1/commands", `{"type":"app.create","tenant":"org1","app_id":"x","name":"X","colour":"red"}`, 400, "colour", ""},
		{"missing field", "/v1/commands", cmd("app.submit_version", "weather"), 400, "version", ""},
		{"wrong JSON type", "/v1/commands", `{"type":"app.create","tenant":"org1","app_id":7}`, 400, "app_id", ""},
		{"bad app id", "/v1/commands", cmd("app.create", "no spaces allowed", "name", "X"), 400, "app_id", ""},
		{"missing reason", "/v1/commands", cmd("app.reject_version", "weather", "version", "1.0.0"), 400, "reason", ""},
		{"publish unapproved", "/v1/commands", cmd("app.publish_release", "weather", "version", "1.0.0"), 409, "", "version_not_approved"},
		{"create twice", "/v1/commands", cmd("app.create", "weather", "name", "Again"), 409, "", "app_exists"},
		{"rollback without release", "/v1/commands", cmd("app.rollback_release", "weather"), 409, "", "no_release"},
		{"unknown app", "/v1/commands", cmd("app.submit_version", "nope", "version", "1.0.0"), 404, "", ""},
		{"not the owner", "/v1/commands", map[string]any{"type": "app.grant", "tenant": "org9", "app_id": "weather", "org": "org2"}, 403, "", ""},
		{"launch without device", "/v1/launches", `{"launches":[{"app_id":"weather","org":"org1","at":"2026-11-20T08:00:00Z"},{"app_id":"weather","org":"org1"}]}`, 400, "launches[0].device_id", ""},
		{"oversize body", "/v1/launches", `{"launches":[` + strings.Repeat(`{"app_id":"weather"},`, 60000) + `{}]}`, 413, "body", ""},
	}
	before := r.status().StreamMessages
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e struct{ Error, Field, Rule string }
			code := r.call(http.MethodPost, tc.path, tc.body, &e)
			if code != tc.code {
				t.Fatalf("status %d (%+v), want %d", code, e, tc.code)
			}
			if e.Error == "" {
				t.Fatalf("no error message in the answer")
			}
			if tc.field != "" && e.Field != tc.field {
				t.Fatalf("field %q (%s), want %q", e.Field, e.Error, tc.field)
			}
			if tc.rule != "" && e.Rule != tc.rule {
				t.Fatalf("rule %q (%s), want %q", e.Rule, e.Error, tc.rule)
			}
			if after := r.status().StreamMessages; after != before {
				t.Fatalf("stream grew from %d to %d events on a refused request", before, after)
			}
		})
	}
}
