package handlers

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/evflow/evflow/events"
)

func TestCommandTypesMapToRegisteredEvents(t *testing.T) {
	registered := strings.Join(events.Domain().Types(), " ")
	seen := map[string]bool{}
	for _, ct := range CommandTypes() {
		et, ok := EventType(ct)
		if !ok || !strings.Contains(registered, et) {
			t.Errorf("EventType(%q) = %q, %v: want a registered event type", ct, et, ok)
		}
		if seen[et] {
			t.Errorf("event type %q emitted by two command types", et)
		}
		seen[et] = true
	}
	if et, ok := EventType("app.delete"); ok {
		t.Errorf("EventType(app.delete) = %q, true; want false", et)
	}
}

func TestCommandValidate(t *testing.T) {
	valid := with(cmdCreate(), func(c *Command) { c.ID = "cmd-1" })
	cases := []struct {
		name  string
		cmd   Command
		field string
	}{
		{"valid", valid, ""},
		{"unknown type", with(valid, func(c *Command) { c.Type = "app.delete" }), "type"},
		{"no type", with(valid, func(c *Command) { c.Type = "" }), "type"},
		{"type checked first", Command{Type: "nope"}, "type"},
		{"no id", with(valid, func(c *Command) { c.ID = "" }), "id"},
		{"id with dot", with(valid, func(c *Command) { c.ID = "cmd.1" }), "id"},
		{"id too long", with(valid, func(c *Command) { c.ID = strings.Repeat("i", 129) }), "id"},
		{"id before tenant", with(valid, func(c *Command) { c.ID, c.Tenant = "", "" }), "id"},
		{"tenant before app id", with(valid, func(c *Command) { c.Tenant, c.AppID = "", "" }), "tenant"},
		{"app id wildcard", with(valid, func(c *Command) { c.AppID = "app-*" }), "app_id"},
		{"unused fields ignored", with(valid, func(c *Command) { c.Version, c.Org, c.Reason = "bad version", "bad org", "" }), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cmd.Validate()
			var verr *ValidationError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.field != "" && (!errors.As(err, &verr) || verr.Field != tc.field):
				t.Fatalf("Validate() = %v, want a ValidationError of field %q", err, tc.field)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	verr := &ValidationError{Field: "launches[3].device_id", Reason: "must be 1-128 bytes"}
	if got, want := verr.Error(), "invalid launches[3].device_id: must be 1-128 bytes"; got != want {
		t.Errorf("ValidationError = %q, want %q", got, want)
	}
	_, err := Decide(given(t, cmdCreate()), with(cmdApprove("9.9"), func(c *Command) { c.ID = "x" }), testNow())
	if got, want := err.Error(), `version "9.9" of app "app-1" was never submitted`; got != want {
		t.Errorf("RuleError = %q, want %q", got, want)
	}
	_, err = Decide(given(t, cmdCreate()), with(cmdRollback(), func(c *Command) { c.ID, c.Tenant = "x", other }), testNow())
	if got, want := err.Error(), `app "app-1", tenant "org-2": tenant does not own the app`; got != want {
		t.Errorf("forbidden = %q, want %q", got, want)
	}
}

func TestCommandAndLaunchJSON(t *testing.T) {
	var c Command
	err := json.Unmarshal([]byte(`{"id":"c-1","type":"app.reject_version","tenant":"org-1","app_id":"app-1",
		"name":"n","version":"1.0","notes":"x","reason":"crashes","org":"org-2"}`), &c)
	want := Command{ID: "c-1", Type: CmdRejectVersion, Tenant: owner, AppID: appID, Name: "n", Version: "1.0",
		Notes: "x", Reason: "crashes", Org: other}
	if err != nil || c != want {
		t.Errorf("command = %+v, %v; want %+v", c, err, want)
	}
	var l Launch
	err = json.Unmarshal([]byte(`{"id":"l-1","app_id":"app-1","version":"1.0","device_id":"d","org":"org-2",
		"at":"2025-03-01T10:30:00Z"}`), &l)
	wantL := Launch{ID: "l-1", AppID: appID, Version: "1.0", DeviceID: "d", Org: other, At: testNow().UTC()}
	if err != nil || l != wantL {
		t.Errorf("launch = %+v, %v; want %+v", l, err, wantL)
	}
}
