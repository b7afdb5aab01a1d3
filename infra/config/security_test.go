package config_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evflow/evflow/infra/config"
)

// file is an existing file, standing for a certificate, key or seed.
func file(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateNamesTheSecurityFlag(t *testing.T) {
	cert, key, ca, seed := file(t, "cert.pem"), file(t, "key.pem"), file(t, "ca.pem"), file(t, "user.nk")
	url := []string{"--nats-url", "nats://n:4222"}
	with := func(a ...string) []string { return append(append([]string{}, url...), a...) }
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"--nats-user", "u"}, "--nats-user"},
		{[]string{"--nats-password", "p"}, "--nats-password"},
		{[]string{"--nats-user", "u", "--nats-password", "p", "--nats-nkey", seed}, "--nats-nkey"},
		{with("--nats-creds", seed, "--nats-nkey", seed), "--nats-creds"},
		{[]string{"--nats-creds", seed}, "--nats-creds"},
		{[]string{"--nats-nkey", "/nonexistent/user.nk"}, "--nats-nkey"},
		{[]string{"--nats-tls-cert", cert}, "--nats-tls-cert"},
		{[]string{"--nats-tls-key", key}, "--nats-tls-cert"},
		{[]string{"--nats-tls-cert", cert, "--nats-tls-key", "/nonexistent/key.pem"}, "--nats-tls-key"},
		{[]string{"--nats-tls-cert", filepath.Dir(cert), "--nats-tls-key", key}, "--nats-tls-cert"},
		{with("--nats-tls-cert", cert, "--nats-tls-key", key), "--nats-tls-cert"},
		{with("--nats-client-cert", cert), "--nats-client-cert"},
		{with("--nats-ca", "/nonexistent/ca.pem"), "--nats-ca"},
		{[]string{"--nats-ca", ca}, "--nats-ca"},
		{[]string{"--nats-ca", ca, "--nats-tls-cert", cert, "--nats-tls-key", key}, "--nats-client-cert"},
		{[]string{"--bus", "kafka", "--kafka-brokers", "k:9092", "--nats-user", "u", "--nats-password", "p"}, "--bus"},
		{[]string{"--redis-password", "p"}, "--redis-password"},
		{[]string{"--redis-addr", "r:6379", "--redis-username", "u"}, "--redis-username"},
		{[]string{"--redis-addr", "r:6379", "--redis-sentinel-password", "p"}, "--redis-sentinel-password"},
		{[]string{"--redis-addr", "r:6379", "--redis-ca", "/nonexistent/ca.pem"}, "--redis-ca"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parse(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("args %v: err = %v, want one naming %s", tc.args, err, tc.flag)
			}
			if strings.Contains(err.Error(), "--nats-password p") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

func TestValidSecurityConfigurations(t *testing.T) {
	cert, key, ca, seed := file(t, "cert.pem"), file(t, "key.pem"), file(t, "ca.pem"), file(t, "user.nk")
	for _, args := range [][]string{
		{"--nats-user", "u", "--nats-password", "p", "--nats-tls-cert", cert, "--nats-tls-key", key},
		{"--nats-nkey", seed, "--nats-tls-cert", cert, "--nats-tls-key", key, "--nats-ca", ca, "--nats-client-cert", cert, "--nats-client-key", key},
		{"--nats-url", "tls://n:4222", "--nats-creds", seed, "--nats-ca", ca},
		{"--redis-addr", "r:6379", "--redis-username", "u", "--redis-password", "p", "--redis-ca", ca},
		{"--redis-sentinels", "s:26379", "--redis-master-set", "m", "--redis-password", "p", "--redis-sentinel-password", "q", "--redis-tls"},
	} {
		if _, err := parse(t, args...); err != nil {
			t.Errorf("args %v: %v", args, err)
		}
	}
}

func TestSecretsAreNeverPrinted(t *testing.T) {
	const pw, rpw = "nats-pw-9f2c", "redis-pw-4b1d"
	t.Setenv("EVFLOW_NATS_PASSWORD", pw)
	t.Setenv("EVFLOW_REDIS_PASSWORD", rpw)
	c := config.Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var help bytes.Buffer
	fs.SetOutput(&help)
	c.Flags(fs)
	if err := fs.Parse([]string{"--nats-user", "evflow", "--redis-addr", "r:6379", "--redis-sentinel-password", "s-pw-77"}); err != nil {
		t.Fatal(err)
	}
	if c.NATSPassword.Reveal() != pw || c.RedisPassword.Reveal() != rpw {
		t.Fatalf("passwords from the environment: %q, %q", c.NATSPassword.Reveal(), c.RedisPassword.Reveal())
	}
	fs.PrintDefaults()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", c, "pw", c.NATSPassword)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "pw", c.RedisPassword)
	js, _ := json.Marshal(c)
	for name, out := range map[string]string{
		"-h": help.String(), "%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprintf("%s", c.NATSPassword), "slog": logged.String(), "json": string(js),
	} {
		for _, secret := range []string{pw, rpw, "s-pw-77"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output shows a secret:\n%s", name, out)
			}
		}
	}
	if !strings.Contains(fmt.Sprintf("%+v", c), config.Redacted) {
		t.Errorf("%%+v does not say the password is set")
	}
	if !strings.Contains(help.String(), "EVFLOW_NATS_PASSWORD") {
		t.Errorf("-h does not name the password's environment variable:\n%s", help.String())
	}
}

