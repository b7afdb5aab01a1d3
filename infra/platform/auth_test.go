package platform_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/auth"
	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/projections"
)

// answer is an error answer of the API.
type answer struct {
	Error, Field, Rule, Limit string
}

// authStand starts a replica with a keys file and a JWT secret, and returns
// it with tokens by name: acme (publisher, reader; keys file), acme-jwt
// (reader; JWT), globex (publisher, reader), ops (admin), and expired ones.
func authStand(t *testing.T) (*replica, map[string]string) {
	t.Helper()
	s := newStand(t)
	dir := t.TempDir()
	tokens := map[string]string{}
	var keys []auth.Key
	past := time.Now().Add(-time.Hour)
	for _, k := range []struct {
		name, tenant string
		roles        []auth.Role
		expires      *time.Time
	}{
		{"acme", "acme", []auth.Role{auth.Publisher, auth.Reader}, nil},
		{"globex", "globex", []auth.Role{auth.Publisher, auth.Reader}, nil},
		{"ops", auth.DefaultAdminOrg, []auth.Role{auth.Admin}, nil},
		{"rated", "acme", []auth.Role{auth.Reader}, nil},
		{"expired", "acme", []auth.Role{auth.Reader}, &past},
	} {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[k.name] = tok
		keys = append(keys, auth.Key{Name: k.name, TokenSHA256: auth.Digest(tok), Tenant: k.tenant, Roles: k.roles, Expires: k.expires})
	}
	raw, _ := json.Marshal(map[string]any{"keys": keys})
	s.cfg.AuthKeys = filepath.Join(dir, "keys.json")
	secret := strings.Repeat("k", auth.MinSecret)
	s.cfg.AuthJWTSecretFile = filepath.Join(dir, "jwt.secret")
	for path, body := range map[string]string{s.cfg.AuthKeys: string(raw), s.cfg.AuthJWTSecretFile: secret + "\n"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	j, _ := auth.NewJWT([]byte(secret))
	acmeReader := auth.Principal{Name: "dashboard", Tenant: "acme", Roles: []auth.Role{auth.Reader}}
	tokens["acme-jwt"], _ = j.Mint(acmeReader, time.Hour, time.Now())
	tokens["expired-jwt"], _ = j.Mint(acmeReader, time.Minute, time.Now().Add(-time.Hour))
	other, _ := auth.NewJWT([]byte(strings.Repeat("x", auth.MinSecret)))
	tokens["forged-jwt"], _ = other.Mint(auth.Principal{Name: "x", Tenant: "acme", Roles: []auth.Role{auth.Admin}}, time.Hour, time.Now())
	s.cfg.RateLimit, s.cfg.RateBurst = 100, 200
	return s.start(t), tokens
}

// as returns r calling with token.
func as(r *replica, token string) *replica {
	c := *r
	c.token = token
	return &c
}

func TestAuthTokens(t *testing.T) {
	r, tok := authStand(t)
	for name, token := range map[string]string{
		"missing": "", "garbage": "evf_nope", "expired key": tok["expired"],
		"expired JWT": tok["expired-jwt"], "forged JWT": tok["forged-jwt"],
	} {
		var a answer
		code := as(r, token).call("GET", "/v1/top", nil, &a)
		if code != http.StatusUnauthorized || a.Field != "Authorization" || a.Error == "" {
			t.Errorf("%s token: %d %+v, want 401 naming Authorization", name, code, a)
		}
		if strings.Contains(name, "expired") && !strings.Contains(a.Error, "expired") {
			t.Errorf("%s token: %q does not say it expired", name, a.Error)
		}
	}
	// Open routes stay open.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		req, _ := http.NewRequest("GET", r.base+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d", path, res.StatusCode)
		}
	}
	// Roles: a reader cannot publish, a publisher cannot administer, an
	// admin token can.
	var a answer
	if code := as(r, tok["acme-jwt"]).call("POST", "/v1/commands", cmdOf("acme", "app.create", "x", "name", "X"), &a); code != http.StatusForbidden || a.Rule != "role" {
		t.Errorf("reader's command: %d %+v, want 403 rule role", code, a)
	}
	if code := as(r, tok["acme"]).call("GET", "/v1/status", nil, &a); code != http.StatusForbidden || a.Rule != "role" {
		t.Errorf("publisher's status: %d %+v, want 403 rule role", code, a)
	}
	if code := as(r, tok["ops"]).call("GET", "/v1/status", nil, nil); code != http.StatusOK {
		t.Errorf("admin's status: %d", code)
	}
	if code := as(r, tok["ops"]).call("GET", "/v1/dlq", nil, nil); code != http.StatusOK {
		t.Errorf("admin's dlq: %d", code)
	}
}

