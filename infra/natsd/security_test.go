package natsd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/evflow/evflow/infra/natsd"
	"github.com/evflow/evflow/infra/testenv"
)

func TestTLSWithCAAndPassword(t *testing.T) {
	ca := testenv.NewCA(t)
	cert := ca.Server()
	n := testenv.StartNATSWith(t, natsd.Config{
		Auth: natsd.Auth{User: "evflow", Password: "s3cret-pw"},
		TLS:  natsd.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile},
	})
	if !strings.HasPrefix(n.URL(), "tls://") {
		t.Fatalf("URL %q: want a tls:// URL", n.URL())
	}

	nc := connect(t, n.URL(), nats.RootCAs(ca.CertFile), nats.UserInfo("evflow", "s3cret-pw"))
	roundTrip(t, nc)

	_, err := nats.Connect(n.URL(), nats.UserInfo("evflow", "s3cret-pw"))
	if !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("client without the CA: err = %v, want x509.UnknownAuthorityError", err)
	}
	plain := strings.Replace(n.URL(), "tls://", "nats://", 1)
	_, err = nats.Connect(plain, nats.UserInfo("evflow", "s3cret-pw"), nats.Secure(&tls.Config{RootCAs: x509.NewCertPool()}))
	if err == nil {
		t.Errorf("client trusting no CA connected")
	}
	_, err = nats.Connect(n.URL(), nats.RootCAs(ca.CertFile), nats.UserInfo("evflow", "wrong"))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("wrong password: err = %v, want nats.ErrAuthorization", err)
	}
	_, err = nats.Connect(n.URL(), nats.RootCAs(ca.CertFile))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("no credentials: err = %v, want nats.ErrAuthorization", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %q shows the password", err)
	}
}

func TestNKeyUser(t *testing.T) {
	seedFile, pub := newNKey(t)
	otherSeed, _ := newNKey(t)
	n := testenv.StartNATSWith(t, natsd.Config{Auth: natsd.Auth{NKey: pub}})

	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatalf("nkey option: %v", err)
	}
	roundTrip(t, connect(t, n.URL(), opt))

	wrong, err := nats.NkeyOptionFromSeed(otherSeed)
	if err != nil {
		t.Fatalf("nkey option: %v", err)
	}
	if _, err := nats.Connect(n.URL(), wrong); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("another nkey: err = %v, want nats.ErrAuthorization", err)
	}
	if _, err := nats.Connect(n.URL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("no nkey: err = %v, want nats.ErrAuthorization", err)
	}
}

func TestMutualTLSRequiresAClientCertificateOfTheCA(t *testing.T) {
	ca, other := testenv.NewCA(t), testenv.NewCA(t)
	cert := ca.Server()
	n := testenv.StartNATSWith(t, natsd.Config{TLS: natsd.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, CAFile: ca.CertFile}})

	client := ca.Client("evflow")
	roundTrip(t, connect(t, n.URL(), nats.RootCAs(ca.CertFile), nats.ClientCert(client.CertFile, client.KeyFile)))

	if _, err := nats.Connect(n.URL(), nats.RootCAs(ca.CertFile)); err == nil {
		t.Errorf("client without a certificate connected")
	}
	stranger := other.Client("evflow")
	if _, err := nats.Connect(n.URL(), nats.RootCAs(ca.CertFile), nats.ClientCert(stranger.CertFile, stranger.KeyFile)); err == nil {
		t.Errorf("client with a certificate of another CA connected")
	}
}

func TestStartRejectsInvalidSecurity(t *testing.T) {
	ca := testenv.NewCA(t)
	cert := ca.Server()
	seed, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	rawSeed, _ := seed.Seed()
	for _, tc := range []struct {
		name string
		auth natsd.Auth
		tls  natsd.TLS
		want string
	}{
		{"user without password", natsd.Auth{User: "u"}, natsd.TLS{}, "Auth.User and Auth.Password go together"},
		{"password without user", natsd.Auth{Password: "p"}, natsd.TLS{}, "Auth.User and Auth.Password go together"},
		{"nkey and user", natsd.Auth{User: "u", Password: "p", NKey: "UABC"}, natsd.TLS{}, "exclude each other"},
		{"seed as nkey", natsd.Auth{NKey: string(rawSeed)}, natsd.TLS{}, "not a user's public nkey"},
		{"cert without key", natsd.Auth{}, natsd.TLS{CertFile: cert.CertFile}, "TLS.CertFile and TLS.KeyFile go together"},
		{"CA without cert", natsd.Auth{}, natsd.TLS{CAFile: ca.CertFile}, "TLS.CAFile verifies clients"},
		{"missing file", natsd.Auth{}, natsd.TLS{CertFile: cert.CertFile, KeyFile: "/nonexistent/key.pem"}, "TLS.KeyFile"},
		{"key of another cert", natsd.Auth{}, natsd.TLS{CertFile: cert.CertFile, KeyFile: ca.Server().KeyFile}, "TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := natsd.Start(natsd.Config{Dir: t.TempDir(), Port: -1, Auth: tc.auth, TLS: tc.tls})
			if err == nil {
				s.Shutdown()
				t.Fatal("Start succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(rawSeed)) {
				t.Errorf("error %q shows the seed", err)
			}
		})
	}
}

// newNKey writes a new user nkey's seed to a file and returns the file and
// the public key.
func newNKey(t *testing.T) (seedFile, public string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatalf("nkey: %v", err)
	}
	seed, _ := kp.Seed()
	public, _ = kp.PublicKey()
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return seedFile, public
}

func connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// roundTrip publishes through JetStream on nc and consumes it back.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SEC", Subjects: []string{"sec.>"}})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "sec.a", []byte("hello")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	if string(m.Data()) != "hello" {
		t.Fatalf("consumed %q, want hello", m.Data())
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatalf("ack: %v", err)
	}
}
