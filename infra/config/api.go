package config

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/auth"
)

// API configures the HTTP API's authentication and limits.
type API struct {
	// AuthKeys is a keys file of API tokens and AuthJWTSecretFile a file
	// holding the HMAC secret of API JWTs (see infra/auth); with neither,
	// the API runs open.
	AuthKeys          string
	AuthJWTSecretFile string
	// AdminAPI serves the admin endpoints (status, dead letters).
	AdminAPI bool
	// AdminOrg is the organization whose tokens may hold the admin role.
	AdminOrg string
	// RateLimit is the requests per second each token may make (0: none),
	// in bursts of RateBurst (0: RateLimit rounded up).
	RateLimit float64
	RateBurst int
	// MaxBody bounds request bodies (bytes) and MaxLaunches the launches of
	// one request.
	MaxBody     int
	MaxLaunches int
}

// apiFlags registers the API's settings on fs.
func (c *Config) apiFlags(fs *flag.FlagSet) {
	str, num := c.envVars(fs)
	str(&c.AuthKeys, "auth-keys", "keys file of the API's bearer tokens (evflow token new makes entries); with neither this nor --auth-jwt-secret-file the API runs open")
	str(&c.AuthJWTSecretFile, "auth-jwt-secret-file", "file holding the HMAC-SHA256 secret (32 bytes or more) of the API's JWT bearer tokens")
	fs.BoolVar(&c.AdminAPI, "admin-api", c.envBool("admin-api", c.AdminAPI), "serve the admin endpoints (status, dead letters), to admin tokens when auth is on (env "+EnvName("admin-api")+")")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.envFloat("rate-limit", c.RateLimit), "requests per second each API token may make, 0 for no limit (env "+EnvName("rate-limit")+")")
	str(&c.AdminOrg, "admin-org", "organization whose tokens may hold the admin role, which sees every tenant's dead letters")
	num(&c.RateBurst, "rate-burst", "requests a token may make at once above --rate-limit (0: the rate rounded up)")
	num(&c.MaxBody, "max-body", "largest API request body, in bytes")
	num(&c.MaxLaunches, "max-launches", "most launches one API request carries")
}

// Verifier loads the API's token verifier from the keys file and the JWT
// secret; it is nil, with no error, when the API runs open. Errors name
// the flag at fault.
func (a API) Verifier() (*auth.Verifier, error) {
	var (
		keys *auth.Keys
		jwt  *auth.JWT
		errs []error
		err  error
	)
	if a.AuthKeys != "" {
		if keys, err = auth.LoadKeys(a.AuthKeys); err != nil {
			errs = append(errs, fmt.Errorf("--auth-keys: %w", err))
		}
	}
	if a.AuthJWTSecretFile != "" {
		if jwt, err = auth.LoadJWT(a.AuthJWTSecretFile); err != nil {
			errs = append(errs, fmt.Errorf("--auth-jwt-secret-file: %w", err))
		}
	}
	if errs != nil || (keys == nil && jwt == nil) {
		return nil, errors.Join(errs...)
	}
	v, err := auth.NewVerifier(keys, jwt, auth.WithAdminOrg(a.AdminOrg))
	if err != nil {
		flag := "auth-keys"
		if !events.ValidID(a.AdminOrg) {
			flag = "admin-org"
		}
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return v, nil
}

// validateAPI checks the HTTP API's settings.
func (c Config) validateAPI() []error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if _, err := c.Verifier(); err != nil {
		errs = append(errs, err)
	}
	if !(c.RateLimit >= 0) || math.IsInf(c.RateLimit, 0) {
		bad("rate-limit", "%g is not a number of requests per second", c.RateLimit)
	}
	if c.RateLimit > 0 && !c.Auth() {
		bad("rate-limit", "limits each token, so it needs --auth-keys or --auth-jwt-secret-file")
	}
	if c.RateBurst < 0 {
		bad("rate-burst", "%d must not be negative", c.RateBurst)
	}
	if c.MaxBody < 1024 || c.MaxBody > 64<<20 {
		bad("max-body", "%d is out of range 1024-67108864", c.MaxBody)
	}
	if c.MaxLaunches < 1 || c.MaxLaunches > 10000 {
		bad("max-launches", "%d is out of range 1-10000", c.MaxLaunches)
	}
	return errs
}

// Auth reports whether the API authenticates tokens.
func (c Config) Auth() bool { return c.AuthKeys != "" || c.AuthJWTSecretFile != "" }

func (c *Config) envFloat(flag string, def float64) float64 {
	return envParse(c, flag, def, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }, "a number")
}
