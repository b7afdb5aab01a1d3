// Package httpapi is evflow's HTTP JSON API: commands, launch ingestion and
// queries of the reference domain.
//
//	POST /v1/commands              a handlers.Command → 200 handlers.Result
//	POST /v1/launches              {"launches":[handlers.Launch…]} → 202 {"accepted":n}
//	GET  /v1/apps/{id}             the app (MongoDB)
//	GET  /v1/apps/{id}/release     its current release (Redis, the SDK hot path)
//	GET  /v1/apps/{id}/stats?day=  launches and unique devices of a day
//	GET  /v1/top?day=&n=           the most launched apps of a day
//	GET  /v1/status                projection progress of this replica
//	GET  /v1/dlq?projection=       dead letters, in parking order
//	GET  /v1/dlq/{seq}             one dead letter; DELETE removes it
//	POST /v1/dlq/redrive?projection=  apply the dead letters again
//	DELETE /v1/dlq?projection=     purge dead letters
//	GET  /healthz                  liveness
//	GET  /readyz                   readiness: NATS, MongoDB and Redis reachable
//	GET  /metrics                  Prometheus metrics, when configured
//
// Errors are JSON {"error": "...", "field": "...", "rule": "..."}: 400 names
// the field at fault, 409 the rule an illegal transition breaks, 413 the
// body limit; nothing is published when a request is refused.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/projections"
)

// DefaultMaxBody is the largest request body accepted, in bytes.
const DefaultMaxBody = 1 << 20

// Commands decides commands and ingests launches.
type Commands interface {
	Handle(ctx context.Context, cmd handlers.Command) (handlers.Result, error)
	Ingest(ctx context.Context, launches []handlers.Launch) (int, error)
}

// Docs reads the MongoDB projections.
type Docs interface {
	App(ctx context.Context, id string) (projections.App, bool, error)
	DailyLaunches(ctx context.Context, appID, day string) (int64, error)
}

// Hot reads the Redis projections.
type Hot interface {
	Release(ctx context.Context, appID string) (version string, pos uint64, found bool, err error)
	Launches(ctx context.Context, appID, day string) (count, uniqueDevices int64, err error)
	Top(ctx context.Context, day string, n int) ([]projections.AppCount, error)
}

// Config configures the API.
type Config struct {
	Commands Commands
	Docs     Docs
	Hot      Hot
	// Ready reports whether the replica can serve (/readyz); optional.
	Ready func(ctx context.Context) error
	// DeadLetters administers parked events under /v1/dlq; optional.
	DeadLetters DeadLetters
	// Status reports projection progress for /v1/status; optional.
	Status func(ctx context.Context) (any, error)
	// Metrics serves GET /metrics (Prometheus); optional.
	Metrics http.Handler
	// MaxBody bounds request bodies; default [DefaultMaxBody].
	MaxBody int64
	Logger  *slog.Logger
}

// New returns the API's handler.
func New(cfg Config) http.Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &api{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/commands", a.command)
	mux.HandleFunc("POST /v1/launches", a.launches)
	mux.HandleFunc("GET /v1/apps/{id}", a.app)
	mux.HandleFunc("GET /v1/apps/{id}/release", a.release)
	mux.HandleFunc("GET /v1/apps/{id}/stats", a.stats)
	mux.HandleFunc("GET /v1/top", a.top)
	mux.HandleFunc("GET /v1/status", a.status)
	if cfg.DeadLetters != nil {
		mux.HandleFunc("GET /v1/dlq", a.dlqList)
		mux.HandleFunc("GET /v1/dlq/{seq}", a.dlqShow)
		mux.HandleFunc("DELETE /v1/dlq/{seq}", a.dlqDelete)
		mux.HandleFunc("POST /v1/dlq/redrive", a.dlqRedrive)
		mux.HandleFunc("DELETE /v1/dlq", a.dlqPurge)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	return mux
}

type api struct{ cfg Config }

func (a *api) command(w http.ResponseWriter, r *http.Request) {
	var cmd handlers.Command
	if !a.decode(w, r, &cmd) {
		return
	}
	res, err := a.cfg.Commands.Handle(r.Context(), cmd)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// LaunchBatch is the body of POST /v1/launches.
type LaunchBatch struct {
	Launches []handlers.Launch `json:"launches"`
}

func (a *api) launches(w http.ResponseWriter, r *http.Request) {
	var b LaunchBatch
	if !a.decode(w, r, &b) {
		return
	}
	n, err := a.cfg.Commands.Ingest(r.Context(), b.Launches)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": n})
}

func (a *api) app(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	app, found, err := a.cfg.Docs.App(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("app %q not found", id)})
		return
	}
	// Lists are [] rather than null for clients.
	app.Versions = nonNil(app.Versions)
	app.Releases, app.Grants = nonNil(app.Releases), nonNil(app.Grants)
	writeJSON(w, http.StatusOK, app)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Release is the body of GET /v1/apps/{id}/release.
type Release struct {
	AppID    string `json:"app_id"`
	Version  string `json:"version"`
	Position uint64 `json:"position"`
}

func (a *api) release(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	v, pos, found, err := a.cfg.Hot.Release(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !found || v == "" {
		writeError(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("app %q has no release", id)})
		return
	}
	writeJSON(w, http.StatusOK, Release{AppID: id, Version: v, Position: pos})
}

// Stats is the body of GET /v1/apps/{id}/stats.
type Stats struct {
	AppID         string `json:"app_id"`
	Day           string `json:"day"`
	Launches      int64  `json:"launches"`
	UniqueDevices int64  `json:"unique_devices"`
	// StoredLaunches is the day's count in MongoDB's daily stats.
	StoredLaunches int64 `json:"stored_launches"`
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	day, ok := queryDay(w, r)
	if !ok {
		return
	}
	n, uniq, err := a.cfg.Hot.Launches(r.Context(), id, day)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	stored, err := a.cfg.Docs.DailyLaunches(r.Context(), id, day)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Stats{AppID: id, Day: day, Launches: n, UniqueDevices: uniq, StoredLaunches: stored})
}

// Top is the body of GET /v1/top.
type Top struct {
	Day  string                 `json:"day"`
	Apps []projections.AppCount `json:"apps"`
}

func (a *api) top(w http.ResponseWriter, r *http.Request) {
	day, ok := queryDay(w, r)
	if !ok {
		return
	}
	n := 10
	if s := r.URL.Query().Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 1000 {
			writeError(w, http.StatusBadRequest, apiError{Error: "n must be a whole number from 1 to 1000", Field: "n"})
			return
		}
		n = v
	}
	apps, err := a.cfg.Hot.Top(r.Context(), day, n)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if apps == nil {
		apps = []projections.AppCount{}
	}
	writeJSON(w, http.StatusOK, Top{Day: day, Apps: apps})
}

func (a *api) ready(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.cfg.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Status == nil {
		writeError(w, http.StatusNotFound, apiError{Error: "status is not available"})
		return
	}
	st, err := a.cfg.Status(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !events.ValidID(id) {
		writeError(w, http.StatusBadRequest, apiError{Error: "app id must be 1-128 characters of [A-Za-z0-9_-]", Field: "id"})
		return "", false
	}
	return id, true
}

func queryDay(w http.ResponseWriter, r *http.Request) (string, bool) {
	day := r.URL.Query().Get("day")
	if day == "" {
		return time.Now().UTC().Format(events.DayLayout), true
	}
	if _, err := time.Parse(events.DayLayout, day); err != nil {
		writeError(w, http.StatusBadRequest, apiError{Error: "day must be YYYY-MM-DD", Field: "day"})
		return "", false
	}
	return day, true
}
