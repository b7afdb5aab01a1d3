package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// call is one API call, the same on every attempt.
type call struct {
	method string
	// path is the path and query below the base URL, such as "/v1/top?n=5".
	path string
	// body is the JSON request body; nil sends none.
	body []byte
	// want is the status of success; its body is decoded into the result.
	want int
}

// do makes cl, retrying as the client's policy allows, and decodes the
// successful answer into out. The error names the call and, after more
// than one attempt, how many were made. When ctx ends it wraps ctx.Err()
// and reports the last attempt's error as text only, so that
// [IsRetryable] is false for it.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	for k := 0; ; k++ {
		retryAfter, hinted, err := c.attempt(ctx, cl, out)
		if err == nil {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%s %s: %w (after %d attempts; last: %v)", cl.method, cl.path, ctxErr, k+1, err)
		}
		if !IsRetryable(err) {
			return fmt.Errorf("%s %s: %w", cl.method, cl.path, err)
		}
		if k >= c.retries {
			return fmt.Errorf("%s %s: giving up after %d attempts: %w", cl.method, cl.path, k+1, err)
		}
		if ctxErr := sleep(ctx, c.wait(k, retryAfter, hinted)); ctxErr != nil {
			return fmt.Errorf("%s %s: %w (while waiting to retry after %d attempts; last: %v)", cl.method, cl.path, ctxErr, k+1, err)
		}
	}
}

// attempt makes cl once. A retryable answer's Retry-After comes back as
// retryAfter with hinted true. Transport failures, while sending or while
// reading the answer, come back as *url.Error; other answers than cl.want
// as *APIError.
func (c *Client) attempt(ctx context.Context, cl call, out any) (retryAfter time.Duration, hinted bool, err error) {
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.base+cl.path, body)
	if err != nil {
		return 0, false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, false, err // a *url.Error
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return 0, false, &url.Error{Op: "read answer of " + cl.method, URL: req.URL.Redacted(), Err: err}
	}
	if len(raw) > MaxResponseBytes {
		return 0, false, fmt.Errorf("%d answer is over %d bytes", resp.StatusCode, MaxResponseBytes)
	}
	if resp.StatusCode != cl.want {
		apiErr := newAPIError(resp.StatusCode, raw)
		if retryableStatus(resp.StatusCode) {
			retryAfter, hinted = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return retryAfter, hinted, apiErr
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return 0, false, fmt.Errorf("decode %d answer: %w", resp.StatusCode, err)
		}
	}
	return 0, false, nil
}
