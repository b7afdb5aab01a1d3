package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/projections"
)

// App returns the app id (GET /v1/apps/{id}) as the document projection
// holds it. Errors wrap an *[APIError] (404 when no such app is known yet,
// 400 for a malformed id), ctx's error or the last transport error.
func (c *Client) App(ctx context.Context, id string) (projections.App, error) {
	var app projections.App
	if err := c.get(ctx, "/v1/apps/"+url.PathEscape(id), &app); err != nil {
		return projections.App{}, fmt.Errorf("app %q: %w", id, err)
	}
	return app, nil
}

// Release returns the current release of app appID (GET
// /v1/apps/{id}/release) from the Redis projection, the SDK's hot path; a
// 404 *[APIError] when it has none.
func (c *Client) Release(ctx context.Context, appID string) (httpapi.Release, error) {
	var r httpapi.Release
	if err := c.get(ctx, "/v1/apps/"+url.PathEscape(appID)+"/release", &r); err != nil {
		return httpapi.Release{}, fmt.Errorf("release of app %q: %w", appID, err)
	}
	return r, nil
}

// Stats returns the launches and unique devices of app appID on day
// (YYYY-MM-DD, UTC; "" is today) (GET /v1/apps/{id}/stats), as counted by
// the Redis projection (Launches) and the MongoDB one (StoredLaunches). A
// malformed day is a 400 *[APIError] with Field "day".
func (c *Client) Stats(ctx context.Context, appID, day string) (httpapi.Stats, error) {
	path := "/v1/apps/" + url.PathEscape(appID) + "/stats"
	if day != "" {
		path += "?" + url.Values{"day": {day}}.Encode()
	}
	var s httpapi.Stats
	if err := c.get(ctx, path, &s); err != nil {
		return httpapi.Stats{}, fmt.Errorf("stats of app %q: %w", appID, err)
	}
	return s, nil
}

// Top returns the n most launched apps of day (YYYY-MM-DD, UTC; "" is
// today) (GET /v1/top). n <= 0 leaves the number to the server (10); it
// accepts 1 to 1000.
func (c *Client) Top(ctx context.Context, day string, n int) (httpapi.Top, error) {
	q := url.Values{}
	if day != "" {
		q.Set("day", day)
	}
	if n > 0 {
		q.Set("n", strconv.Itoa(n))
	}
	path := "/v1/top"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var t httpapi.Top
	if err := c.get(ctx, path, &t); err != nil {
		return httpapi.Top{}, fmt.Errorf("top apps: %w", err)
	}
	return t, nil
}

// get makes a GET call answered with 200.
func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, call{method: http.MethodGet, path: path, want: http.StatusOK}, out)
}
