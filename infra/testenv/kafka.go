package testenv

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process Kafka cluster (franz-go's kfake) on loopback: it
// speaks the Kafka protocol (produce, fetch, consumer groups, idempotent
// producers, offsets by time) but keeps one copy of the data, so it proves
// protocol behaviour, not broker replication.
type Kafka struct {
	*kfake.Cluster
}

// Brokers returns the comma-separated broker addresses.
func (k *Kafka) Brokers() string { return strings.Join(k.ListenAddrs(), ",") }

// StartKafka starts a kfake cluster of brokers nodes, closed when the test
// ends. Its groups accept session timeouts down to 500ms, so takeover
// tests stay short; a real broker's minimum is 6s by default.
func StartKafka(t testing.TB, brokers int) *Kafka {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatalf("testenv: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Kafka{Cluster: c}
}