func cmdOf(tenant, typ, app string, kv ...string) map[string]any {
	c := cmd(typ, app, kv...)
	if tenant == "" {
		delete(c, "tenant")
	} else {
		c["tenant"] = tenant
	}
	return c
}

func TestAuthTenants(t *testing.T) {
	r, tok := authStand(t)
	acme, acmeJWT, globex := as(r, tok["acme"]), as(r, tok["acme-jwt"]), as(r, tok["globex"])

	// The tenant comes from the token when the command leaves it out.
	acme.command(cmdOf("", "app.create", "rocket", "name", "Rocket"))
	acme.command(cmdOf("acme", "app.submit_version", "rocket", "version", "1.0.0"))
	acme.command(cmdOf("acme", "app.approve_version", "rocket", "version", "1.0.0"))
	acme.command(cmdOf("acme", "app.publish_release", "rocket", "version", "1.0.0"))
	globex.command(cmdOf("", "app.create", "comet", "name", "Comet"))
	app := appWhere(acmeJWT, "rocket", func(a projections.App) error {
		if a.Release != "1.0.0" {
			return fmt.Errorf("release %q", a.Release)
		}
		return nil
	})
	if app.Tenant != "acme" {
		t.Fatalf("rocket's tenant %q, want acme (from the token)", app.Tenant)
	}
	releaseIs(acmeJWT, "rocket", "1.0.0")

	// Writes across tenants.
	var a answer
	if code := globex.call("POST", "/v1/commands", cmdOf("acme", "app.submit_version", "rocket", "version", "2.0.0"), &a); code != http.StatusForbidden || a.Field != "tenant" {
		t.Errorf("globex acting as acme: %d %+v, want 403 on tenant", code, a)
	}
	if code := globex.call("POST", "/v1/commands", cmdOf("", "app.submit_version", "rocket", "version", "2.0.0"), &a); code != http.StatusForbidden {
		t.Errorf("globex's command on acme's app: %d %+v, want 403", code, a)
	}
	if code := globex.call("POST", "/v1/launches", launchesOf("globex", "rocket", "l1"), &a); code != http.StatusForbidden || a.Field != "launches[0].app_id" {
		t.Errorf("globex's launch of acme's app: %d %+v, want 403 on launches[0].app_id", code, a)
	}
	if code := acme.call("POST", "/v1/launches", launchesOf("bad org!", "rocket", "l8"), &a); code != http.StatusBadRequest || a.Field != "launches[0].org" {
		t.Errorf("a malformed org: %d %+v, want 400 on launches[0].org", code, a)
	}
	if code := acme.call("POST", "/v1/commands", cmdOf("bad tenant!", "app.create", "x", "name", "X"), &a); code != http.StatusBadRequest || a.Field != "tenant" {
		t.Errorf("a malformed tenant: %d %+v, want 400 on tenant", code, a)
	}
	if code := acme.call("POST", "/v1/launches", launchesOf("", "no such app", "l9"), &a); code != http.StatusBadRequest || a.Field != "launches[0].app_id" {
		t.Errorf("a malformed app id: %d %+v, want 400 on launches[0].app_id", code, a)
	}
	if code := acme.call("POST", "/v1/launches", launchesOf("globex", "rocket", "l2"), &a); code != http.StatusForbidden || a.Field != "launches[0].org" {
		t.Errorf("acme's launch under globex: %d %+v, want 403 on launches[0].org", code, a)
	}

	// Reads across tenants.
	for _, path := range []string{"/v1/apps/rocket", "/v1/apps/rocket/release", "/v1/apps/rocket/stats?day=" + day} {
		if code := globex.call("GET", path, nil, &a); code != http.StatusForbidden || a.Rule != "tenant" {
			t.Errorf("globex GET %s: %d %+v, want 403 rule tenant", path, code, a)
		}
		if code := acmeJWT.call("GET", path, nil, nil); code != http.StatusOK {
			t.Errorf("acme GET %s: %d, want 200", path, code)
		}
	}
	if code := acme.call("GET", "/v1/apps/comet", nil, &a); code != http.StatusForbidden {
		t.Errorf("acme GET globex's comet: %d, want 403", code)
	}

	// Launches of one's own apps count, and top shows only one's apps.
	if code := acme.call("POST", "/v1/launches", launchesOf("", "rocket", "l3", "l4"), nil); code != http.StatusAccepted {
		t.Fatalf("acme's launches: %d", code)
	}
	if code := globex.call("POST", "/v1/launches", launchesOf("globex", "comet", "l5"), nil); code != http.StatusAccepted {
		t.Fatalf("globex's launches: %d", code)
	}
	topIs(acmeJWT, "rocket:2")
	topIs(globex, "comet:1")

	// A grant lets globex read rocket and report its launches.
	acme.command(cmdOf("", "app.grant", "rocket", "org", "globex"))
	appWhere(acmeJWT, "rocket", func(a projections.App) error {
		if len(a.Grants) != 1 {
			return fmt.Errorf("grants %v", a.Grants)
		}
		return nil
	})
	eventually(globex, "/v1/apps/rocket/release", func(code int, rel httpapi.Release) error {
		if code != http.StatusOK || rel.Version != "1.0.0" {
			return fmt.Errorf("%d %+v", code, rel)
		}
		return nil
	})
	acme.command(cmdOf("", "app.grant", "rocket", "org", "initech"))
	appWhere(acmeJWT, "rocket", func(a projections.App) error {
		if len(a.Grants) != 2 {
			return fmt.Errorf("grants %v", a.Grants)
		}
		return nil
	})
	if code := globex.call("GET", "/v1/apps/rocket", nil, &app); code != http.StatusOK || len(app.Grants) != 1 || app.Grants[0] != "globex" {
		t.Errorf("globex reads rocket: %d, grants %v; want only its own grant shown", code, app.Grants)
	}
	if code := globex.call("POST", "/v1/launches", launchesOf("globex", "rocket", "l6"), &a); code != http.StatusAccepted {
		t.Fatalf("globex's launch of a granted app: %d %+v", code, a)
	}
	topIs(globex, "rocket:3", "comet:1")
	topIs(acmeJWT, "rocket:3")
	// A grant is no licence to command the app.
	if code := globex.call("POST", "/v1/commands", cmdOf("", "app.submit_version", "rocket", "version", "2.0.0"), &a); code != http.StatusForbidden {
		t.Errorf("globex's command on a granted app: %d %+v, want 403", code, a)
	}
}

