package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/httpapi"
)

// fault is how a [flakyProxy] mistreats the first request of each
// idempotency key (a command's id, a launch batch's ids). Later requests
// with the same key pass.
type fault int

const (
	// loseAnswer forwards the request, lets the replica apply and answer
	// it, and loses the answer: a command's connection is closed without a
	// response (a transport error for the client), a launch batch is
	// answered 502, as by a load balancer whose upstream connection broke.
	loseAnswer fault = iota
	// deliverLate holds the request until a retry with the same key has
	// been answered (the client timed out and retried), then forwards it:
	// the original arrives after its retry was applied.
	deliverLate
)

// answer is an answer of the replica that the client never got.
type answer struct {
	status int
	body   []byte
}

// flakyProxy is an httputil.ReverseProxy in front of a real replica that
// injects a [fault] into the first POST of each idempotency key.
type flakyProxy struct {
	// URL is the proxy's base URL.
	URL   string
	rp    *httputil.ReverseProxy
	fault fault

	mu          sync.Mutex
	forwards    map[string]int           // by key
	keys        map[string][]string      // distinct keys by path, in order
	undelivered map[string]answer        // by key
	released    map[string]chan struct{} // deliverLate: closed when the retry was answered
	delivered   map[string]chan struct{} // deliverLate: closed when the original was answered
}

// newFlakyProxy starts a proxy in front of upstream, closed when the test
// ends.
func newFlakyProxy(t *testing.T, upstream string, f fault) *flakyProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("proxy target: %v", err)
	}
	p := &flakyProxy{fault: f, forwards: map[string]int{}, keys: map[string][]string{}, undelivered: map[string]answer{},
		released: map[string]chan struct{}{}, delivered: map[string]chan struct{}{},
		rp: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *flakyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		p.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	key := idempotencyKey(r.URL.Path, body)
	p.mu.Lock()
	p.forwards[key]++
	n := p.forwards[key]
	first := n == 1
	if first {
		p.keys[r.URL.Path] = append(p.keys[r.URL.Path], key)
		p.released[key], p.delivered[key] = make(chan struct{}), make(chan struct{})
	}
	released, delivered := p.released[key], p.delivered[key]
	p.mu.Unlock()
	switch {
	case !first:
		p.rp.ServeHTTP(w, r)
		if p.fault == deliverLate && n == 2 {
			close(released)
		}
	case p.fault == deliverLate:
		select {
		case <-released:
		case <-time.After(waitTimeout):
		}
		// The client has given up on this request; forward it anyway.
		p.forward(key, r.WithContext(context.WithoutCancel(r.Context())))
		close(delivered)
	default:
		p.forward(key, r)
		close(delivered)
		p.lose(w, r)
	}
}

// forward sends r to the replica and keeps the answer from the client.
func (p *flakyProxy) forward(key string, r *http.Request) {
	rec := httptest.NewRecorder()
	p.rp.ServeHTTP(rec, r)
	p.mu.Lock()
	p.undelivered[key] = answer{status: rec.Code, body: rec.Body.Bytes()}
	p.mu.Unlock()
}

// lose answers r as a lost answer looks to the client.
func (p *flakyProxy) lose(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/launches" {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	_ = conn.Close()
}

// idempotencyKey is a command's id or the ids of a launch batch, joined;
// "" when the client sent none.
func idempotencyKey(path string, body []byte) string {
	if path == "/v1/launches" {
		var b httpapi.LaunchBatch
		_ = json.Unmarshal(body, &b)
		ids := make([]string, len(b.Launches))
		for i, l := range b.Launches {
			if l.ID == "" {
				return ""
			}
			ids[i] = l.ID
		}
		return strings.Join(ids, ",")
	}
	var cmd handlers.Command
	_ = json.Unmarshal(body, &cmd)
	return cmd.ID
}

// seen waits until the first request of key has been answered by the
// replica, and returns how often key was forwarded and that answer.
func (p *flakyProxy) seen(t *testing.T, key string) (forwards int, first answer) {
	t.Helper()
	p.mu.Lock()
	delivered := p.delivered[key]
	p.mu.Unlock()
	if delivered == nil {
		t.Fatalf("the proxy never saw key %q", key)
	}
	select {
	case <-delivered:
	case <-time.After(waitTimeout):
		t.Fatalf("the first request of key %q was not answered in %s", key, waitTimeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forwards[key], p.undelivered[key]
}

// keysOf returns the distinct idempotency keys POSTed to path, in order.
func (p *flakyProxy) keysOf(path string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.keys[path])
}
