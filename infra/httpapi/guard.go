package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/time/rate"

	"github.com/evflow/evflow/infra/auth"
)

// Verifier verifies bearer tokens (see [auth.Verifier]).
type Verifier interface {
	Verify(token string) (auth.Principal, error)
}

// guard wraps h with the checks every request of a route passes: with
// [Config.Auth], a valid bearer token with role, then the token's rate
// limit. Without Auth the API is open and h runs unguarded.
func (a *api) guard(role auth.Role, h http.HandlerFunc) http.HandlerFunc {
	if a.cfg.Auth == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.cfg.Auth.Verify(bearer(r))
		if err != nil {
			a.cfg.Logger.InfoContext(r.Context(), "request refused", "path", r.URL.Path, "status", http.StatusUnauthorized, "err", err)
			challenge := `Bearer realm="evflow"`
			if !errors.Is(err, auth.ErrMissing) {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, apiError{Error: unauthorized(err), Field: "Authorization"})
			return
		}
		if !p.Can(role) {
			a.cfg.Logger.InfoContext(r.Context(), "request refused", "path", r.URL.Path, "status", http.StatusForbidden, "token", p.Name, "role", role)
			writeError(w, http.StatusForbidden, apiError{Error: fmt.Sprintf("token %q lacks the %s role this request needs", p.Name, role), Rule: "role"})
			return
		}
		if ok, wait := a.limits.allow(p.Name); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait))))
			writeError(w, http.StatusTooManyRequests, apiError{
				Error: fmt.Sprintf("token %q exceeded the rate limit of %g requests/s (burst %d)", p.Name, a.cfg.RateLimit, a.limits.burst),
				Limit: "rate-limit"})
			return
		}
		h(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	}
}

// unauthorized is the answer's text for a token that failed: what to do,
// without the details of a forgery attempt.
func unauthorized(err error) string {
	switch {
	case errors.Is(err, auth.ErrMissing):
		return auth.ErrMissing.Error()
	case errors.Is(err, auth.ErrExpired):
		return "the bearer token has expired; get a new one"
	default:
		return "the bearer token is not valid"
	}
}

// bearer returns the request's bearer token, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// limiters are the per-token rate limits: a token bucket per token name.
type limiters struct {
	rate  rate.Limit // 0: no limit
	burst int
	mu    sync.Mutex
	by    map[string]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &limiters{rate: rate.Limit(perSecond), burst: burst, by: map[string]*rate.Limiter{}}
}

// allow takes a request from name's bucket; when it is empty it returns
// false and the seconds until a request would pass.
func (l *limiters) allow(name string) (bool, float64) {
	if l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	lim, ok := l.by[name]
	if !ok {
		if len(l.by) >= maxLimiters {
			l.evictIdle()
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.by[name] = lim
	}
	l.mu.Unlock()
	res := lim.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return false, d.Seconds()
	}
	return true, 0
}

// maxLimiters is how many tokens' buckets are kept before idle ones are
// dropped.
const maxLimiters = 10_000

// evictIdle drops the buckets that are full again: their tokens have been
// idle long enough that a new bucket is the same.
func (l *limiters) evictIdle() {
	for name, lim := range l.by {
		if lim.Tokens() >= float64(l.burst) {
			delete(l.by, name)
		}
	}
}
