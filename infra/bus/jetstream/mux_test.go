package jetstream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/bus/bustest"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/testenv"
)

// One consumer serves every partition: each gets its own events, in order,
// from its own start; a partition that leaves does not stop the others,
// and Close ends the rest.
func TestMuxDeliversEachPartitionFromItsOwnStart(t *testing.T) {
	js, _ := setup(t)
	ctx := testenv.Context(t)
	app := bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, partitions)
	byPart := make([][]uint64, partitions)
	for i := range 200 {
		e := bustest.Launch(fmt.Sprintf("m%d", i), fmt.Sprintf("app%d", i%11), i)
		pos, err := app.Append(ctx, nil, e)
		if err != nil {
			t.Fatal(err)
		}
		p := events.Partition(e.AggregateID, partitions)
		byPart[p] = append(byPart[p], pos[0])
	}
	skip := func(p int) int { return p * 3 } // partition p starts after its skip(p)-th event
	mux, err := evjs.NewMux(js, evjs.DefaultTopic, evjs.SubscriberConfig{Window: 8, StartAfter: func(_ context.Context, p int) (uint64, error) {
		if skip(p) == 0 {
			return 0, nil
		}
		return byPart[p][skip(p)-1], nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	leaveCtx, leave := context.WithCancel(ctx)
	defer leave()
	var wg sync.WaitGroup
	for p := range partitions {
		sctx := ctx
		if p == 0 {
			sctx = leaveCtx
		}
		ch, err := mux.Subscribe(sctx, bus.PartitionTopic(evjs.DefaultTopic, p))
		if err != nil {
			t.Fatal(err)
		}
		want := byPart[p][skip(p):]
		wg.Go(func() {
			timeout := time.After(20 * time.Second)
			for i := range want {
				if p == 0 && i == len(want)/2 {
					leave() // partition 0 leaves halfway
					for range ch {
					}
					return
				}
				select {
				case m, ok := <-ch:
					if !ok {
						t.Errorf("partition %d closed after %d of %d", p, i, len(want))
						return
					}
					if pos, _ := bus.Position(m); pos != want[i] || m.Metadata.Get(bus.MetaPartition) != fmt.Sprint(p) {
						t.Errorf("partition %d message %d: position %d, want %d", p, i, pos, want[i])
						return
					}
					m.Ack()
				case <-timeout:
					t.Errorf("partition %d: %d of %d messages", p, i, len(want))
					return
				}
			}
		})
	}
	wg.Wait()
	if err := mux.Close(); err != nil {
		t.Fatal(err)
	}
}
