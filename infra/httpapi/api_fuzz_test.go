package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/projections"
)

// fuzzMaxBody is the API's body limit in FuzzAPI, small enough for the
// fuzzer to reach.
const fuzzMaxBody = 2048

// Routes FuzzAPI calls; route picks one (modulo their number).
const (
	routeCommand = iota
	routeLaunches
	routeApp
	routeRelease
	routeStats
	routeTop
	routeStatus
	routeReady
	routeHealth
	routeDLQList
	routeDLQShow
	routeDLQDelete
	routeDLQRedrive
	routeDLQPurge
	routeRaw // method q2, target seg as it is
	routes
)

// FuzzAPI sends one request to the API over in-memory fakes of its
// dependencies, with the real command service deciding commands: a body
// for POST /v1/commands and /v1/launches, or path segments and query
// values (app ids, day, n, projection, seq) for the other routes. The API
// must not panic. Every answer of one of its handlers is JSON with a
// status under 500, but 503 when the fakes play an unavailable event
// stream (down); an error answer says what is wrong, a 400 names the
// field, a 409 the rule, a 413 the body. A refused command or batch
// appends nothing; an accepted one appends its events. Answers of the
// router itself (no such route or method; a path to clean) are only
// checked to be under 500 (they are text, not JSON).
func FuzzAPI(f *testing.F) {
	cmd := func(s string) []byte { return []byte(s) }
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"id":"c-1","type":"app.submit_version","tenant":"org-1","app_id":"app-1","version":"2.0.0","notes":"n"}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.create","tenant":"org-1","app_id":"app-2","name":"New"}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.create","tenant":"org-1","app_id":"app-2","name":"New"}`), true)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.create","tenant":"org-1","app_id":"app-1","name":"Again"}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.rollback_release","tenant":"org-2","app_id":"app-1"}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.grant","tenant":"org-1","app_id":"nope","org":"org-2"}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.create","tenant":"org-1","app_id":"app-2","name":"x","extra":1}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.create","tenant":"org-1","app_id":"app-2","name":"x"} {}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.create","tenant":1}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":"app.create","name":"`+"\xff"+`"}`), false)
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"type":`), false)
	for _, body := range []string{``, `null`, `[]`, `1`, `"x"`, `{"\`, strings.Repeat("[", 5000)} {
		f.Add(uint8(routeCommand), "", "", "", cmd(body), false)
	}
	f.Add(uint8(routeCommand), "", "", "", cmd(`{"name":"`+strings.Repeat("n", fuzzMaxBody)+`"}`), false)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":[{"id":"l-1","app_id":"app-1","version":"1.0.0","device_id":"d-1","org":"org-1","at":"2026-03-01T10:00:00Z"}]}`), false)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":[{"app_id":"app-1","device_id":"d-1","org":"org-1","at":"2026-03-01T10:00:00Z"}]}`), true)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":[{"app_id":"app-1","device_id":"d-1","org":"org-1","at":"0000-01-01T00:00:00+01:00"}]}`), false)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":[{"app_id":"app-1","device_id":"d-1","org":"org-1","at":"2026-03-01T10:00:00+24:00"}]}`), false)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":[{"app_id":"app-1","device_id":"d-1","org":"org-1","at":"noon"}]}`), false)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":[{}]}`), false)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":[{},{},{},{},{}]}`), false)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":null}`), false)
	f.Add(uint8(routeLaunches), "", "", "", cmd(`{"launches":{}}`), false)
	f.Add(uint8(routeApp), "app-1", "", "", []byte(nil), false)
	f.Add(uint8(routeApp), "app-1", "", "", []byte(nil), true)
	f.Add(uint8(routeApp), "nope", "", "", []byte(nil), false)
	f.Add(uint8(routeApp), "app.1/x", "", "", []byte(nil), false)
	f.Add(uint8(routeApp), "", "", "", []byte(nil), false)
	f.Add(uint8(routeRelease), "app-1", "", "", []byte(nil), false)
	f.Add(uint8(routeRelease), "nope", "", "", []byte(nil), false)
	f.Add(uint8(routeStats), "app-1", "2026-03-01", "", []byte(nil), false)
	f.Add(uint8(routeStats), "app-1", "2026-02-30", "", []byte(nil), false)
	f.Add(uint8(routeStats), "app-1", "", "", []byte(nil), true)
	f.Add(uint8(routeTop), "", "2026-03-01", "3", []byte(nil), false)
	f.Add(uint8(routeTop), "", "", "0", []byte(nil), false)
	f.Add(uint8(routeTop), "", "", "1001", []byte(nil), false)
	f.Add(uint8(routeTop), "", "", "99999999999999999999", []byte(nil), false)
	f.Add(uint8(routeTop), "", "+0001-01-01", "-1", []byte(nil), false)
	f.Add(uint8(routeStatus), "", "", "", []byte(nil), false)
	f.Add(uint8(routeReady), "", "", "", []byte(nil), true)
	f.Add(uint8(routeHealth), "", "", "", []byte(nil), false)
	f.Add(uint8(routeDLQList), "", "redis", "", []byte(nil), false)
	f.Add(uint8(routeDLQShow), "1", "", "", []byte(nil), false)
	f.Add(uint8(routeDLQShow), "2", "", "", []byte(nil), false)
	f.Add(uint8(routeDLQShow), "0", "", "", []byte(nil), false)
	f.Add(uint8(routeDLQShow), "18446744073709551616", "", "", []byte(nil), false)
	f.Add(uint8(routeDLQDelete), "1", "", "", []byte(nil), false)
	f.Add(uint8(routeDLQDelete), "-1", "", "", []byte(nil), false)
	f.Add(uint8(routeDLQRedrive), "", "", "", []byte(nil), true)
	f.Add(uint8(routeDLQPurge), "", "mongo", "", []byte(nil), false)
	f.Add(uint8(routeRaw), "/v1/apps/app-1", "", "GET", []byte(nil), false)
	f.Add(uint8(routeRaw), "/v1/apps/../top?n=2", "", "GET", []byte(nil), false)
	f.Add(uint8(routeRaw), "/v1/commands", "", "PUT", []byte(`{}`), false)
	f.Add(uint8(routeRaw), "/v1/nothing", "", "GET", []byte(nil), false)
	f.Add(uint8(routeRaw), "/v1/top?n=%zz&day=%00", "", "GET", []byte(nil), false)
	f.Add(uint8(routeRaw), "/v1/apps/%2e%2e", "", "GET", []byte(nil), false)

	f.Fuzz(func(t *testing.T, route uint8, seg, q1, q2 string, body []byte, down bool) {
		s := newFuzzStore(t)
		s.down = down
		api := httpapi.New(httpapi.Config{
			Commands: handlers.NewService(s, s, handlers.Config{ConflictTimeout: time.Second}),
			Docs:     s, Hot: s, DeadLetters: s,
			Ready: func(context.Context) error {
				if s.down {
					return events.ErrUnavailable
				}
				return nil
			},
			Status:  func(context.Context) (any, error) { return map[string]uint64{"applied": uint64(len(s.stream))}, nil },
			MaxBody: fuzzMaxBody, AdminAPI: true,
			Logger: slog.New(slog.DiscardHandler),
		})
		req := fuzzRequest(route%routes, seg, q1, q2, body)
		if req == nil {
			return
		}
		before := len(s.stream)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		res := w.Result()
		got, _ := io.ReadAll(res.Body)
		desc := fmt.Sprintf("%s %s %q (down %v): %d %s", req.Method, req.URL, body, down, res.StatusCode, got)

		if res.StatusCode >= 500 && !(res.StatusCode == http.StatusServiceUnavailable && down) {
			t.Fatalf("%s", desc)
		}
		if routerAnswer(res) {
			return
		}
		checkAnswer(t, desc, res.StatusCode, got)
		appended := len(s.stream) - before
		switch {
		case res.StatusCode >= 400 && appended != 0:
			t.Fatalf("refused, yet %d events appended: %s", appended, desc)
		case res.StatusCode == http.StatusAccepted:
			var a struct{ Accepted int }
			if json.Unmarshal(got, &a) != nil || a.Accepted != appended {
				t.Fatalf("%d events appended: %s", appended, desc)
			}
		case res.StatusCode == http.StatusOK && req.URL.Path == "/v1/commands":
			var r handlers.Result
			if json.Unmarshal(got, &r) != nil || r.Duplicate != (appended == 0) || (!r.Duplicate && appended != 1) {
				t.Fatalf("%d events appended: %s", appended, desc)
			}
		}
	})
}

// fuzzRequest builds the request of route; nil when route is routeRaw and
// its target is not one an HTTP server would parse.
func fuzzRequest(route uint8, seg, q1, q2 string, body []byte) *http.Request {
	seg1 := url.PathEscape(seg)
	var method, target string
	switch route {
	case routeCommand:
		method, target = http.MethodPost, "/v1/commands"
	case routeLaunches:
		method, target = http.MethodPost, "/v1/launches"
	case routeApp:
		method, target = http.MethodGet, "/v1/apps/"+seg1
	case routeRelease:
		method, target = http.MethodGet, "/v1/apps/"+seg1+"/release"
	case routeStats:
		method, target = http.MethodGet, "/v1/apps/"+seg1+"/stats?"+url.Values{"day": {q1}}.Encode()
	case routeTop:
		method, target = http.MethodGet, "/v1/top?"+url.Values{"day": {q1}, "n": {q2}}.Encode()
	case routeStatus:
		method, target = http.MethodGet, "/v1/status"
	case routeReady:
		method, target = http.MethodGet, "/readyz"
	case routeHealth:
		method, target = http.MethodGet, "/healthz"
	case routeDLQList:
		method, target = http.MethodGet, "/v1/dlq?"+url.Values{"projection": {q1}}.Encode()
	case routeDLQShow:
		method, target = http.MethodGet, "/v1/dlq/"+seg1
	case routeDLQDelete:
		method, target = http.MethodDelete, "/v1/dlq/"+seg1
	case routeDLQRedrive:
		method, target = http.MethodPost, "/v1/dlq/redrive?"+url.Values{"projection": {q1}}.Encode()
	case routeDLQPurge:
		method, target = http.MethodDelete, "/v1/dlq?"+url.Values{"projection": {q1}}.Encode()
	default:
		method, target = q2, seg
		if !strings.HasPrefix(target, "/") {
			return nil
		}
	}
	req, err := http.NewRequest(method, "http://evflow.test"+target, bytes.NewReader(body))
	if err != nil {
		return nil
	}
	if req.URL.RawPath == "" && req.URL.Path == "" {
		return nil
	}
	return req
}

// routerAnswer reports whether res is the router's own answer, not one of
// the API's handlers': no route for the path (404) or the method (405),
// or a redirect to the clean path. Those are text or HTML.
func routerAnswer(res *http.Response) bool {
	switch res.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusMovedPermanently,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json")
	}
	return false
}

// checkAnswer asserts that an answer of one of the API's handlers is JSON
// and that an error answer explains itself.
func checkAnswer(t *testing.T, desc string, status int, body []byte) {
	t.Helper()
	if status == http.StatusNoContent {
		if len(body) != 0 {
			t.Fatalf("204 with a body: %s", desc)
		}
		return
	}
	if !json.Valid(body) {
		t.Fatalf("not JSON: %s", desc)
	}
	if status < 400 {
		return
	}
	var e struct{ Error, Field, Rule string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("error answer without an error: %s", desc)
	}
	switch {
	case status == http.StatusBadRequest && e.Field == "",
		status == http.StatusConflict && e.Rule == "",
		status == http.StatusRequestEntityTooLarge && e.Field != "body":
		t.Fatalf("error answer names no field or rule: %s", desc)
	}
}

// fuzzStore is the API's world in memory: an event stream with the apps
// folded from it (handlers.AppReader and Appender, Docs, Hot) and dead
// letters. While down, the stream and the stores fail with
// events.ErrUnavailable, as a broker or store that cannot be reached.
type fuzzStore struct {
	mu      sync.Mutex
	stream  []events.Envelope
	apps    map[string]projections.App
	letters map[uint64]bus.Letter
	down    bool
}

// newFuzzStore returns a store holding app-1 of org-1, released at
// version 1.0.0, and two dead letters (one whose event is not JSON).
func newFuzzStore(t *testing.T) *fuzzStore {
	s := &fuzzStore{apps: map[string]projections.App{}, letters: map[uint64]bus.Letter{
		1: {Seq: 1, Projection: projections.RedisName, Position: 7, AggregateType: "usage", AggregateID: "app-1",
			MessageID: "l-7", Payload: []byte(`{"id":"l-7"}`), Reason: "undecodable", Attempts: 1},
		2: {Seq: 2, Projection: projections.RedisName, Position: 9, MessageID: "x", Payload: []byte("\xff{"), Reason: "undecodable"},
	}}
	svc := handlers.NewService(s, s, handlers.Config{})
	for _, c := range []handlers.Command{
		{Type: handlers.CmdCreate, Name: "Weather"},
		{Type: handlers.CmdSubmitVersion, Version: "1.0.0"},
		{Type: handlers.CmdApproveVersion, Version: "1.0.0"},
		{Type: handlers.CmdPublishRelease, Version: "1.0.0"},
	} {
		c.ID, c.Tenant, c.AppID = fmt.Sprintf("seed-%d", len(s.stream)), "org-1", "app-1"
		if _, err := svc.Handle(context.Background(), c); err != nil {
			t.Fatalf("seed %s: %v", c.Type, err)
		}
	}
	return s
}

var errDown = fmt.Errorf("fuzz store down: %w", events.ErrUnavailable)

func (s *fuzzStore) App(_ context.Context, id string) (projections.App, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return projections.App{}, false, errDown
	}
	app, ok := s.apps[id]
	return app, ok, nil
}

// Append appends envs as bus.Appender does: each must encode, and an
// expected position must be the aggregate's last.
func (s *fuzzStore) Append(_ context.Context, expected *uint64, envs ...events.Envelope) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	for _, env := range envs {
		if _, err := events.Marshal(env); err != nil {
			return nil, err
		}
	}
	if expected != nil && len(envs) > 0 {
		if last := uint64(s.apps[envs[0].AggregateID].Position); envs[0].AggregateType == events.AggregateApp && last != *expected {
			return nil, fmt.Errorf("at %d, expected %d: %w", last, *expected, events.ErrConflict)
		}
	}
	reg := events.Domain()
	pos := make([]uint64, len(envs))
	for i, env := range envs {
		s.stream = append(s.stream, env)
		pos[i] = uint64(len(s.stream))
		if env.AggregateType != events.AggregateApp {
			continue
		}
		payload, err := reg.Decode(env)
		if err != nil {
			return nil, err
		}
		app := s.apps[env.AggregateID]
		app.Apply(projections.Event{Record: events.Record{Envelope: env, Position: pos[i]}, Payload: payload})
		s.apps[env.AggregateID] = app
	}
	return pos, nil
}

func (s *fuzzStore) DailyLaunches(_ context.Context, appID, day string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return 0, errDown
	}
	n, _ := s.launches(appID, day)
	return n, nil
}

func (s *fuzzStore) Release(_ context.Context, appID string) (string, uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return "", 0, false, errDown
	}
	app, ok := s.apps[appID]
	return app.Release, uint64(app.Position), ok, nil
}

func (s *fuzzStore) Launches(_ context.Context, appID, day string) (int64, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return 0, 0, errDown
	}
	n, uniq := s.launches(appID, day)
	return n, uniq, nil
}

func (s *fuzzStore) launches(appID, day string) (n, uniq int64) {
	devices := map[string]bool{}
	for _, env := range s.stream {
		if env.Type != events.TypeAppLaunched || env.AggregateID != appID || env.OccurredAt.UTC().Format(events.DayLayout) != day {
			continue
		}
		n++
		devices[string(env.Data)] = true
	}
	return n, int64(len(devices))
}

func (s *fuzzStore) Top(_ context.Context, day string, n int) ([]projections.AppCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	var out []projections.AppCount
	for id := range s.apps {
		if c, _ := s.launches(id, day); c > 0 && len(out) < n {
			out = append(out, projections.AppCount{AppID: id, Launches: c})
		}
	}
	return out, nil
}

func (s *fuzzStore) List(_ context.Context, projection string) ([]bus.Letter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	var out []bus.Letter
	for seq := uint64(1); seq <= 2; seq++ {
		if l, ok := s.letters[seq]; ok && (projection == "" || l.Projection == projection) {
			out = append(out, l)
		}
	}
	return out, nil
}

func (s *fuzzStore) Get(_ context.Context, seq uint64) (bus.Letter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.letters[seq]; ok && !s.down {
		return l, nil
	}
	return bus.Letter{}, errors.New("no letter " + strconv.FormatUint(seq, 10))
}

func (s *fuzzStore) Redrive(ctx context.Context, projection string) (any, error) {
	ls, err := s.List(ctx, projection)
	return map[string]int{"kept": len(ls)}, err
}

func (s *fuzzStore) Delete(_ context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.letters[seq]; !ok || s.down {
		return errors.New("no letter " + strconv.FormatUint(seq, 10))
	}
	delete(s.letters, seq)
	return nil
}

func (s *fuzzStore) Purge(ctx context.Context, projection string) (uint64, error) {
	ls, err := s.List(ctx, projection)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range ls {
		delete(s.letters, l.Seq)
	}
	return uint64(len(ls)), nil
}
