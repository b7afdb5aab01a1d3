package platform

import (
	"context"
	"log/slog"
	"net"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/httpapi"
)

// apiAuth is the API's token verifier: nil when the replica runs open.
type apiAuth struct{ httpapi.Verifier }

// newAuth loads the token verifier cfg names. A replica without one runs
// open, and says so loudly.
func newAuth(cfg config.Config, log *slog.Logger) (apiAuth, error) {
	if !cfg.Auth() {
		host, _, _ := net.SplitHostPort(cfg.HTTPAddr)
		ip := net.ParseIP(host)
		exposed := host != "localhost" && (ip == nil || !ip.IsLoopback())
		log.Warn("AUTHENTICATION IS OFF: the HTTP API serves every caller, any tenant, without a token; set --auth-keys or --auth-jwt-secret-file",
			"http", cfg.HTTPAddr, "reachable_from_other_hosts", exposed, "admin_api", cfg.AdminAPI)
		return apiAuth{}, nil
	}
	v, err := cfg.Verifier()
	if err != nil {
		return apiAuth{}, UsageError{err}
	}
	log.Info("API authentication on", "keys_file", cfg.AuthKeys != "", "jwt", cfg.AuthJWTSecretFile != "",
		"admin_api", cfg.AdminAPI, "admin_org", cfg.AdminOrg, "rate_limit", cfg.RateLimit)
	return apiAuth{v}, nil
}

// AppsOf implements httpapi.Tenancy.
func (l *liveStores) AppsOf(ctx context.Context, tenant string) ([]string, error) {
	return l.apps.Load().AppsOf(ctx, tenant)
}

// LaunchCounts implements httpapi.Tenancy: from Redis, or from MongoDB's
// daily stats (one read per app) while Redis is rebuilt.
func (l *liveStores) LaunchCounts(ctx context.Context, day string, ids []string) ([]int64, error) {
	if h := l.hot.Load(); h.ready {
		return h.store.LaunchCounts(ctx, day, ids)
	}
	out := make([]int64, len(ids))
	for i, id := range ids {
		n, err := l.DailyLaunches(ctx, id, day)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}
