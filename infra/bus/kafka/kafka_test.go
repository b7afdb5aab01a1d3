package kafka_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/bus/bustest"
	"github.com/evflow/evflow/infra/bus/kafka"
	"github.com/evflow/evflow/infra/testenv"
)

// A publisher that died between its claim and its settle leaves the
// aggregate in doubt; the next conditional append finds out from the log
// whether the event was stored.
func TestClaimLeftInDoubtIsResolvedFromTheLog(t *testing.T) {
	s := newStores(t)
	for _, stored := range []bool{false, true} {
		name := map[bool]string{false: "NeverStored", true: "Stored"}[stored]
		t.Run(name, func(t *testing.T) {
			ctx := testenv.Context(t)
			b := s.open(t, 4)
			fence := b.Heads().Fence
			const app = "appD"
			key := events.AggregateApp + "/" + app
			if err := fence.Claim(ctx, key, 0, "ghost", 300*time.Millisecond); err != nil {
				t.Fatalf("claim: %v", err)
			}
			var ghostPos uint64
			if stored { // the dead publisher's event did reach the log
				pos, err := bus.NewAppender(b.Publisher, kafka.DefaultTopic, 4).Append(ctx, nil, bustest.AppEvent("ghost", app))
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				ghostPos = pos[0]
			}
			app0 := bus.NewAppender(b.Publisher, kafka.DefaultTopic, 4)
			zero := uint64(0)
			// While the claim lasts, appends conflict.
			if _, err := app0.Append(ctx, &zero, bustest.AppEvent("next", app)); !errors.Is(err, events.ErrConflict) {
				t.Fatalf("append during the claim: %v, want ErrConflict", err)
			}
			time.Sleep(400 * time.Millisecond)
			_, err := app0.Append(ctx, &zero, bustest.AppEvent("next", app))
			if stored {
				if !errors.Is(err, events.ErrConflict) {
					t.Fatalf("append on position 0 after the ghost was stored: %v, want ErrConflict", err)
				}
				if head, err := fence.Head(ctx, key); err != nil || head != ghostPos {
					t.Fatalf("head = %d, %v; want the ghost's position %d", head, err, ghostPos)
				}
				if _, err := app0.Append(ctx, &ghostPos, bustest.AppEvent("next", app)); err != nil {
					t.Fatalf("append after the ghost: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("append after an expired claim that stored nothing: %v", err)
			}
		})
	}
}

// A fence that lost its data (Redis restarted without persistence) learns
// an aggregate's last position from the log.
func TestLostFenceLearnsTheHeadFromTheLog(t *testing.T) {
	s := newStores(t)
	ctx := testenv.Context(t)
	b := s.open(t, 4)
	app := bus.NewAppender(b.Publisher, kafka.DefaultTopic, 4)
	zero := uint64(0)
	p1, err := app.Append(ctx, &zero, bustest.AppEvent("a1", "appL"))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	p2, err := app.Append(ctx, &p1[0], bustest.AppEvent("a2", "appL"))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	s.flush(t)
	if _, err := app.Append(ctx, &p1[0], bustest.AppEvent("stale", "appL")); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("append on a stale position after the fence was lost: %v, want ErrConflict", err)
	}
	if head, err := b.Heads().Head(ctx, events.AggregateApp, "appL"); err != nil || head != p2[0] {
		t.Fatalf("head = %d, %v; want %d, found in the log", head, err, p2[0])
	}
	if _, err := app.Append(ctx, &p2[0], bustest.AppEvent("a3", "appL")); err != nil {
		t.Fatalf("append on the head: %v", err)
	}
}

// A fence behind the log (a failover lost its last writes) catches up
// from the log instead of refusing every append from then on.
func TestFenceBehindTheLogCatchesUp(t *testing.T) {
	s := newStores(t)
	ctx := testenv.Context(t)
	b := s.open(t, 4)
	app := bus.NewAppender(b.Publisher, kafka.DefaultTopic, 4)
	zero := uint64(0)
	p1, err := app.Append(ctx, &zero, bustest.AppEvent("a1", "appB"))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	p2, err := app.Append(ctx, &p1[0], bustest.AppEvent("a2", "appB"))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	s.setFence(t, events.AggregateApp+"/appB", p1[0]) // the settle of a2 lost
	p3, err := app.Append(ctx, &p2[0], bustest.AppEvent("a3", "appB"))
	if err != nil {
		t.Fatalf("append on the log's head, the fence behind it: %v", err)
	}
	if head, err := b.Heads().Head(ctx, events.AggregateApp, "appB"); err != nil || head != p3[0] {
		t.Fatalf("head = %d, %v; want %d", head, err, p3[0])
	}
	if _, err := app.Append(ctx, &p2[0], bustest.AppEvent("stale", "appB")); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("append on a stale position: %v, want ErrConflict", err)
	}
}

// recorder is an Assigner that records who owns what, and fails the test
// when a partition is assigned to a member while another still has it.
type recorder struct {
	t     *testing.T
	mu    *sync.Mutex
	owner map[int]string
	name  string
}

func (r recorder) Assign(p int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o, ok := r.owner[p]; ok {
		r.t.Errorf("partition %d assigned to %s while %s still has it", p, r.name, o)
	}
	r.owner[p] = r.name
}

func (r recorder) Revoke(p int) {
	time.Sleep(50 * time.Millisecond) // a drain
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.owner[p] == r.name {
		delete(r.owner, p)
	}
}

func TestGroupSharesPartitionsAndHandsThemOverOnStop(t *testing.T) {
	const partitions = 6
	k := testenv.StartKafka(t, 1)
	ctx := testenv.Context(t)
	brokers := kafka.Brokers(k.Brokers())
	b, err := kafka.Open(ctx, kafka.Config{Brokers: brokers, Partitions: partitions})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(b.Close)
	var mu sync.Mutex
	owner := map[int]string{}
	member := func(name string) *kafka.Group {
		g, err := kafka.NewGroup(kafka.GroupConfig{Brokers: brokers, Replica: name, SessionTimeout: time.Second},
			recorder{t: t, mu: &mu, owner: owner, name: name})
		if err != nil {
			t.Fatalf("group: %v", err)
		}
		if err := g.Start(); err != nil {
			t.Fatalf("start: %v", err)
		}
		t.Cleanup(func() { g.Stop(ctx) })
		return g
	}
	owned := func(gs ...*kafka.Group) func() error {
		return func() error {
			var all []int
			for _, g := range gs {
				if len(g.Owned()) == 0 {
					return errors.New(g.Replica() + " owns nothing")
				}
				all = append(all, g.Owned()...)
			}
			slices.Sort(all)
			if len(all) != partitions || slices.Compact(all) == nil || len(slices.Compact(all)) != partitions {
				return errors.New("partitions not all owned exactly once")
			}
			return nil
		}
	}
	a := member("a")
	testenv.WaitFor(t, 20*time.Second, owned(a))
	bm := member("b")
	testenv.WaitFor(t, 20*time.Second, owned(a, bm))
	if na, nb := len(a.Owned()), len(bm.Owned()); na != 3 || nb != 3 {
		t.Fatalf("split %d/%d, want 3/3", na, nb)
	}
	start := time.Now()
	bm.Stop(ctx)
	testenv.WaitFor(t, 20*time.Second, owned(a))
	t.Logf("a owned all %d partitions %s after b stopped", partitions, time.Since(start).Round(time.Millisecond))
	if a.Takeovers() != 3 {
		t.Errorf("a took over %d partitions, want 3", a.Takeovers())
	}
}
