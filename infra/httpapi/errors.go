package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/handlers"
)

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Rule  string `json:"rule,omitempty"`
	// Limit names the limit a 413 or 429 answer enforces.
	Limit string `json:"limit,omitempty"`
}

// decode reads a JSON body into v, refusing unknown fields, trailing data
// and bodies over the limit; on failure it answers and returns false.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON value")
	}
	if err == nil {
		return true
	}
	var (
		tooBig  *http.MaxBytesError
		typeErr *json.UnmarshalTypeError
		synErr  *json.SyntaxError
	)
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("request body exceeds the limit of %d bytes", tooBig.Limit), Field: "body", Limit: "max-body"})
	case errors.As(err, &typeErr) && typeErr.Field == "":
		// An array or a scalar where the body's object belongs: no field
		// of it is at fault.
		writeError(w, http.StatusBadRequest, apiError{Error: "request body must be a JSON object, got " + typeErr.Value, Field: "body"})
	case errors.As(err, &typeErr):
		writeError(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("%s must be a JSON %s", typeErr.Field, typeErr.Type), Field: typeErr.Field})
	case errors.As(err, &synErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, apiError{Error: "request body is not valid JSON: " + err.Error(), Field: "body"})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		named := field
		if named == "" { // a key "": name the body, as an empty field names nothing
			named = "body"
		}
		writeError(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("unknown field %q", field), Field: named})
	default:
		writeError(w, http.StatusBadRequest, apiError{Error: "request body: " + err.Error(), Field: "body"})
	}
	return false
}

// fail maps a handler or store error to an answer.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		verr *handlers.ValidationError
		rerr *handlers.RuleError
	)
	switch {
	case errors.As(err, &verr):
		writeError(w, http.StatusBadRequest, apiError{Error: verr.Error(), Field: verr.Field})
	case errors.As(err, &rerr):
		writeError(w, http.StatusConflict, apiError{Error: rerr.Error(), Rule: rerr.Rule})
	case errors.Is(err, handlers.ErrNotFound):
		writeError(w, http.StatusNotFound, apiError{Error: err.Error()})
	case errors.Is(err, handlers.ErrForbidden):
		writeError(w, http.StatusForbidden, apiError{Error: err.Error()})
	case errors.Is(err, events.ErrConflict):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, apiError{Error: "the app is changing concurrently and its read model is catching up; retry the same command", Rule: "concurrent_update"})
	case errors.Is(err, events.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		a.cfg.Logger.WarnContext(r.Context(), "event stream unavailable", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, apiError{Error: "the event stream did not acknowledge in time; retry the same request (its ids make the retry safe)"})
	default:
		a.cfg.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, apiError{Error: "internal error; it has been logged"})
	}
}

func writeError(w http.ResponseWriter, status int, e apiError) { writeJSON(w, status, e) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
