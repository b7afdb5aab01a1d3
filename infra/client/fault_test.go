package client_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/client"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// TestRetriesApplyOnce sends commands and launches through a proxy that
// mistreats the first request of each, in front of a real replica, so that
// the client retries with the same ids while the replica also sees the
// first request:
//
//   - lost answer: the replica applies the request, the client gets a
//     closed connection (commands) or a 502 (launches);
//   - late delivery: the client times out, its retry is applied, and then
//     the original reaches the replica.
//
// Every command and launch must be applied exactly once: of the two
// answers the replica gave, one applied the event and the other is a
// duplicate of it; the stream holds one event per command and launch; and
// the counts stay put once the projections have applied the whole stream.
func TestRetriesApplyOnce(t *testing.T) {
	cases := []struct {
		name  string
		fault fault
		opts  []client.Option
	}{
		{"lost answer", loseAnswer, nil},
		{"late delivery", deliverLate, []client.Option{client.WithHTTPClient(&http.Client{Timeout: time.Second})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := startReplica(t)
			proxy := newFlakyProxy(t, base, tc.fault)
			c := newClient(t, proxy.URL, tc.opts...)
			appliesOnce(t, base, proxy, c)
		})
	}
}

// appliesOnce runs the scenario of [TestRetriesApplyOnce].
func appliesOnce(t *testing.T, base string, proxy *flakyProxy, c *client.Client) {
	ctx := testenv.Context(t)
	const appID, tenant = "app-flaky", "acme"
	for _, cmd := range []handlers.Command{
		{Type: handlers.CmdCreate, Name: "Flaky"},
		{Type: handlers.CmdSubmitVersion, Version: "1.0.0"},
		{Type: handlers.CmdApproveVersion, Version: "1.0.0"},
		{Type: handlers.CmdPublishRelease, Version: "1.0.0"},
	} {
		cmd.Tenant, cmd.AppID = tenant, appID
		res := mustSend(t, ctx, c, cmd)
		forwards, other := proxy.seen(t, res.CommandID)
		var first handlers.Result
		if err := json.Unmarshal(other.body, &first); err != nil || other.status != http.StatusOK || forwards != 2 {
			t.Fatalf("%s: forwarded %d times, the answer the client did not get was %d %s; want 2 forwards answered 200",
				cmd.Type, forwards, other.status, other.body)
		}
		pos, err := onceApplied(cmd, res, first)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: the client got %+v; the replica also answered %+v", cmd.Type, res, first)
		waitApplied(t, ctx, c, appID, pos)
	}
	app, err := c.App(ctx, appID)
	if err != nil {
		t.Fatalf("App: %v", err)
	}
	if len(app.Versions) != 1 || app.Versions[0].Status != projections.VersionApproved ||
		app.Release != "1.0.0" || len(app.Releases) != 1 {
		t.Fatalf("App: got %+v, want one approved version released once", app)
	}

	ls := launches(appID, 5, 5)
	if n, err := c.Launch(ctx, ls...); err != nil || n != 5 {
		t.Fatalf("Launch: %d, %v; want 5 accepted", n, err)
	}
	// One distinct batch key: the retry carried the same five ids.
	batches := proxy.keysOf("/v1/launches")
	if len(batches) != 1 || strings.Count(batches[0], ",") != 4 {
		t.Fatalf("launch batches sent: %q, want one batch of five ids, retried unchanged", batches)
	}
	if forwards, other := proxy.seen(t, batches[0]); forwards != 2 || other.status != http.StatusAccepted {
		t.Fatalf("launch batch forwarded %d times, the answer the client did not get was %d %s; want 2 forwards, both accepted",
			forwards, other.status, other.body)
	}
	checkStats := func() error {
		st, err := c.Stats(ctx, appID, launchDay)
		if err != nil {
			return err
		}
		if st.Launches != 5 || st.StoredLaunches != 5 || st.UniqueDevices != 5 {
			return fmt.Errorf("stats %+v, want 5 launches (both stores) from 5 devices", st)
		}
		return nil
	}
	testenv.WaitFor(t, waitTimeout, checkStats)

	// Once the projections have applied the whole stream nothing more can
	// arrive: the counts must still be 5, and the stream must hold one
	// event per command and launch.
	st := waitCaughtUp(t, ctx, base)
	if want := uint64(4 + 5); st.StreamMessages != want || st.StreamLast != want {
		t.Fatalf("stream holds %d events up to %d, want %d: a retry was appended twice", st.StreamMessages, st.StreamLast, want)
	}
	if err := checkStats(); err != nil {
		t.Fatalf("after the projections caught up: %v", err)
	}
}

// onceApplied checks the two answers the replica gave to the two requests
// of cmd: both name the same event, and either one is a duplicate or both
// report the same position (the broker deduplicated the second append). It
// returns the event's position.
func onceApplied(cmd handlers.Command, a, b handlers.Result) (uint64, error) {
	typ, _ := handlers.EventType(cmd.Type)
	pos := max(a.Position, b.Position)
	same := a.EventID != "" && a.EventID == b.EventID && a.Type == typ && b.Type == typ
	once := a.Duplicate != b.Duplicate || (!a.Duplicate && !b.Duplicate && a.Position == b.Position)
	if !same || !once || pos == 0 {
		return 0, fmt.Errorf("%s: the replica answered %+v and %+v; want one event, applied once", cmd.Type, a, b)
	}
	return pos, nil
}
