// Package client is the Go client of evflow's HTTP JSON API (see package
// httpapi): apps send commands and launch reports with it and read the
// projections back.
//
// The client retries without double-applying: [Client.Send] gives a command
// without an id a fresh UUID before the first attempt and sends the same id
// on every retry, and [Client.Launch] does the same for each launch. The
// server deduplicates on those ids (the broker's Nats-Msg-Id window and the
// app's recent command ids), so a retry after a lost response is recognised
// instead of applied twice.
//
// Only failures that may pass are retried ([IsRetryable]): transport errors
// (connection refused or reset, timeouts, a connection closed before the
// answer) and 502, 503 and 504 answers, among them 503 with rule
// "concurrent_update". Every other answer is returned at once as an
// *[APIError]. Between attempts the client waits with exponential backoff
// and full jitter, or as long as the server's Retry-After asks (capped by
// the maximum backoff), and stops waiting when ctx is done.
//
// The queries ([Client.App], [Client.Release], [Client.Stats], [Client.Top])
// read projections, which follow the event stream asynchronously: a
// command's effect shows once the replica has applied its event. Compare
// App's Position with the Position [Client.Send] returned to wait for it.
// The server decides commands against the same projection, so a command
// sent before the projection applied the app's previous event may be
// refused (404, 409) on the strength of the older state. Queries are safe
// to repeat and retried under the same policy.
package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of the options.
const (
	// DefaultRetries is how many times a failed call is retried (so it is
	// attempted up to DefaultRetries+1 times); see [WithRetries].
	DefaultRetries = 5
	// DefaultMinBackoff is the longest wait before the first retry, which
	// doubles with every retry; see [WithBackoff].
	DefaultMinBackoff = 50 * time.Millisecond
	// DefaultMaxBackoff caps the wait between attempts, Retry-After
	// included; see [WithBackoff].
	DefaultMaxBackoff = 2 * time.Second
	// DefaultAttemptTimeout bounds one attempt (request and answer) of the
	// default HTTP client; see [WithHTTPClient].
	DefaultAttemptTimeout = 30 * time.Second
	// DefaultUserAgent is the User-Agent header sent; see [WithUserAgent].
	DefaultUserAgent = "evflow-go-client/1"
	// MaxResponseBytes is the largest answer body the client reads.
	MaxResponseBytes = 16 << 20
)

// Client calls one evflow API. It is safe for concurrent use and holds no
// resources of its own: the HTTP client's connections belong to it.
type Client struct {
	base       string // without a trailing slash
	http       *http.Client
	retries    int
	minBackoff time.Duration
	maxBackoff time.Duration
	userAgent  string
	token      string
}

// settings collects the options before [New] validates them.
type settings struct {
	http       *http.Client
	retries    int
	minBackoff time.Duration
	maxBackoff time.Duration
	userAgent  string
	token      string
}

// Option configures a [Client]; pass options to [New].
type Option func(*settings)

// WithHTTPClient makes the client send its requests with hc, for its
// transport, TLS settings and per-attempt timeout. The default is an
// http.Client using http.DefaultTransport with a Timeout of
// [DefaultAttemptTimeout]; a timeout of hc is an attempt's failure and is
// retried, while ctx bounds the whole call, retries included.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) { s.http = hc }
}

// WithRetries sets how many times a retryable failure is retried: a call is
// attempted at most n+1 times. 0 disables retries; the default is
// [DefaultRetries].
func WithRetries(n int) Option {
	return func(s *settings) { s.retries = n }
}

// WithBackoff sets the wait between attempts. Before retry k (k = 0, 1, …)
// the client waits a uniformly random duration between 0 and
// min(maxWait, minWait·2^k) ("full jitter", which spreads the retries of
// many clients), unless the answer carried a Retry-After, which is honoured
// up to maxWait. The defaults are [DefaultMinBackoff] and
// [DefaultMaxBackoff]; minWait must be positive and maxWait at least minWait.
func WithBackoff(minWait, maxWait time.Duration) Option {
	return func(s *settings) { s.minBackoff, s.maxBackoff = minWait, maxWait }
}

// WithUserAgent sets the User-Agent header of every request; the default is
// [DefaultUserAgent].
func WithUserAgent(ua string) Option {
	return func(s *settings) { s.userAgent = ua }
}

// WithToken sends token as the bearer token of every request, for replicas
// that check tokens (see infra/auth).
func WithToken(token string) Option {
	return func(s *settings) { s.token = token }
}

// New returns a client of the API at baseURL, such as
// "http://127.0.0.1:8080" (a path prefix is kept, a trailing slash is
// dropped). It reports every invalid argument, joined.
func New(baseURL string, opts ...Option) (*Client, error) {
	s := settings{
		http:       &http.Client{Timeout: DefaultAttemptTimeout},
		retries:    DefaultRetries,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		userAgent:  DefaultUserAgent,
	}
	for _, o := range opts {
		o(&s)
	}
	base, err := parseBase(baseURL)
	errs := []error{err}
	if s.http == nil {
		errs = append(errs, errors.New("WithHTTPClient: the HTTP client is nil"))
	}
	if s.retries < 0 {
		errs = append(errs, fmt.Errorf("WithRetries: %d is negative (0 disables retries)", s.retries))
	}
	if s.minBackoff <= 0 || s.maxBackoff < s.minBackoff {
		errs = append(errs, fmt.Errorf("WithBackoff: want 0 < min <= max, got min %s, max %s", s.minBackoff, s.maxBackoff))
	}
	if strings.TrimSpace(s.userAgent) == "" {
		errs = append(errs, errors.New("WithUserAgent: the user agent is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("evflow client: %w", err)
	}
	return &Client{base: base, http: s.http, retries: s.retries,
		minBackoff: s.minBackoff, maxBackoff: s.maxBackoff, userAgent: s.userAgent, token: s.token}, nil
}

// parseBase checks an API base URL and drops its trailing slashes.
func parseBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("base URL %q: want http:// or https:// and a host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("base URL %q: must not have a query, fragment or credentials", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}
