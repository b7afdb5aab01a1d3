package platform_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/testenv"
)

// TestStreamLeaderLossKeepsEveryAcknowledgedLaunch runs a replica on a
// 3-node NATS cluster (R3 stream) and shuts the stream leader down in the
// middle of publishing: publishing resumes by itself, and every launch the
// API acknowledged is counted once in both stores.
func TestStreamLeaderLossKeepsEveryAcknowledgedLaunch(t *testing.T) {
	nc := testenv.StartNATSCluster(t, 3)
	s := newStand(t)
	s.cfg.NATSURL = nc.URLs()
	s.cfg.StreamReplicas = 3
	r := s.start(t)

	const batches, perBatch = 40, 50
	acked := 0
	var leaderDown time.Time
	for b := range batches {
		if b == batches/2 {
			leader := nc.StreamLeader(t, "EVFLOW")
			nc.Shutdown(t, leader)
			leaderDown = time.Now()
		}
		var ids []string
		for i := range perBatch {
			ids = append(ids, fmt.Sprintf("b%d-%d", b, i))
		}
		// A client retries a refused batch with the same ids until it is acknowledged.
		testenv.WaitFor(t, 30*time.Second, func() error {
			if code := r.call("POST", "/v1/launches", launches("weather", ids, []string{"d1", "d2", "d3"}), nil); code != http.StatusAccepted {
				return fmt.Errorf("batch %d: status %d", b, code)
			}
			return nil
		})
		acked += perBatch
		if b == batches/2 {
			t.Logf("first batch after the leader went down acknowledged in %s", time.Since(leaderDown))
		}
	}
	eventually(r, "/v1/apps/weather/stats?day="+day, func(_ int, st httpapi.Stats) error {
		if st.Launches != int64(acked) || st.StoredLaunches != int64(acked) || st.UniqueDevices != 3 {
			return fmt.Errorf("stats %+v, want %d launches from 3 devices", st, acked)
		}
		return nil
	})
	if st := r.status(); st.StreamMessages != uint64(acked) {
		t.Fatalf("stream holds %d events, want the %d acknowledged, once each", st.StreamMessages, acked)
	}
}
