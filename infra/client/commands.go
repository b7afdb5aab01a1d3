package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/httpapi"
)

// Send sends cmd (POST /v1/commands) and returns the server's result.
//
// When cmd.ID is empty, Send sets it to a new UUID before the first attempt
// and sends that id on every retry, so a command whose answer was lost is
// recognised by the server rather than applied twice; the retry then
// answers with Duplicate true, or with the original position. The result's
// CommandID is the id sent, also when Send fails: to retry a failed Send
// later, send the command again with that id.
//
// Errors wrap an *[APIError] for answers of the API (400 malformed, 403, 404
// unknown app, 409 illegal transition, …), ctx's error when ctx ends, or the
// last transport error once retries are spent; see [IsRetryable].
func (c *Client) Send(ctx context.Context, cmd handlers.Command) (handlers.Result, error) {
	if cmd.ID == "" {
		cmd.ID = uuid.NewString()
	}
	failed := handlers.Result{CommandID: cmd.ID}
	body, err := json.Marshal(cmd)
	if err != nil {
		return failed, fmt.Errorf("send %s command %s: encode: %w", cmd.Type, cmd.ID, err)
	}
	var res handlers.Result
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/commands", body: body, want: http.StatusOK}, &res); err != nil {
		return failed, fmt.Errorf("send %s command %s: %w", cmd.Type, cmd.ID, err)
	}
	if res.CommandID == "" {
		res.CommandID = cmd.ID
	}
	return res, nil
}

// Launch reports launches (POST /v1/launches) in one all-or-nothing batch
// and returns how many the server accepted. An empty call sends nothing and
// returns 0.
//
// Each launch without an ID gets a new UUID before the first attempt, kept
// on every retry, so a batch whose answer was lost is deduplicated by the
// server instead of counted twice. The ids are set on a copy: the caller's
// slice is not modified. Set the IDs yourself to make retrying a failed
// Launch later safe as well.
//
// Errors wrap an *[APIError] (400 names the launch at fault, such as field
// "launches[2].at"), ctx's error, or the last transport error.
func (c *Client) Launch(ctx context.Context, launches ...handlers.Launch) (int, error) {
	if len(launches) == 0 {
		return 0, nil
	}
	batch := httpapi.LaunchBatch{Launches: slices.Clone(launches)}
	for i := range batch.Launches {
		if batch.Launches[i].ID == "" {
			batch.Launches[i].ID = uuid.NewString()
		}
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return 0, fmt.Errorf("launch %d: encode: %w", len(launches), err)
	}
	var res struct {
		Accepted int `json:"accepted"`
	}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/launches", body: body, want: http.StatusAccepted}, &res); err != nil {
		return 0, fmt.Errorf("launch %d: %w", len(launches), err)
	}
	return res.Accepted, nil
}
