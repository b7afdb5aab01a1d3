package client_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/client"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// TestClientAgainstReplica drives an app through its lifecycle, reports
// launches and reads the projections back, all against a real replica, and
// checks that refused commands come back as *APIError without retries.
func TestClientAgainstReplica(t *testing.T) {
	base := startReplica(t)
	ctx := testenv.Context(t)
	ct := &countingTransport{}
	c := newClient(t, base, client.WithHTTPClient(&http.Client{Transport: ct, Timeout: 30 * time.Second}))
	const appID, tenant = "app-lifecycle", "acme"

	create := mustSend(t, ctx, c, handlers.Command{Type: handlers.CmdCreate, Tenant: tenant, AppID: appID, Name: "Lifecycle"})
	if create.CommandID == "" || create.EventID != create.CommandID || create.Type != events.TypeAppCreated ||
		create.Position == 0 || create.Duplicate {
		t.Fatalf("create: got %+v, want a generated id, the app.created event and a position", create)
	}
	// The server decides each command against the document projection:
	// a command sent before it applied its predecessor would be decided
	// against the stale state (404 or 409), so wait for it.
	waitApplied(t, ctx, c, appID, create.Position)
	pos := create.Position
	for _, cmd := range []handlers.Command{
		{ID: "submit-1", Type: handlers.CmdSubmitVersion, Version: "1.0.0", Notes: "first"},
		{Type: handlers.CmdApproveVersion, Version: "1.0.0"},
		{Type: handlers.CmdPublishRelease, Version: "1.0.0"},
	} {
		cmd.Tenant, cmd.AppID = tenant, appID
		res := mustSend(t, ctx, c, cmd)
		if cmd.ID != "" && res.CommandID != cmd.ID {
			t.Errorf("%s: command id %q, want the caller's %q", cmd.Type, res.CommandID, cmd.ID)
		}
		if res.Position <= pos {
			t.Errorf("%s: position %d, want after %d", cmd.Type, res.Position, pos)
		}
		pos = res.Position
		waitApplied(t, ctx, c, appID, pos)
	}

	app, err := c.App(ctx, appID)
	if err != nil {
		t.Fatalf("App: %v", err)
	}
	if app.Release != "1.0.0" || len(app.Versions) != 1 || app.Versions[0].Status != projections.VersionApproved ||
		app.Tenant != tenant || app.Name != "Lifecycle" {
		t.Fatalf("App: got %+v, want release 1.0.0 with its one approved version", app)
	}
	testenv.WaitFor(t, waitTimeout, func() error {
		rel, err := c.Release(ctx, appID)
		if err != nil {
			return err
		}
		if rel.AppID != appID || rel.Version != "1.0.0" || rel.Position != pos {
			t.Fatalf("Release: got %+v, want 1.0.0 at position %d", rel, pos)
		}
		return nil
	})

	t.Run("refusals are APIErrors and are not retried", func(t *testing.T) {
		cases := []struct {
			name                string
			call                func() error
			key                 string
			status              int
			field, rule, substr string
		}{
			{name: "approve twice", key: "POST /v1/commands", status: http.StatusConflict, rule: handlers.RuleVersionNotSubmitted,
				call: func() error {
					_, err := c.Send(ctx, handlers.Command{Type: handlers.CmdApproveVersion, Tenant: tenant, AppID: appID, Version: "1.0.0"})
					return err
				}},
			{name: "validation", key: "POST /v1/commands", status: http.StatusBadRequest, field: "version",
				call: func() error {
					_, err := c.Send(ctx, handlers.Command{Type: handlers.CmdSubmitVersion, Tenant: tenant, AppID: appID})
					return err
				}},
			{name: "other tenant", key: "POST /v1/commands", status: http.StatusForbidden,
				call: func() error {
					_, err := c.Send(ctx, handlers.Command{Type: handlers.CmdSubmitVersion, Tenant: "other", AppID: appID, Version: "2.0.0"})
					return err
				}},
			{name: "invalid launch", key: "POST /v1/launches", status: http.StatusBadRequest, field: "launches[1].device_id",
				call: func() error {
					ls := launches(appID, 2, 2)
					ls[1].DeviceID = ""
					_, err := c.Launch(ctx, ls...)
					return err
				}},
			{name: "unknown app", key: "GET /v1/apps/no-such-app", status: http.StatusNotFound, substr: "not found",
				call: func() error { _, err := c.App(ctx, "no-such-app"); return err }},
			{name: "bad day", key: "GET /v1/top", status: http.StatusBadRequest, field: "day",
				call: func() error { _, err := c.Top(ctx, "May 1st", 3); return err }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := ct.count(tc.key)
				err := tc.call()
				apiErr := apiError(t, err)
				if apiErr.Status != tc.status || apiErr.Field != tc.field || apiErr.Rule != tc.rule ||
					apiErr.Message == "" || !strings.Contains(apiErr.Message, tc.substr) {
					t.Errorf("got %#v, want status %d, field %q, rule %q", apiErr, tc.status, tc.field, tc.rule)
				}
				if client.IsRetryable(err) {
					t.Errorf("IsRetryable(%v) = true", err)
				}
				if n := ct.count(tc.key) - before; n != 1 {
					t.Errorf("%s sent %d times, want once (no retry)", tc.key, n)
				}
			})
		}
	})

	t.Run("launches", func(t *testing.T) {
		ls := launches(appID, 10, 3)
		n, err := c.Launch(ctx, ls...)
		if err != nil || n != 10 {
			t.Fatalf("Launch: %d, %v; want 10 accepted", n, err)
		}
		for i, l := range ls {
			if l.ID != "" {
				t.Fatalf("Launch modified the caller's launch %d: id %q", i, l.ID)
			}
		}
		testenv.WaitFor(t, waitTimeout, func() error {
			st, err := c.Stats(ctx, appID, launchDay)
			if err != nil {
				return err
			}
			if st.Launches != 10 || st.StoredLaunches != 10 || st.UniqueDevices != 3 {
				return fmt.Errorf("stats %+v, want 10 launches (both stores) from 3 devices", st)
			}
			return nil
		})
		top, err := c.Top(ctx, launchDay, 5)
		if err != nil {
			t.Fatalf("Top: %v", err)
		}
		if top.Day != launchDay || len(top.Apps) != 1 || top.Apps[0].AppID != appID || top.Apps[0].Launches != 10 {
			t.Fatalf("Top: got %+v, want %s with 10 launches", top, appID)
		}
	})
}