func TestRedisClientConfigCarriesCredentialsAndTLS(t *testing.T) {
	ca := file(t, "ca.pem")
	c, err := parse(t, "--redis-addr", "r:6379", "--redis-username", "u", "--redis-password", "p", "--redis-ca", ca)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := c.Redis()
	if rc.Username != "u" || rc.Password != "p" || !rc.TLS || rc.CAFile != ca {
		t.Fatalf("Redis() = user %q TLS %v CA %q; want u, TLS, %s", rc.Username, rc.TLS, rc.CAFile, ca)
	}
	c, err = parse(t, "--redis-sentinels", "s:26379", "--redis-master-set", "m", "--redis-password", "p", "--redis-sentinel-password", "q")
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := c.Redis(); rc.Password != "p" || rc.SentinelPassword != "q" || rc.TLS {
		t.Fatalf("Redis() with sentinels: TLS %v, passwords not carried over", rc.TLS)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:p@h1:4222,nats://u:p@h2:4222":       "nats://REDACTED@h1:4222,nats://REDACTED@h2:4222",
		"nats://h1:4222,nats://u:p@h2:4222":           "nats://h1:4222,nats://REDACTED@h2:4222",
		"tls://u:p,w@h1:4222":                         "tls://REDACTED@h1:4222",
		"mongodb://u:p@ss@m1,m2/?replicaSet=rs0":      "mongodb://REDACTED@m1,m2/?replicaSet=rs0",
		"mongodb+srv://u:p@c.example.com/db?tls=true": "mongodb+srv://REDACTED@c.example.com/db?tls=true",
		"mongodb://u:pa/ss@h/db":                      "mongodb://REDACTED@h/db",
		"mongodb://u:pa?ss@h/db":                      "mongodb://REDACTED@h/db",
		"evflow:pw@h1:4222":                           "REDACTED@h1:4222",
		"evflow:pw@h1:4222,evflow:pw@h2:4222":         "REDACTED@h2:4222",
		// Over-redacted, the safe side: an '@' in a query cannot be told
		// from one in an unescaped password.
		"mongodb://m1:27017/?appName=a@b": "mongodb://REDACTED@b",
		"nats://h1:4222":                  "nats://h1:4222",
		"nats://u:pa://ss@h1":             "nats://REDACTED@h1",
		"mongodb://h/?tls=true&tlsCertificateKeyFilePassword=s3cret&replicaSet=rs0":            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=REDACTED&replicaSet=rs0",
		"mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok": "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=REDACTED",
		"nats://u:p@h1:4222,nats://h2:4222?x=1":                                                "nats://REDACTED@h1:4222,nats://h2:4222?x=1",
		"":                                                                                     "",
	} {
		if got := config.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
