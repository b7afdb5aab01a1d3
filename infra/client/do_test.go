package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/client"
)

// seenRequest is a request a fakeAPI received.
type seenRequest struct {
	at     time.Time
	method string
	path   string
	body   string
	header http.Header
}

// fakeAPI is an httptest server whose answers a test scripts: answer gets
// the 1-based number of the request. It is for the retry policy only;
// behaviour of the API itself is tested against a real replica.
type fakeAPI struct {
	URL    string
	mu     sync.Mutex
	seen   []seenRequest
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

func newFakeAPI(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, seenRequest{at: time.Now(), method: r.Method, path: r.URL.RequestURI(), body: string(body), header: r.Header.Clone()})
		n := len(f.seen)
		f.mu.Unlock()
		f.answer(n, w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeAPI) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// answerJSON writes a JSON answer with an optional Retry-After.
func answerJSON(w http.ResponseWriter, status int, retryAfter, body string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

const concurrentUpdate = `{"error":"the app is changing concurrently","rule":"concurrent_update"}`

var createCmd = handlers.Command{Type: handlers.CmdCreate, Tenant: "acme", AppID: "app-1", Name: "One"}

func TestRetryUntilSuccess(t *testing.T) {
	api := newFakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1:
			answerJSON(w, http.StatusServiceUnavailable, "", concurrentUpdate)
		case 2:
			answerJSON(w, http.StatusBadGateway, "", "<html>bad gateway</html>")
		case 3:
			answerJSON(w, http.StatusGatewayTimeout, "", "")
		default:
			answerJSON(w, http.StatusOK, "", `{"command_id":"","type":"app.created","position":7}`)
		}
	})
	c := newClient(t, api.URL+"/", client.WithUserAgent("test-agent/2"))
	res, err := c.Send(context.Background(), createCmd)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := api.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	for i, r := range reqs {
		if r.body != reqs[0].body || r.method != http.MethodPost || r.path != "/v1/commands" ||
			r.header.Get("User-Agent") != "test-agent/2" || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("attempt %d: %s %s %q %v; want the first attempt's request again", i+1, r.method, r.path, r.body, r.header)
		}
	}
	if !strings.Contains(reqs[0].body, `"id":"`+res.CommandID+`"`) || res.CommandID == "" || res.Position != 7 {
		t.Errorf("result %+v, first body %s: want the generated id sent and returned", res, reqs[0].body)
	}
}

func TestRetriesExhausted(t *testing.T) {
	api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerJSON(w, http.StatusBadGateway, "", "<html>upstream is down</html>")
	})
	c := newClient(t, api.URL, client.WithRetries(3))
	res, err := c.Send(context.Background(), createCmd)
	if n := len(api.requests()); n != 4 {
		t.Fatalf("%d requests, want 4 (one and 3 retries)", n)
	}
	if apiErr := apiError(t, err); apiErr.Status != http.StatusBadGateway || !strings.Contains(apiErr.Message, "upstream is down") {
		t.Errorf("got %#v, want the 502 and its body", apiErr)
	}
	if !client.IsRetryable(err) || !strings.Contains(err.Error(), "giving up after 4 attempts") || res.CommandID == "" ||
		!strings.Contains(err.Error(), res.CommandID) {
		t.Errorf("error %q, result %+v: want a retryable error naming the attempts and the command id to retry with", err, res)
	}

	c = newClient(t, api.URL, client.WithRetries(0))
	before := len(api.requests())
	if _, err := c.Send(context.Background(), createCmd); err == nil || len(api.requests())-before != 1 {
		t.Errorf("WithRetries(0): %d requests, err %v; want one attempt and the error", len(api.requests())-before, err)
	}
}

