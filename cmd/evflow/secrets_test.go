package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/evflow/evflow/infra/auth"
	"github.com/evflow/evflow/infra/testenv"
)

// Secrets given to evflow — a NATS password, an nkey seed, a Redis
// password, a password in the MongoDB URI, API tokens and the JWT secret —
// appear nowhere in what it prints: serve's log at debug level (text and
// JSON), the errors of starts that fail for a wrong password, -h, status
// (table and JSON), the errors of publish and replay, and the answers to
// refused tokens.
func TestSecretsNeverAppearInOutput(t *testing.T) {
	bin := binary(t)
	const (
		natsPW, redisPW, mongoPW = "nats-pw-Qx7r2", "redis-pw-Lm4k9", "mongo-pw-Zt8w3"
		wrongPW, urlPW           = "wrong-pw-Hy6d1", "url-pw-Vb5n0"
	)
	seedFile, seed := nkeySeed(t)
	api := newAPITokens(t)
	secrets := append([]string{natsPW, redisPW, mongoPW, wrongPW, urlPW, seed, strings.TrimPrefix(seed, "SU")}, api.secrets()...)
	ca := testenv.NewCA(t)
	cert := ca.Server()
	rds := testenv.StartRedisWith(t, testenv.RedisOptions{Password: redisPW})
	// FerretDB (SQLite) takes PLAIN credentials without checking them: the
	// URI's password reaches the driver, which sends it.
	mongoURI := strings.Replace(testenv.StartMongo(t).URI(), "mongodb://", "mongodb://evflow:"+mongoPW+"@", 1) + "&authMechanism=PLAIN"
	natsAddr := freeAddr(t)
	_, natsPort, _ := net.SplitHostPort(natsAddr)

	var outputs []output
	check := func(o output) {
		t.Helper()
		outputs = append(outputs, o)
		for _, s := range secrets {
			if strings.Contains(o.text, s) {
				t.Errorf("%s shows the secret %q:\n%s", o.name, s, o.text)
			}
		}
	}

	// A: embedded NATS with a user and password (flag), Redis password in
	// the environment, the Mongo password in the URI; debug logs, as text.
	a := startServe(t, bin, []string{"EVFLOW_REDIS_PASSWORD=" + redisPW},
		"--nats-port", natsPort, "--nats-user", "evflow", "--nats-password", natsPW,
		"--redis-addr", rds.Addr, "--mongo-uri", mongoURI, "--log-level", "debug", "--admin-api")
	// B: embedded NATS with an nkey and TLS, Redis password as a flag, API
	// tokens from a keys file and a JWT secret; JSON logs.
	b := startServe(t, bin, nil,
		"--nats-port", "-1", "--nats-nkey", seedFile, "--nats-tls-cert", cert.CertFile, "--nats-tls-key", cert.KeyFile,
		"--redis-addr", rds.Addr, "--redis-password", redisPW, "--redis-db", "1",
		"--mongo-uri", mongoURI, "--mongo-db", "evflow_b", "--log-level", "debug", "--log-format", "json",
		"--admin-api", "--auth-keys", api.keysFile, "--auth-jwt-secret-file", api.secretFile)
	b.token = api.publisher
	statusEnv := map[*proc][]string{a: nil, b: {"EVFLOW_TOKEN=" + api.admin}}
	for _, p := range []*proc{a, b} {
		if code, err := post(p, `{"type":"app.create","tenant":"acme","app_id":"weather","name":"Weather"}`); err != nil || code != http.StatusOK {
			t.Fatalf("%s: create: %d %v\n%s", p.id, code, err, p.logs.String())
		}
		testenv.WaitFor(t, 30*time.Second, func() error {
			code, err := get(p, "/v1/apps/weather", nil)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("app: %d", code)
			}
			return err
		})
		for _, args := range [][]string{{"status", "--addr", p.base}, {"status", "--json", "--addr", p.base}} {
			o := cli(t, bin, statusEnv[p], args...)
			if o.err != nil {
				t.Errorf("%s: %v\n%s", o.name, o.err, o.text)
			}
			check(o)
		}
	}

	// Starts that fail for a wrong password, and operator commands that do.
	natsURL := "nats://" + natsAddr
	helpEnv := []string{"EVFLOW_NATS_PASSWORD=" + natsPW, "EVFLOW_REDIS_PASSWORD=" + redisPW, "EVFLOW_MONGO_URI=" + mongoURI,
		"EVFLOW_NATS_URL=nats://evflow:" + urlPW + "@" + natsAddr, "EVFLOW_TOKEN=" + api.admin}
	failing := []struct {
		name string
		env  []string
		args []string
	}{
		{"serve, wrong NATS password", nil, []string{"serve", "--data-dir", t.TempDir(), "--http-addr", freeAddr(t), "--nats-url", natsURL,
			"--nats-user", "evflow", "--nats-password", wrongPW, "--redis-addr", rds.Addr, "--redis-password", redisPW, "--mongo-uri", mongoURI}},
		{"serve, wrong Redis password", []string{"EVFLOW_REDIS_PASSWORD=" + wrongPW}, []string{"serve", "--data-dir", t.TempDir(),
			"--http-addr", freeAddr(t), "--nats-url", natsURL, "--nats-user", "evflow", "--nats-password", natsPW,
			"--redis-addr", rds.Addr, "--mongo-uri", mongoURI}},
		{"serve, Mongo URI password badly escaped", nil, []string{"serve", "--data-dir", t.TempDir(), "--http-addr", freeAddr(t),
			"--nats-port", "-1", "--redis-addr", rds.Addr, "--redis-password", redisPW,
			"--mongo-uri", strings.Replace(mongoURI, mongoPW, "%zz"+mongoPW, 1)}},
		{"publish, password in the NATS URL", nil, []string{"publish", "launches", "--bus", "jetstream", "--count", "1",
			"--nats-url", "nats://evflow:" + urlPW + "@" + natsAddr}},
		{"replay, wrong passwords", []string{"EVFLOW_NATS_PASSWORD=" + wrongPW}, []string{"replay", "--all", "--dry-run",
			"--nats-url", natsURL, "--nats-user", "evflow", "--redis-addr", rds.Addr, "--redis-password", wrongPW, "--mongo-uri", mongoURI}},
		{"status, an unknown token", nil, []string{"status", "--addr", b.base, "--token", api.unknown}},
		{"status, an expired JWT", []string{"EVFLOW_TOKEN=" + api.expiredJWT}, []string{"status", "--addr", b.base}},
		{"status, a reader's JWT", []string{"EVFLOW_TOKEN=" + api.readerJWT}, []string{"status", "--addr", b.base}},
		{"serve -h", helpEnv, []string{"serve", "-h"}},
		{"replay -h", helpEnv, []string{"replay", "-h"}},
		{"publish launches -h", helpEnv, []string{"publish", "launches", "-h"}},
		{"status -h", helpEnv, []string{"status", "-h"}},
		{"dlq list -h", helpEnv, []string{"dlq", "list", "-h"}},
		{"status, a mistyped flag", helpEnv, []string{"status", "--jsn"}},
	}
	for _, f := range failing {
		o := cli(t, bin, f.env, f.args...)
		o.name = f.name
		if !strings.HasSuffix(f.name, "-h") && o.err == nil {
			t.Errorf("%s succeeded:\n%s", f.name, o.text)
		}
		check(o)
	}
	for _, p := range []*proc{a, b} {
		check(output{name: p.id + "'s log", text: p.logs.String()})
	}
	for _, want := range []string{"Authorization Violation", "WRONGPASS", "percent-encoded", "REDACTED",
		"401 Unauthorized", "has expired", "lacks the admin role"} {
		if !anyContains(outputs, want) {
			t.Errorf("no output says %q: the failures were not the ones meant", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, o := range outputs {
			t.Logf("--- %s (err %v):\n%s", o.name, o.err, o.text)
		}
	}
}

// output is what one run of evflow printed.
type output struct {
	name, text string
	err        error
}

func anyContains(outs []output, s string) bool {
	for _, o := range outs {
		if strings.Contains(o.text, s) {
			return true
		}
	}
	return false
}

// cli runs evflow with args and env added to the environment, and returns
// what it printed on stdout and stderr.
func cli(t *testing.T, bin string, env []string, args ...string) output {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("evflow %s: %v", args[0], err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return output{name: "evflow " + strings.Join(args, " "), text: out.String(), err: err}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("evflow %s still running after 90s:\n%s", strings.Join(args, " "), out.String())
		return output{}
	}
}

// startServe runs `evflow serve` on a temporary data directory and waits
// until it is ready.
func startServe(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"serve", "--data-dir", t.TempDir(), "--http-addr", addr, "--partitions", "4"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	p := &proc{id: "serve " + strings.Join(args[:4], " "), base: "http://" + addr, cmd: cmd, logs: &logBuffer{}, done: make(chan error, 1)}
	go p.logs.copy(stderr)
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done })
	testenv.WaitFor(t, 60*time.Second, func() error {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited: %v\n%s", p.id, err, p.logs.String())
		default:
		}
		code, err := get(p, "/readyz", nil)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("readyz: %d", code)
		}
		return err
	})
	return p
}