func launchesOf(org, app string, ids ...string) map[string]any {
	b := launches(app, ids, []string{"d1", "d2"})
	for _, l := range b["launches"].([]map[string]any) {
		if org == "" {
			delete(l, "org")
		} else {
			l["org"] = org
		}
	}
	return b
}

// topIs polls GET /v1/top until it lists want ("app:launches"), in order.
func topIs(r *replica, want ...string) {
	r.t.Helper()
	eventually(r, "/v1/top?day="+day, func(code int, top httpapi.Top) error {
		var got []string
		for _, a := range top.Apps {
			got = append(got, fmt.Sprintf("%s:%d", a.AppID, a.Launches))
		}
		if code != http.StatusOK || strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("%d %v, want %v", code, got, want)
		}
		return nil
	})
}

func TestAuthLimits(t *testing.T) {
	r, tok := authStand(t)
	acme := as(r, tok["acme"])
	var a answer
	big := `{"type":"app.create","app_id":"big","name":"` + strings.Repeat("n", 1<<20) + `"}`
	if code := acme.call("POST", "/v1/commands", big, &a); code != http.StatusRequestEntityTooLarge || a.Limit != "max-body" {
		t.Errorf("1 MiB body: %d %+v, want 413 limit max-body", code, a)
	}
	ids := make([]string, httpapi.DefaultMaxLaunches+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("b%d", i)
	}
	if code := acme.call("POST", "/v1/launches", launchesOf("", "any", ids...), &a); code != http.StatusRequestEntityTooLarge || a.Limit != "max-launches" || a.Field != "launches" {
		t.Errorf("%d launches: %d %+v, want 413 limit max-launches", len(ids), code, a)
	}
	if code := acme.call("POST", "/v1/commands", cmdOf("", "app.create", "named", "name", strings.Repeat("n", 201)), &a); code != http.StatusBadRequest || a.Field != "name" {
		t.Errorf("a 201-character name: %d %+v, want 400 on name", code, a)
	}

	// The rate limit (100/s, bursts of 200) holds per token.
	rated := as(r, tok["rated"])
	var mu sync.Mutex
	codes := map[int]int{}
	var limited answer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 60 {
				var a answer
				code := rated.call("GET", "/v1/top?day="+day, nil, &a)
				mu.Lock()
				codes[code]++
				if code == http.StatusTooManyRequests {
					limited = a
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusOK] < 200 {
		t.Fatalf("480 requests at once: %v, want 200 or more passed and the rest refused", codes)
	}
	if limited.Limit != "rate-limit" || !strings.Contains(limited.Error, `"rated"`) {
		t.Errorf("429 answer %+v, want limit rate-limit naming the token", limited)
	}
	if code := as(r, tok["acme-jwt"]).call("GET", "/v1/top?day="+day, nil, nil); code != http.StatusOK {
		t.Errorf("another token while rated is limited: %d, want 200", code)
	}
}
