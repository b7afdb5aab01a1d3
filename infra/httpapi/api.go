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
// With [Config.Auth], every /v1 route needs a bearer token with a role:
// publisher for commands and launches, reader for the app queries, admin
// for status and dead letters (served only with [Config.AdminAPI]). A
// token acts for its own organization: commands name it as tenant,
// launches as org, and reads see the apps it owns or was granted. Without
// Auth the API is open and these checks are off.
//
// Errors are JSON {"error": "...", "field": "...", "rule": "...", "limit": "..."}:
// 400 names the field at fault, 401 a missing, invalid or expired token,
// 403 the rule refused (role, tenant, or an illegal transition's owner),
// 409 the rule an illegal transition breaks, 413 and 429 the limit
// exceeded; nothing is published when a request is refused.
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
	"github.com/evflow/evflow/infra/auth"
	"github.com/evflow/evflow/projections"
)

// Defaults of [Config].
const (
	// DefaultMaxBody is the largest request body accepted, in bytes.
	DefaultMaxBody = 1 << 20
	// DefaultMaxLaunches is the most launches one POST /v1/launches carries.
	DefaultMaxLaunches = handlers.DefaultMaxLaunchBatch
)

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
	// MaxLaunches bounds the launches of one request; default [DefaultMaxLaunches].
	MaxLaunches int
	// Auth verifies bearer tokens; nil runs the API open.
	Auth Verifier
	// AdminAPI serves status and dead letters (to admin tokens, with Auth).
	AdminAPI bool
	// Tenancy lists a tenant's apps for GET /v1/top; required with Auth.
	Tenancy Tenancy
	// AccessTTL is how long an app's owner and grants are cached for the
	// tenant checks; default [DefaultAccessTTL].
	AccessTTL time.Duration
	// RateLimit is the requests per second each token may make (0: no
	// limit), with bursts of RateBurst (default: RateLimit rounded up).
	RateLimit float64
	RateBurst int
	Logger    *slog.Logger
}

// New returns the API's handler.
func New(cfg Config) http.Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxLaunches <= 0 {
		cfg.MaxLaunches = DefaultMaxLaunches
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &api{cfg: cfg, access: newAccess(cfg.Docs, cfg.AccessTTL), limits: newLimiters(cfg.RateLimit, cfg.RateBurst)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/commands", a.guard(auth.Publisher, a.command))
	mux.HandleFunc("POST /v1/launches", a.guard(auth.Publisher, a.launches))
	mux.HandleFunc("GET /v1/apps/{id}", a.guard(auth.Reader, a.app))
	mux.HandleFunc("GET /v1/apps/{id}/release", a.guard(auth.Reader, a.release))
	mux.HandleFunc("GET /v1/apps/{id}/stats", a.guard(auth.Reader, a.stats))
	mux.HandleFunc("GET /v1/top", a.guard(auth.Reader, a.top))
	admin := func(pattern string, h http.HandlerFunc) {
		if !cfg.AdminAPI {
			h = adminOff
		}
		mux.HandleFunc(pattern, a.guard(auth.Admin, h))
	}
	admin("GET /v1/status", a.status)
	if cfg.DeadLetters != nil {
		admin("GET /v1/dlq", a.dlqList)
		admin("GET /v1/dlq/{seq}", a.dlqShow)
		admin("DELETE /v1/dlq/{seq}", a.dlqDelete)
		admin("POST /v1/dlq/redrive", a.dlqRedrive)
		admin("DELETE /v1/dlq", a.dlqPurge)
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

type api struct {
	cfg    Config
	access *access
	limits *limiters
}

// adminOff answers the admin routes of a replica started without the admin API.
func adminOff(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, apiError{Error: "the admin API is off on this replica: start it with --admin-api"})
}

func (a *api) command(w http.ResponseWriter, r *http.Request) {
	var cmd handlers.Command
	if !a.decode(w, r, &cmd) || !a.actAs(w, r, &cmd.Tenant, "tenant") {
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
	if len(b.Launches) > a.cfg.MaxLaunches {
		writeError(w, http.StatusRequestEntityTooLarge, apiError{
			Error: fmt.Sprintf("at most %d launches per request, got %d", a.cfg.MaxLaunches, len(b.Launches)),
			Field: "launches", Limit: "max-launches"})
		return
	}
	if !a.checkLaunches(w, r, b.Launches) {
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
	if p, authed := auth.FromContext(r.Context()); found && authed {
		if !mayRead(app, p.Tenant) {
			writeError(w, http.StatusForbidden, apiError{Error: fmt.Sprintf("organization %q neither owns app %q nor was granted it", p.Tenant, id), Rule: "tenant"})
			return
		}
		if app.Tenant != p.Tenant {
			app.Grants = []string{p.Tenant} // a grantee sees its own grant, not the others'
		}
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
	if !ok || !a.checkRead(w, r, id) {
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
	if !ok || !a.checkRead(w, r, id) {
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
	var apps []projections.AppCount
	var err error
	if p, authed := auth.FromContext(r.Context()); authed {
		apps, err = a.topOf(r.Context(), p.Tenant, day, n)
	} else {
		apps, err = a.cfg.Hot.Top(r.Context(), day, n)
	}
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