func TestFinalAnswersAreNotRetried(t *testing.T) {
	cases := []struct {
		status      int
		body        string
		field, rule string
	}{
		{http.StatusBadRequest, `{"error":"invalid version: is required","field":"version"}`, "version", ""},
		{http.StatusForbidden, `{"error":"tenant does not own the app"}`, "", ""},
		{http.StatusNotFound, `{"error":"app not found"}`, "", ""},
		{http.StatusConflict, `{"error":"not awaiting review","rule":"version_not_submitted"}`, "", "version_not_submitted"},
		{http.StatusRequestEntityTooLarge, `{"error":"too big","field":"body"}`, "body", ""},
		{http.StatusInternalServerError, `{"error":"internal error; it has been logged"}`, "", ""},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				answerJSON(w, tc.status, "1", tc.body)
			})
			_, err := newClient(t, api.URL).Send(context.Background(), createCmd)
			apiErr := apiError(t, err)
			if apiErr.Status != tc.status || apiErr.Field != tc.field || apiErr.Rule != tc.rule || apiErr.Message == "" {
				t.Errorf("got %#v, want status %d, field %q, rule %q", apiErr, tc.status, tc.field, tc.rule)
			}
			if n := len(api.requests()); n != 1 || client.IsRetryable(err) {
				t.Errorf("%d requests, IsRetryable %t; want one and false", n, client.IsRetryable(err))
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		name       string
		maxBackoff time.Duration
		retryAfter string
		min, max   time.Duration
	}{
		{"honoured", 5 * time.Second, "1", time.Second, 3 * time.Second},
		{"capped by the maximum backoff", 50 * time.Millisecond, "30", 50 * time.Millisecond, 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					answerJSON(w, http.StatusServiceUnavailable, tc.retryAfter, concurrentUpdate)
					return
				}
				answerJSON(w, http.StatusOK, "", `{"id":"app-1","position":3}`)
			})
			c := newClient(t, api.URL, client.WithBackoff(time.Millisecond, tc.maxBackoff))
			if _, err := c.App(context.Background(), "app-1"); err != nil {
				t.Fatalf("App: %v", err)
			}
			reqs := api.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			if d := reqs[1].at.Sub(reqs[0].at); d < tc.min || d > tc.max {
				t.Errorf("retried after %s, want %s to %s", d, tc.min, tc.max)
			}
		})
	}
}

func TestContextEndsRetrying(t *testing.T) {
	t.Run("cancelled during an attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		api := newFakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 3 {
				cancel()
			}
			answerJSON(w, http.StatusServiceUnavailable, "", concurrentUpdate)
		})
		c := newClient(t, api.URL, client.WithRetries(100), client.WithBackoff(time.Millisecond, 5*time.Millisecond))
		_, err := c.Send(ctx, createCmd)
		if !errors.Is(err, context.Canceled) || client.IsRetryable(err) {
			t.Errorf("got %v (retryable %t), want context.Canceled, not retryable", err, client.IsRetryable(err))
		}
		if n := len(api.requests()); n != 3 {
			t.Errorf("%d requests, want 3: none after the cancel", n)
		}
	})
	t.Run("deadline during the backoff", func(t *testing.T) {
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			answerJSON(w, http.StatusServiceUnavailable, "60", concurrentUpdate)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		c := newClient(t, api.URL, client.WithBackoff(time.Second, time.Minute))
		start := time.Now()
		_, err := c.Stats(ctx, "app-1", "")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("returned after %s, want soon after the 100ms deadline", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) || client.IsRetryable(err) || !strings.Contains(err.Error(), "503") {
			t.Errorf("got %v, want context.DeadlineExceeded naming the last 503, not retryable", err)
		}
		if n := len(api.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

func TestTokenSentAndRateLimitRetried(t *testing.T) {
	api := newFakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			answerJSON(w, http.StatusTooManyRequests, "1", `{"error":"token \"ci\" exceeded the rate limit","limit":"rate-limit"}`)
			return
		}
		answerJSON(w, http.StatusOK, "", `{"id":"app-1","position":3}`)
	})
	c := newClient(t, api.URL, client.WithToken("evf_secret"), client.WithBackoff(time.Millisecond, 5*time.Second))
	if _, err := c.App(context.Background(), "app-1"); err != nil {
		t.Fatalf("App: %v", err)
	}
	reqs := api.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want the 429 retried once", len(reqs))
	}
	for i, r := range reqs {
		if got := r.header.Get("Authorization"); got != "Bearer evf_secret" {
			t.Errorf("attempt %d: Authorization %q", i+1, got)
		}
	}
	if d := reqs[1].at.Sub(reqs[0].at); d < time.Second {
		t.Errorf("retried after %s, want the Retry-After of 1s", d)
	}
}
