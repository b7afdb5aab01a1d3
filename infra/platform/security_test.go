package platform_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/platform"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// A replica whose embedded nats-server requires TLS and a password (or an
// nkey and client certificates), on a Redis requiring TLS and a password
// and a FerretDB serving TLS, works end to end; so do publish and replay,
// connecting to it from outside with the CA.
func TestReplicaOverTLSWithCredentials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secure func(t *testing.T, cfg *config.Config, ca *testenv.CA)
		// client is what an outside NATS client needs besides the CA.
		client func(cfg config.Config) []nats.Option
	}{
		{"password", func(t *testing.T, cfg *config.Config, ca *testenv.CA) {
			cfg.NATSUser, cfg.NATSPassword = "evflow", "nats-pw-5c1e"
		}, func(cfg config.Config) []nats.Option {
			return []nats.Option{nats.UserInfo(cfg.NATSUser, cfg.NATSPassword.Reveal())}
		}},
		{"nkey and client certificates", func(t *testing.T, cfg *config.Config, ca *testenv.CA) {
			cfg.NATSNKey = seedFile(t)
			client := ca.Client("evflow")
			cfg.NATSCA, cfg.NATSClientCert, cfg.NATSClientKey = ca.CertFile, client.CertFile, client.KeyFile
		}, func(cfg config.Config) []nats.Option {
			nkey, err := nats.NkeyOptionFromSeed(cfg.NATSNKey)
			if err != nil {
				panic(err)
			}
			return []nats.Option{nkey, nats.ClientCert(cfg.NATSClientCert, cfg.NATSClientKey)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := testenv.NewCA(t)
			s := newSecureStand(t, ca)
			tc.secure(t, &s.cfg, ca)
			r := s.start(t)

			r.command(cmd("app.create", "weather", "name", "Weather"))
			appWhere(r, "weather", func(projections.App) error { return nil })

			// Outside clients need the CA and the credentials.
			withCA := append(tc.client(s.cfg), nats.RootCAs(ca.CertFile))
			nc, err := nats.Connect(r.r.NATSURL, withCA...)
			if err != nil {
				t.Fatalf("client with the CA and credentials: %v", err)
			}
			nc.Close()
			if _, err := nats.Connect(r.r.NATSURL, nats.RootCAs(ca.CertFile)); err == nil {
				t.Fatalf("client without credentials connected")
			}
			if _, err := nats.Connect(r.r.NATSURL, tc.client(s.cfg)...); err == nil {
				t.Fatalf("client without the CA connected")
			}

			// publish and replay connect from outside as operators would.
			out := s.cfg
			out.NATSURL, out.NATSCA, out.NATSTLSCert, out.NATSTLSKey = r.r.NATSURL, ca.CertFile, "", ""
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ing, closeIng, err := platform.Ingester(ctx, out)
			if err != nil {
				t.Fatalf("ingester over TLS: %v", err)
			}
			defer closeIng()
			at, _ := time.Parse(time.RFC3339, day+"T08:00:00Z")
			if _, err := ing.Ingest(ctx, []handlers.Launch{{ID: "l1", AppID: "weather", Version: "1.0.0", DeviceID: "d1", Org: "org1", At: at}}); err != nil {
				t.Fatalf("ingest over TLS: %v", err)
			}
			eventually(r, "/v1/apps/weather/stats?day="+day, func(_ int, st httpapi.Stats) error {
				if st.Launches != 1 {
					return fmt.Errorf("stats %+v, want 1 launch", st)
				}
				return nil
			})
			plans, _, err := platform.Replay(ctx, out, slog.New(slog.NewTextHandler(io.Discard, nil)), platform.ReplayOptions{Projections: platform.Projections, DryRun: true, Grace: time.Second})
			if err != nil || len(plans) != len(platform.Projections) {
				t.Fatalf("replay --dry-run over TLS: %d plans, %v", len(plans), err)
			}

			// Without the CA, publish fails to verify the server.
			out.NATSCA = ""
			if _, _, err := platform.Ingester(ctx, out); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
				t.Fatalf("ingester without the CA: err = %v, want an unknown authority", err)
			}
		})
	}
}

// A replica refuses to start with a wrong Redis password, and says so.
func TestReplicaWithAWrongRedisPasswordFailsToStart(t *testing.T) {
	ca := testenv.NewCA(t)
	s := newSecureStand(t, ca)
	s.cfg.RedisPassword = "not-it"
	app, _, err := platform.New(s.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = app.Start(ctx)
		_ = app.Stop(ctx)
	}
	if err == nil {
		t.Fatal("replica started with a wrong Redis password")
	}
	if !strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "not-it") {
		t.Fatalf("err = %v, want Redis' WRONGPASS, without the password", err)
	}
}

// newSecureStand is a stand whose Redis requires TLS and a password and
// whose FerretDB serves TLS, both with certificates of ca, and whose
// embedded nats-server serves TLS with one.
func newSecureStand(t *testing.T, ca *testenv.CA) *stand {
	t.Helper()
	rds := testenv.StartRedisWith(t, testenv.RedisOptions{Password: "redis-pw-0b7d", TLS: ca})
	m := testenv.StartMongoWith(t, testenv.MongoOptions{TLS: ca})
	cert := ca.Server()
	cfg := config.Default()
	cfg.DataDir, cfg.HTTPAddr, cfg.NATSPort, cfg.Partitions = t.TempDir(), "127.0.0.1:0", -1, 4
	cfg.RedisAddr, cfg.RedisPassword, cfg.RedisCA = rds.Addr, "redis-pw-0b7d", ca.CertFile
	cfg.MongoURI, cfg.MongoMaxBulk = m.URI(), 30
	cfg.NATSTLSCert, cfg.NATSTLSKey = cert.CertFile, cert.KeyFile
	return &stand{cfg: cfg, redis: rds, mongo: m}
}

// seedFile writes a new user nkey seed to a file.
func seedFile(t *testing.T) string {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	p := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(p, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
