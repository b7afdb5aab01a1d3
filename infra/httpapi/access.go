package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/auth"
	"github.com/evflow/evflow/projections"
)

// DefaultAccessTTL is how long a replica trusts what it read of an app's
// owner and grants; a revoked grant stops working within it.
const DefaultAccessTTL = 2 * time.Second

// Tenancy lists the apps a tenant may read and counts their launches, for
// GET /v1/top with tokens.
type Tenancy interface {
	// AppsOf returns the ids of the apps tenant owns or was granted.
	AppsOf(ctx context.Context, tenant string) ([]string, error)
	// LaunchCounts returns the launches of each app of ids on day.
	LaunchCounts(ctx context.Context, day string, ids []string) ([]int64, error)
}

// mayRead reports whether app's owner and grants let tenant read it.
func mayRead(app projections.App, tenant string) bool {
	return app.Tenant == tenant || slices.Contains(app.Grants, tenant)
}

// access caches apps' owners and grants for the tenant checks of reads and
// launches. Only apps found are cached: an app created a moment ago is read
// again until the read model has it.
type access struct {
	docs Docs
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
	apps map[string]accessEntry
}

type accessEntry struct {
	app projections.App // Tenant and Grants only
	at  time.Time
}

// maxAccessEntries bounds the cache; past it, it starts over.
const maxAccessEntries = 100_000

func newAccess(docs Docs, ttl time.Duration) *access {
	return &access{docs: docs, ttl: ttl, now: time.Now, apps: map[string]accessEntry{}}
}

// app returns the owner and grants of id, and false when it does not exist.
func (c *access) app(ctx context.Context, id string) (projections.App, bool, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.apps[id]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.app, true, nil
	}
	app, found, err := c.docs.App(ctx, id)
	if err != nil || !found {
		return projections.App{}, false, err
	}
	acl := projections.App{ID: app.ID, Tenant: app.Tenant, Grants: app.Grants}
	c.mu.Lock()
	if len(c.apps) >= maxAccessEntries {
		clear(c.apps)
	}
	c.apps[id] = accessEntry{app: acl, at: now}
	c.mu.Unlock()
	return acl, true, nil
}

// checkRead reports whether the request may read app id: the API runs
// open, or the token's tenant owns the app or was granted it. Otherwise it
// answers (404 for an app that does not exist, 403 for another tenant's).
func (a *api) checkRead(w http.ResponseWriter, r *http.Request, id string) bool {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return true
	}
	app, found, err := a.access.app(r.Context(), id)
	switch {
	case err != nil:
		a.fail(w, r, err)
	case !found:
		writeError(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("app %q not found", id)})
	case !mayRead(app, p.Tenant):
		writeError(w, http.StatusForbidden, apiError{Error: fmt.Sprintf("organization %q neither owns app %q nor was granted it", p.Tenant, id), Rule: "tenant"})
	default:
		return true
	}
	return false
}

// actAs fills the tenant of a command from the token, or checks it: a
// token acts for its own organization only. It returns false once it
// answered.
func (a *api) actAs(w http.ResponseWriter, r *http.Request, tenant *string, field string) bool {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return true
	}
	if *tenant == "" {
		*tenant = p.Tenant
	}
	// A malformed tenant gets the handlers' 400 that names it.
	if *tenant != p.Tenant && events.ValidID(*tenant) {
		writeError(w, http.StatusForbidden, apiError{
			Error: fmt.Sprintf("token %q acts for organization %q, not %q", p.Name, p.Tenant, *tenant),
			Field: field, Rule: "tenant"})
		return false
	}
	return true
}

// checkLaunches applies the tenant checks to a batch of launches: each is
// reported under the token's organization (filled in when empty), of an
// app that organization owns or was granted. It returns false once it
// answered.
func (a *api) checkLaunches(w http.ResponseWriter, r *http.Request, ls []handlers.Launch) bool {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return true
	}
	seen := map[string]bool{}
	for i := range ls {
		if !a.actAs(w, r, &ls[i].Org, fmt.Sprintf("launches[%d].org", i)) {
			return false
		}
		id := ls[i].AppID
		if seen[id] || !events.ValidID(id) { // a malformed id is the handlers' 400
			continue
		}
		seen[id] = true
		app, found, err := a.access.app(r.Context(), id)
		if err != nil {
			a.fail(w, r, err)
			return false
		}
		if !found || !mayRead(app, p.Tenant) {
			writeError(w, http.StatusForbidden, apiError{
				Error: fmt.Sprintf("organization %q may not report launches of app %q: it neither owns it nor was granted it (or the app does not exist yet)", p.Tenant, id),
				Field: fmt.Sprintf("launches[%d].app_id", i), Rule: "tenant"})
			return false
		}
	}
	return true
}

// topOf returns the n most launched apps of day among those tenant may
// read: one query of the tenant's apps, one pipelined read of their counts.
func (a *api) topOf(ctx context.Context, tenant, day string, n int) ([]projections.AppCount, error) {
	if a.cfg.Tenancy == nil {
		return nil, errors.New("top apps per tenant: no Tenancy configured")
	}
	ids, err := a.cfg.Tenancy.AppsOf(ctx, tenant)
	if err != nil {
		return nil, err
	}
	counts, err := a.cfg.Tenancy.LaunchCounts(ctx, day, ids)
	if err != nil {
		return nil, err
	}
	out := []projections.AppCount{}
	for i, id := range ids {
		if counts[i] > 0 {
			out = append(out, projections.AppCount{AppID: id, Launches: counts[i]})
		}
	}
	slices.SortFunc(out, func(x, y projections.AppCount) int {
		return cmp.Or(cmp.Compare(y.Launches, x.Launches), cmp.Compare(x.AppID, y.AppID))
	})
	return out[:min(n, len(out))], nil
}
