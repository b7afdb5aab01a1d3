package client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// IsRetryable reports whether err, returned by a [Client] call, is a
// failure that may pass, so that the same call (with the same command or
// launch ids) is worth making again later:
//
//   - an *[APIError] with status 429 (a rate limit), 502, 503 (including
//     rule [RuleConcurrentUpdate]) or 504;
//   - a transport error: connection refused or reset, a timeout of the HTTP
//     client, a connection closed before the whole answer arrived.
//
// It is false for nil, for every other *APIError (other 4xx and 500: retrying
// cannot change the answer), for errors caused by ctx being cancelled or
// past its deadline (the caller gave up), for unknown hosts and TLS
// failures, and for answers that cannot be decoded.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return retryableStatus(apiErr.Status)
	}
	// Transport failures come as *url.Error, from http.Client.Do or from
	// reading the body (see attempt). A bare context.DeadlineExceeded
	// outside one is the caller's deadline, not an attempt's.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return transient(uerr.Err)
	}
	return false
}

// transient classifies the cause of a transport error.
func transient(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		// A TLS alert from the peer comes as an OpError too; it will repeat.
		return opErr.Op != "remote error"
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// backoffCeiling is the longest wait before retry k: min(maxWait,
// minWait·2^k), computed without overflow.
func backoffCeiling(minWait, maxWait time.Duration, k int) time.Duration {
	c := minWait
	for i := 0; i < k && c < maxWait; i++ {
		if c > maxWait/2 {
			return maxWait
		}
		c *= 2
	}
	return min(c, maxWait)
}

// fullJitter returns a uniformly random wait in [0, ceiling].
func fullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// maxRetryAfter bounds parsed Retry-After values, against overflow; the
// client caps them far lower, at its maximum backoff.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date
// (relative to now). ok is false when the header is absent or malformed.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// wait returns the wait before retry k: the server's Retry-After when it
// sent one, capped by the maximum backoff, else a full-jitter backoff.
func (c *Client) wait(k int, retryAfter time.Duration, hinted bool) time.Duration {
	if hinted {
		return min(retryAfter, c.maxBackoff)
	}
	return fullJitter(backoffCeiling(c.minBackoff, c.maxBackoff, k))
}

// sleep waits for d or until ctx is done, and returns ctx.Err() then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
