package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/evflow/evflow/infra/httpapi"
)

// TestLaunchIDsSurviveRetries checks that Launch gives each launch without
// an id a new one before the first attempt, sends the same ids on every
// retry, keeps the caller's ids and leaves the caller's slice alone.
func TestLaunchIDsSurviveRetries(t *testing.T) {
	api := newFakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < 3 {
			answerJSON(w, http.StatusServiceUnavailable, "", `{"error":"try again"}`)
			return
		}
		answerJSON(w, http.StatusAccepted, "", `{"accepted":3}`)
	})
	c := newClient(t, api.URL)
	ls := launches("app-1", 3, 2)
	ls[1].ID = "mine"
	n, err := c.Launch(context.Background(), ls...)
	if err != nil || n != 3 {
		t.Fatalf("Launch: %d, %v; want 3 accepted", n, err)
	}
	if ls[0].ID != "" || ls[1].ID != "mine" || ls[2].ID != "" {
		t.Errorf("the caller's launches were modified: %+v", ls)
	}
	reqs := api.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	var first httpapi.LaunchBatch
	if err := json.Unmarshal([]byte(reqs[0].body), &first); err != nil {
		t.Fatalf("decode the first batch: %v", err)
	}
	ids := map[string]bool{}
	for i, l := range first.Launches {
		if l.ID == "" || ids[l.ID] || (i == 1) != (l.ID == "mine") {
			t.Errorf("launch %d sent with id %q, want a new unique id (the caller's for launch 1)", i, l.ID)
		}
		ids[l.ID] = true
	}
	for i, r := range reqs[1:] {
		if r.body != reqs[0].body || r.path != "/v1/launches" {
			t.Errorf("retry %d sent %s %s, want the first batch again: %s", i+1, r.path, r.body, reqs[0].body)
		}
	}

	if n, err := c.Launch(context.Background()); n != 0 || err != nil || len(api.requests()) != 3 {
		t.Errorf("empty Launch: %d, %v, %d requests; want nothing sent", n, err, len(api.requests()))
	}
}

// TestSendKeepsCallerID checks that a command's own id is sent on every
// attempt and returned.
func TestSendKeepsCallerID(t *testing.T) {
	api := newFakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			answerJSON(w, http.StatusServiceUnavailable, "0", concurrentUpdate)
			return
		}
		answerJSON(w, http.StatusOK, "", `{"command_id":"cmd-7","event_id":"cmd-7","duplicate":true}`)
	})
	cmd := createCmd
	cmd.ID = "cmd-7"
	res, err := newClient(t, api.URL).Send(context.Background(), cmd)
	if err != nil || res.CommandID != "cmd-7" || !res.Duplicate {
		t.Fatalf("Send: %+v, %v; want the duplicate answer for cmd-7", res, err)
	}
	for _, r := range api.requests() {
		var sent struct{ ID string }
		if err := json.Unmarshal([]byte(r.body), &sent); err != nil || sent.ID != "cmd-7" {
			t.Errorf("sent %s, want id cmd-7", r.body)
		}
	}
}
