package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Rules the server reports that are not illegal transitions; the others are
// the handlers.Rule constants.
const (
	// RuleConcurrentUpdate: the app changed while the command was decided
	// and the read model did not catch up in time (HTTP 503). Retrying the
	// same command, with the same id, is safe; the client does so itself.
	RuleConcurrentUpdate = "concurrent_update"
)

// APIError is an answer of the API other than success, decoded from its
// JSON error body {"error", "field", "rule", "limit"}. The client returns
// it wrapped: match it with errors.As.
//
//   - 400: the request is malformed; Field names the field at fault, such
//     as "version" or "launches[3].device_id".
//   - 401: the bearer token is missing, invalid or expired ([WithToken]).
//   - 403: the token lacks the role (Rule "role"), or acts for another
//     organization than the app's (Rule "tenant"), or the tenant does not
//     own the app. 404: no such app or release.
//   - 409: the app's state does not allow the command; Rule is one of the
//     handlers.Rule constants, such as "version_not_submitted".
//   - 413: the body or the batch is over the server's limit, named by Limit.
//   - 429: the token's rate limit (Limit "rate-limit"); retried after the
//     server's Retry-After.
//   - 502, 503, 504: the server or a proxy could not answer now; these are
//     retried (503 with Rule [RuleConcurrentUpdate] among them).
//
// A body that is not the API's JSON (a proxy's error page) leaves Field and
// Rule empty and puts the start of the body in Message.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the server's explanation, for humans.
	Message string
	// Field is the JSON name of the field at fault (400).
	Field string
	// Rule is the rule the command breaks (403, 409, 503).
	Rule string
	// Limit names the limit exceeded (413, 429).
	Limit string
}

// Error implements error: "409 Conflict: <message> (rule <rule>)".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	switch {
	case e.Field != "" && e.Rule != "":
		fmt.Fprintf(&b, " (field %s, rule %s)", e.Field, e.Rule)
	case e.Field != "":
		fmt.Fprintf(&b, " (field %s)", e.Field)
	case e.Rule != "":
		fmt.Fprintf(&b, " (rule %s)", e.Rule)
	}
	return b.String()
}

// retryableStatus reports the statuses that may pass: the server or a proxy
// in front of it could not answer now, or the token's rate limit refused
// the request. Every other 4xx is final.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// maxMessage bounds the part of a non-JSON error body kept in Message.
const maxMessage = 200

// newAPIError decodes an error answer's body.
func newAPIError(status int, body []byte) *APIError {
	var wire struct {
		Error string `json:"error"`
		Field string `json:"field"`
		Rule  string `json:"rule"`
		Limit string `json:"limit"`
	}
	if err := json.Unmarshal(body, &wire); err == nil && wire.Error != "" {
		return &APIError{Status: status, Message: wire.Error, Field: wire.Field, Rule: wire.Rule, Limit: wire.Limit}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
		msg += "…"
	}
	return &APIError{Status: status, Message: msg}
}
