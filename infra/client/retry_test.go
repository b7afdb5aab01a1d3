package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	ms := time.Millisecond
	want := []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms, 2000 * ms}
	for k, w := range want {
		if got := backoffCeiling(DefaultMinBackoff, DefaultMaxBackoff, k); got != w {
			t.Errorf("ceiling of retry %d: got %s, want %s", k, got, w)
		}
	}
	// No overflow however many retries, even with the largest maximum.
	for _, k := range []int{62, 63, 64, 1000, 1 << 30} {
		if got := backoffCeiling(ms, time.Duration(1<<63-1), k); got <= 0 {
			t.Errorf("ceiling of retry %d overflowed: %s", k, got)
		}
	}
	if got := backoffCeiling(time.Second, time.Second, 5); got != time.Second {
		t.Errorf("min == max: got %s, want 1s", got)
	}
}

func TestWaitBounds(t *testing.T) {
	c := &Client{minBackoff: DefaultMinBackoff, maxBackoff: DefaultMaxBackoff}
	for k := range 10 {
		ceiling := backoffCeiling(c.minBackoff, c.maxBackoff, k)
		var lo, hi time.Duration = ceiling, 0
		for range 2000 {
			d := c.wait(k, 0, false)
			if d < 0 || d > ceiling {
				t.Fatalf("retry %d: wait %s outside [0, %s]", k, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// Full jitter spreads the waits over the whole range.
		if lo > ceiling/4 || hi < ceiling*3/4 {
			t.Errorf("retry %d: waits spread over [%s, %s] only, want most of [0, %s]", k, lo, hi, ceiling)
		}
	}
	// Retry-After is honoured exactly, up to the maximum backoff.
	if d := c.wait(3, time.Second, true); d != time.Second {
		t.Errorf("Retry-After 1s: wait %s", d)
	}
	if d := c.wait(0, time.Minute, true); d != DefaultMaxBackoff {
		t.Errorf("Retry-After 1m: wait %s, want the cap %s", d, DefaultMaxBackoff)
	}
	if d := c.wait(0, 0, true); d != 0 {
		t.Errorf("Retry-After 0: wait %s", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 3 ", 3 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999999", maxRetryAfter, true},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("parseRetryAfter(%q) = %s, %t; want %s, %t", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

// timeoutErr is a net.Error that timed out, as http.Client.Timeout reports.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestIsRetryable(t *testing.T) {
	transport := func(err error) error { return &url.Error{Op: "Post", URL: "http://x/v1/commands", Err: err} }
	op := func(op string, err error) error { return &net.OpError{Op: op, Net: "tcp", Err: err} }
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"400", &APIError{Status: 400, Field: "version"}, false},
		{"403", &APIError{Status: 403}, false},
		{"404", &APIError{Status: 404}, false},
		{"409", &APIError{Status: 409, Rule: "version_not_submitted"}, false},
		{"413", &APIError{Status: 413}, false},
		{"429", &APIError{Status: 429, Limit: "rate-limit"}, true},
		{"500", &APIError{Status: 500}, false},
		{"502", &APIError{Status: 502}, true},
		{"503", &APIError{Status: 503}, true},
		{"503 concurrent_update", &APIError{Status: 503, Rule: RuleConcurrentUpdate}, true},
		{"504", &APIError{Status: 504}, true},
		{"wrapped 503", fmt.Errorf("send: %w", &APIError{Status: 503}), true},
		{"wrapped 409", fmt.Errorf("send: %w", &APIError{Status: 409}), false},
		{"connection refused", transport(op("dial", os.NewSyscallError("connect", syscall.ECONNREFUSED))), true},
		{"connection reset", transport(op("read", os.NewSyscallError("read", syscall.ECONNRESET))), true},
		{"broken pipe", transport(fmt.Errorf("write: %w", syscall.EPIPE)), true},
		{"closed before the answer", transport(io.EOF), true},
		{"answer cut short", transport(io.ErrUnexpectedEOF), true},
		{"attempt timeout", transport(timeoutErr{}), true},
		{"dns timeout", transport(op("dial", &net.DNSError{Err: "timeout", IsTimeout: true})), true},
		{"unknown host", transport(op("dial", &net.DNSError{Err: "no such host", IsNotFound: true})), false},
		{"tls alert", transport(op("remote error", errors.New("tls: bad certificate"))), false},
		{"unsupported scheme", transport(errors.New(`unsupported protocol scheme "ftp"`)), false},
		{"caller cancelled", fmt.Errorf("send: %w", context.Canceled), false},
		{"caller cancelled mid-request", transport(context.Canceled), false},
		{"caller deadline", fmt.Errorf("send: %w", context.DeadlineExceeded), false},
		{"bare EOF outside a transport error", io.EOF, false},
		{"decode failure", errors.New("decode 200 answer: invalid character"), false},
	}
	for _, tc := range cases {
		if got := IsRetryable(tc.err); got != tc.want {
			t.Errorf("%s: IsRetryable(%v) = %t, want %t", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestIsRetryableRealTransport classifies the errors of real failed
// requests: a refused connection and a connection closed without answer.
func TestIsRetryableRealTransport(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Read(make([]byte, 1024))
			_ = conn.Close() // closed without an answer
		}
	}()
	_, err = http.Post("http://"+addr+"/v1/commands", "application/json", nil)
	if err == nil || !IsRetryable(err) {
		t.Errorf("connection closed without an answer: IsRetryable(%v) = false", err)
	}
	_ = l.Close()
	_, err = http.Post("http://"+addr+"/v1/commands", "application/json", nil)
	if err == nil || !IsRetryable(err) {
		t.Errorf("connection refused: IsRetryable(%v) = false", err)
	}
}
