package redis

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

func TestPasswordIsRequiredAndNeverShown(t *testing.T) {
	const pw = "redis-pw-7f3a9"
	for _, tc := range []struct {
		name string
		opts testenv.RedisOptions
	}{
		{"requirepass", testenv.RedisOptions{Password: pw}},
		{"ACL user", testenv.RedisOptions{Username: "evflow", Password: pw}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.StartRedisWith(t, tc.opts)
			good := ClientConfig{Addr: r.Addr, Username: tc.opts.Username, Password: pw}
			useStore(t, good)

			none := good
			none.Username, none.Password = "", ""
			wrong := good
			wrong.Password = pw + "-wrong"
			for name, cfg := range map[string]ClientConfig{"no password": none, "wrong password": wrong} {
				err := connectErr(cfg)
				if err == nil {
					t.Fatalf("%s: connected", name)
				}
				if !strings.Contains(err.Error(), "NOAUTH") && !strings.Contains(err.Error(), "WRONGPASS") {
					t.Errorf("%s: err = %v, want Redis' NOAUTH or WRONGPASS", name, err)
				}
				if strings.Contains(err.Error(), pw) {
					t.Errorf("%s: error %q shows the password", name, err)
				}
			}
		})
	}
}

func TestTLSWithCA(t *testing.T) {
	ca := testenv.NewCA(t)
	r := testenv.StartRedisWith(t, testenv.RedisOptions{Password: "pw", TLS: ca})
	useStore(t, ClientConfig{Addr: r.Addr, Password: "pw", CAFile: ca.CertFile})
	useStore(t, ClientConfig{Addr: r.Addr, Password: "pw", TLS: true, CAFile: ca.CertFile})

	if err := connectErr(ClientConfig{Addr: r.Addr, Password: "pw", TLS: true}); !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("TLS without the CA: err = %v, want x509.UnknownAuthorityError", err)
	}
	if err := connectErr(ClientConfig{Addr: r.Addr, Password: "pw", MaxRetries: -1, DialTimeout: time.Second}); err == nil {
		t.Errorf("plain TCP to a TLS port connected")
	}
	if err := connectErr(ClientConfig{Addr: r.Addr, CAFile: "/nonexistent/ca.pem"}); err == nil || !strings.Contains(err.Error(), "CAFile") {
		t.Errorf("missing CA file: err = %v, want one naming CAFile", err)
	}
}

func TestSentinelWithPasswordsAndTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	rs := testenv.StartRedisSentinelWith(t, testenv.RedisOptions{Password: "data-pw", SentinelPassword: "sentinel-pw", TLS: ca})
	good := ClientConfig{Sentinels: []string{rs.Sentinel}, MasterSet: rs.MasterSet, Password: "data-pw", SentinelPassword: "sentinel-pw", CAFile: ca.CertFile}
	useStore(t, good)
	noCA := good
	noCA.CAFile, noCA.TLS = "", true
	if err := connectErr(noCA); !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("TLS without the CA: err = %v, want x509.UnknownAuthorityError", err)
	}
	noSentinelPw := good
	noSentinelPw.SentinelPassword = ""
	if err := connectErr(noSentinelPw); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("without the Sentinel's password: err = %v, want NOAUTH", err)
	}
	noDataPw := good
	noDataPw.Password = ""
	if err := connectErr(noDataPw); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("without the primary's password: err = %v, want NOAUTH", err)
	}
}

func TestValidateSecurity(t *testing.T) {
	for _, tc := range []struct {
		cfg  ClientConfig
		want string
	}{
		{ClientConfig{Addr: "a:1", Username: "u"}, "Username needs a Password"},
		{ClientConfig{Addr: "a:1", SentinelPassword: "p"}, "SentinelPassword needs Sentinels"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// useStore connects with cfg and writes and reads a checkpoint through the store.
func useStore(t *testing.T, cfg ClientConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close()
	s, err := New(c, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, projections.RedisName, 0, 42); err != nil {
		t.Fatalf("save checkpoint: %v", err)
	}
	if pos, err := s.Checkpoint(ctx, projections.RedisName, 0); err != nil || pos != 42 {
		t.Fatalf("checkpoint = %d, %v; want 42", pos, err)
	}
}

// connectErr is the error of connecting with cfg.
func connectErr(cfg ClientConfig) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Connect(ctx, cfg)
	if err == nil {
		c.Close()
	}
	return err
}