func TestNewValidates(t *testing.T) {
	for _, base := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://host/?q=1", "http://user:pw@host"} {
		if _, err := client.New(base); err == nil || !strings.Contains(err.Error(), "base URL") {
			t.Errorf("New(%q): %v, want a base URL error", base, err)
		}
	}
	_, err := client.New("http://host", client.WithRetries(-1), client.WithBackoff(2*time.Second, time.Second),
		client.WithHTTPClient(nil), client.WithUserAgent(" "))
	for _, opt := range []string{"WithRetries", "WithBackoff", "WithHTTPClient", "WithUserAgent"} {
		if err == nil || !strings.Contains(err.Error(), opt) {
			t.Errorf("New with a bad %s: %v, want it named", opt, err)
		}
	}
	if _, err := client.New("http://host", client.WithBackoff(0, time.Second)); err == nil {
		t.Error("New with a zero minimum backoff: no error")
	}
}

func TestBaseURLPrefixAndUserAgent(t *testing.T) {
	api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerJSON(w, http.StatusOK, "", `{"day":"2024-05-01","apps":[]}`)
	})
	c, err := client.New(api.URL + "/evflow/")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := c.Top(context.Background(), launchDay, 3); err != nil {
		t.Fatalf("Top: %v", err)
	}
	r := api.requests()[0]
	if r.path != "/evflow/v1/top?day=2024-05-01&n=3" || r.header.Get("User-Agent") != client.DefaultUserAgent {
		t.Errorf("sent %s with User-Agent %q, want the prefix kept and the default agent", r.path, r.header.Get("User-Agent"))
	}
}
