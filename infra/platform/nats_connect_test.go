package platform

import (
	"strings"
	"testing"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/natsd"
	"github.com/evflow/evflow/infra/testenv"
)

// The replica's connection to its own embedded server accepts that
// server's certificate whatever name it is dialled by, and no other, even
// one of the same CA.
func TestEmbeddedConnectionPinsTheServersCertificate(t *testing.T) {
	ca := testenv.NewCA(t)
	served, other := ca.Server(), ca.Server()
	n := testenv.StartNATSWith(t, natsd.Config{TLS: natsd.TLS{CertFile: served.CertFile, KeyFile: served.KeyFile}})
	// 0.0.0.0 is a name the certificate does not hold.
	url := strings.Replace(n.URL(), "127.0.0.1", "0.0.0.0", 1)

	cfg := config.Default()
	cfg.NATSTLSCert, cfg.NATSTLSKey = served.CertFile, served.KeyFile
	nc, err := connectNATS(cfg, url, "pinned", true)
	if err != nil {
		t.Fatalf("connect to the embedded server's certificate: %v", err)
	}
	nc.Close()

	cfg.NATSTLSCert, cfg.NATSTLSKey = other.CertFile, other.KeyFile
	if _, err := connectNATS(cfg, url, "pinned", true); err == nil || !strings.Contains(err.Error(), "not the embedded server's") {
		t.Fatalf("another certificate of the same CA: err = %v, want a pin mismatch", err)
	}
}

func TestNATSOptionsNameTheFlagAtFault(t *testing.T) {
	cfg := config.Default()
	cfg.NATSURL, cfg.NATSNKey = "nats://127.0.0.1:1", t.TempDir()+"/missing.nk"
	if _, err := natsOptions(cfg, false); err == nil || !strings.Contains(err.Error(), "--nats-nkey") {
		t.Errorf("missing seed: err = %v, want one naming --nats-nkey", err)
	}
	cfg.NATSNKey, cfg.NATSCA = "", t.TempDir()+"/missing.pem"
	if _, err := natsOptions(cfg, false); err == nil || !strings.Contains(err.Error(), "--nats-ca") {
		t.Errorf("missing CA: err = %v, want one naming --nats-ca", err)
	}
}