func post(p *proc, body string) (int, error) {
	return p.call(http.MethodPost, "/v1/commands", strings.NewReader(body), nil)
}

// nkeySeed writes a new user nkey seed to a file; it returns the file and the seed.
func nkeySeed(t *testing.T) (file, seed string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := kp.Seed()
	file = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return file, string(raw)
}

// apiTokens are the API secrets of a replica checking tokens.
type apiTokens struct {
	keysFile, secretFile      string
	jwtSecret                 string
	publisher, admin, unknown string // keys-file tokens (unknown is in no file)
	readerJWT, expiredJWT     string
}

func newAPITokens(t *testing.T) apiTokens {
	t.Helper()
	dir := t.TempDir()
	a := apiTokens{keysFile: filepath.Join(dir, "keys.json"), secretFile: filepath.Join(dir, "jwt.secret"),
		jwtSecret: "jwt-secret-" + strings.Repeat("Kp3", 12)}
	var keys []auth.Key
	for _, k := range []struct {
		tok   *string
		name  string
		roles []auth.Role
	}{{&a.publisher, "app", []auth.Role{auth.Publisher, auth.Reader}}, {&a.admin, "ops", []auth.Role{auth.Admin}}, {&a.unknown, "", nil}} {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		*k.tok = tok
		if k.name != "" {
			tenant := "acme"
			if k.name == "ops" {
				tenant = auth.DefaultAdminOrg
			}
			keys = append(keys, auth.Key{Name: k.name, TokenSHA256: auth.Digest(tok), Tenant: tenant, Roles: k.roles})
		}
	}
	raw, _ := json.Marshal(map[string]any{"keys": keys})
	for path, body := range map[string]string{a.keysFile: string(raw), a.secretFile: a.jwtSecret} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	j, err := auth.NewJWT([]byte(a.jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	reader := auth.Principal{Name: "dashboard", Tenant: "acme", Roles: []auth.Role{auth.Reader}}
	a.readerJWT, _ = j.Mint(reader, time.Hour, time.Now())
	a.expiredJWT, _ = j.Mint(reader, time.Minute, time.Now().Add(-time.Hour))
	return a
}

// secrets are the values that must never be printed; a JWT's signature
// alone is secret enough to check for.
func (a apiTokens) secrets() []string {
	sig := func(jwt string) string { return jwt[strings.LastIndexByte(jwt, '.')+1:] }
	return []string{a.jwtSecret, a.publisher, a.admin, a.unknown, a.readerJWT, sig(a.readerJWT), a.expiredJWT, sig(a.expiredJWT)}
}
