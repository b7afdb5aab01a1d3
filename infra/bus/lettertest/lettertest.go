// Package lettertest checks that a dead-letter store keeps letters as the
// JetStream one does; each store's tests run it against a real server.
package lettertest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/bus"
)

// Store is a dead-letter store: what the projector parks letters in and
// the admin API lists, redrives and removes them from.
type Store interface {
	// Park stores l; parking one projection and position again keeps the
	// letter parked first.
	Park(ctx context.Context, l bus.Letter) error
	// Parked reports whether projection has letters of the aggregate on partition.
	Parked(ctx context.Context, projection string, partition int, aggType, aggID string) (bool, error)
	// Blocked returns the aggregates (bus.AggregateKey) that projection
	// has letters of on partition.
	Blocked(ctx context.Context, projection string, partition int) (map[string]bool, error)
	// List returns the letters of projection ("" for all) in parking
	// order, each with its Seq.
	List(ctx context.Context, projection string) ([]bus.Letter, error)
	// Get returns the letter numbered seq; an error when there is none.
	Get(ctx context.Context, seq uint64) (bus.Letter, error)
	// Delete removes the letter numbered seq; an error when there is none.
	Delete(ctx context.Context, seq uint64) error
	// Purge removes the letters of projection ("" for all) and returns
	// how many it removed.
	Purge(ctx context.Context, projection string) (uint64, error)
	// Count is the number of letters of projection ("" for all).
	Count(ctx context.Context, projection string) (uint64, error)
}

// Letters runs the contract as subtests, each on a store that open
// returns empty and that goes away when its t ends.
func Letters(t *testing.T, open func(t *testing.T) Store) {
	t.Helper()
	for _, c := range []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s Store)
	}{
		{"RoundTrip", roundTrip},
		{"ParkIsIdempotent", parkIsIdempotent},
		{"ParkedAndBlocked", parkedAndBlocked},
		{"ListOrder", listOrder},
		{"GetAndDelete", getAndDelete},
		{"PurgeAndCount", purgeAndCount},
		{"ConcurrentParks", concurrentParks},
		{"SamePositionOnTwoPartitions", samePositionOnTwoPartitions},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			c.run(t, ctx, open(t))
		})
	}
}

// letter returns a letter of projection at position on partition of the
// aggregate app/id, its fields all set.
func letter(projection string, partition int, position uint64, id string) bus.Letter {
	return bus.Letter{
		Projection: projection, Partition: partition, Position: position,
		AggregateType: "app", AggregateID: id, MessageID: fmt.Sprintf("ev-%s-%d", projection, position),
		Payload: []byte(fmt.Sprintf(`{"n":%d}`, position)), Reason: "apply: boom", Attempts: 3,
		ParkedAt: time.Date(2026, 3, 1, 21, 17, 4, 123456789, time.UTC).Add(time.Duration(position) * time.Second),
	}
}

func park(t *testing.T, ctx context.Context, s Store, ls ...bus.Letter) {
	t.Helper()
	for _, l := range ls {
		if err := s.Park(ctx, l); err != nil {
			t.Fatalf("Park(%s at %d): %v", l.Projection, l.Position, err)
		}
	}
}

func list(t *testing.T, ctx context.Context, s Store, projection string) []bus.Letter {
	t.Helper()
	ls, err := s.List(ctx, projection)
	if err != nil {
		t.Fatalf("List(%q): %v", projection, err)
	}
	return ls
}

func count(t *testing.T, ctx context.Context, s Store, projection string) uint64 {
	t.Helper()
	n, err := s.Count(ctx, projection)
	if err != nil {
		t.Fatalf("Count(%q): %v", projection, err)
	}
	return n
}

// sameLetter reports how got differs from want, whose Seq is ignored;
// payloads compare by content (a nil payload may come back empty).
func sameLetter(got, want bus.Letter) error {
	if !bytes.Equal(got.Payload, want.Payload) {
		return fmt.Errorf("payload %q, want %q", got.Payload, want.Payload)
	}
	got.Payload, want.Payload, want.Seq = nil, nil, got.Seq
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("got %+v, want %+v", got, want)
	}
	return nil
}

// positions returns the positions of ls, in order.
func positions(ls []bus.Letter) []uint64 {
	out := make([]uint64, len(ls))
	for i, l := range ls {
		out[i] = l.Position
	}
	return out
}

// roundTrip: every field comes back as parked (ParkedAt to the nanosecond,
// in UTC), from List and from Get, with a positive Seq.
func roundTrip(t *testing.T, ctx context.Context, s Store) {
	full := letter("apps", 2, 1<<40, "a1")
	bare := bus.Letter{Projection: "apps", Partition: 0, Position: 7, MessageID: "ev7", Reason: "undecodable: bad json",
		Attempts: 1, ParkedAt: time.Date(2026, 3, 2, 1, 0, 0, 1, time.FixedZone("UTC+2", 2*3600))}
	park(t, ctx, s, full, bare)
	bare.ParkedAt = bare.ParkedAt.UTC()
	got := list(t, ctx, s, "apps")
	if len(got) != 2 {
		t.Fatalf("List = %+v; want 2 letters", got)
	}
	for i, want := range []bus.Letter{full, bare} {
		if got[i].Seq == 0 {
			t.Errorf("letter %d has no Seq", i)
		}
		if err := sameLetter(got[i], want); err != nil {
			t.Errorf("List, letter %d: %v", i, err)
		}
		one, err := s.Get(ctx, got[i].Seq)
		if err != nil {
			t.Fatalf("Get(%d): %v", got[i].Seq, err)
		}
		if err := sameLetter(one, want); err != nil || one.Seq != got[i].Seq {
			t.Errorf("Get(%d): seq %d, %v", got[i].Seq, one.Seq, err)
		}
	}
}

// parkIsIdempotent: a second park of a projection and position stores
// nothing; the same position of another projection is another letter.
func parkIsIdempotent(t *testing.T, ctx context.Context, s Store) {
	first := letter("apps", 1, 10, "a1")
	again := first
	again.Reason, again.Attempts = "held behind an earlier parked event", 0
	park(t, ctx, s, first, again, first, letter("stats", 1, 10, "a1"))
	got := list(t, ctx, s, "apps")
	if len(got) != 1 {
		t.Fatalf("List(apps) after parking one position three times = %+v; want 1 letter", got)
	}
	if err := sameLetter(got[0], first); err != nil {
		t.Errorf("the letter parked first must stay: %v", err)
	}
	if n := count(t, ctx, s, ""); n != 2 {
		t.Errorf("Count(\"\") = %d; want 2", n)
	}
}

// parkedAndBlocked: letters block their aggregate for their projection on
// their partition only; letters without an aggregate block none.
func parkedAndBlocked(t *testing.T, ctx context.Context, s Store) {
	noAggregate := letter("apps", 0, 5, "")
	noAggregate.AggregateType = ""
	a1 := letter("apps", 0, 1, "a1")
	park(t, ctx, s, a1, letter("apps", 0, 2, "a2"), letter("apps", 0, 3, "a1"),
		letter("apps", 1, 4, "a3"), letter("stats", 0, 1, "a9"), noAggregate)
	for _, c := range []struct {
		projection string
		partition  int
		typ, id    string
		want       bool
	}{
		{"apps", 0, "app", "a1", true},
		{"apps", 0, "app", "a2", true},
		{"apps", 1, "app", "a3", true},
		{"apps", 0, "app", "a3", false},
		{"apps", 1, "app", "a1", false},
		{"apps", 0, "usage", "a1", false},
		{"apps", 0, "app", "a9", false},
		{"stats", 0, "app", "a9", true},
		{"stats", 0, "app", "a1", false},
		{"other", 0, "app", "a1", false},
	} {
		if got, err := s.Parked(ctx, c.projection, c.partition, c.typ, c.id); err != nil || got != c.want {
			t.Errorf("Parked(%s, %d, %s, %s) = %v, %v; want %v", c.projection, c.partition, c.typ, c.id, got, err, c.want)
		}
	}
	blocked := func(projection string, partition int, want ...string) {
		t.Helper()
		got, err := s.Blocked(ctx, projection, partition)
		wantSet := map[string]bool{}
		for _, k := range want {
			wantSet[k] = true
		}
		if err != nil || len(got) != len(wantSet) || (len(got) > 0 && !reflect.DeepEqual(got, wantSet)) {
			t.Errorf("Blocked(%s, %d) = %v, %v; want %v", projection, partition, got, err, wantSet)
		}
	}
	blocked("apps", 0, "app/a1", "app/a2")
	blocked("apps", 1, "app/a3")
	blocked("apps", 2)
	blocked("stats", 0, "app/a9")

	// a1 stays blocked until its last letter is gone.
	ls := list(t, ctx, s, "apps")
	for _, l := range ls {
		if l.Aggregate() != "app/a1" {
			continue
		}
		if parked, err := s.Parked(ctx, "apps", 0, "app", "a1"); err != nil || !parked {
			t.Errorf("Parked(apps, 0, app, a1) with a letter left = %v, %v; want true", parked, err)
		}
		if err := s.Delete(ctx, l.Seq); err != nil {
			t.Fatalf("Delete(%d): %v", l.Seq, err)
		}
	}
	if parked, err := s.Parked(ctx, "apps", 0, "app", "a1"); err != nil || parked {
		t.Errorf("Parked(apps, 0, app, a1) after deleting its letters = %v, %v; want false", parked, err)
	}
	blocked("apps", 0, "app/a2")
}

// listOrder: List returns parking order (not position order), filtered by
// projection or all, with Seqs increasing.
func listOrder(t *testing.T, ctx context.Context, s Store) {
	park(t, ctx, s, letter("apps", 0, 9, "a1"), letter("stats", 3, 4, "a2"), letter("apps", 1, 3, "a3"),
		letter("apps", 0, 5, "a1"), letter("stats", 0, 1, "a4"))
	check := func(projection string, want ...uint64) {
		t.Helper()
		got := list(t, ctx, s, projection)
		if !reflect.DeepEqual(positions(got), want) {
			t.Errorf("List(%q) positions = %v; want %v (parking order)", projection, positions(got), want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Errorf("List(%q): seq %d after %d; want increasing", projection, got[i].Seq, got[i-1].Seq)
			}
		}
		for _, l := range got {
			if projection != "" && l.Projection != projection {
				t.Errorf("List(%q) holds a letter of %s", projection, l.Projection)
			}
		}
	}
	check("apps", 9, 3, 5)
	check("stats", 4, 1)
	check("", 9, 4, 3, 5, 1)
	if got := list(t, ctx, s, "none"); len(got) != 0 {
		t.Errorf("List(none) = %+v; want none", got)
	}
}

// getAndDelete: a deleted letter is gone for Get and Delete; other
// letters stay; Get and Delete of a Seq never given fail.
func getAndDelete(t *testing.T, ctx context.Context, s Store) {
	park(t, ctx, s, letter("apps", 0, 1, "a1"), letter("apps", 0, 2, "a2"))
	ls := list(t, ctx, s, "apps")
	if len(ls) != 2 {
		t.Fatalf("List = %+v; want 2 letters", ls)
	}
	gone, kept := ls[0], ls[1]
	if err := s.Delete(ctx, gone.Seq); err != nil {
		t.Fatalf("Delete(%d): %v", gone.Seq, err)
	}
	if l, err := s.Get(ctx, gone.Seq); err == nil {
		t.Errorf("Get(%d) after Delete = %+v; want an error", gone.Seq, l)
	}
	if err := s.Delete(ctx, gone.Seq); err == nil {
		t.Errorf("Delete(%d) twice succeeded; want an error", gone.Seq)
	}
	if l, err := s.Get(ctx, kept.Seq); err != nil || l.Position != kept.Position {
		t.Errorf("Get(%d) = %+v, %v; want the letter at position %d", kept.Seq, l, err, kept.Position)
	}
	never := kept.Seq + 1000
	if l, err := s.Get(ctx, never); err == nil {
		t.Errorf("Get(%d), never given = %+v; want an error", never, l)
	}
	if err := s.Delete(ctx, never); err == nil {
		t.Errorf("Delete(%d), never given, succeeded; want an error", never)
	}
	if got := positions(list(t, ctx, s, "")); !reflect.DeepEqual(got, []uint64{2}) {
		t.Errorf("List after Delete: positions %v; want [2]", got)
	}
	if n := count(t, ctx, s, "apps"); n != 1 {
		t.Errorf("Count(apps) = %d; want 1", n)
	}
}

// purgeAndCount: counts per projection and in all; Purge removes one
// projection's letters, or all, and says how many; Seqs are not reused.
func purgeAndCount(t *testing.T, ctx context.Context, s Store) {
	if n := count(t, ctx, s, ""); n != 0 {
		t.Fatalf("Count(\"\") of an empty store = %d", n)
	}
	park(t, ctx, s, letter("apps", 0, 1, "a1"), letter("stats", 0, 1, "a1"), letter("apps", 1, 2, "a2"),
		letter("apps", 0, 3, "a1"), letter("stats", 2, 4, "a3"))
	for projection, want := range map[string]uint64{"apps": 3, "stats": 2, "": 5, "none": 0} {
		if n := count(t, ctx, s, projection); n != want {
			t.Errorf("Count(%q) = %d; want %d", projection, n, want)
		}
	}
	var last uint64
	for _, l := range list(t, ctx, s, "") {
		last = max(last, l.Seq)
	}
	if n, err := s.Purge(ctx, "apps"); err != nil || n != 3 {
		t.Errorf("Purge(apps) = %d, %v; want 3", n, err)
	}
	if n := count(t, ctx, s, "apps"); n != 0 {
		t.Errorf("Count(apps) after its purge = %d", n)
	}
	if n := count(t, ctx, s, "stats"); n != 2 {
		t.Errorf("Count(stats) after purging apps = %d; want 2", n)
	}
	if parked, err := s.Parked(ctx, "apps", 0, "app", "a1"); err != nil || parked {
		t.Errorf("Parked(apps, 0, app, a1) after the purge = %v, %v; want false", parked, err)
	}
	park(t, ctx, s, letter("apps", 0, 5, "a1"))
	ls := list(t, ctx, s, "apps")
	if len(ls) != 1 || ls[0].Seq <= last {
		t.Errorf("List(apps) after purge and park = %+v; want one letter with a Seq above %d", ls, last)
	}
	if n, err := s.Purge(ctx, ""); err != nil || n != 3 {
		t.Errorf("Purge(\"\") = %d, %v; want 3", n, err)
	}
	if n := count(t, ctx, s, ""); n != 0 {
		t.Errorf("Count(\"\") after purging all = %d", n)
	}
	if n, err := s.Purge(ctx, ""); err != nil || n != 0 {
		t.Errorf("Purge(\"\") of an empty store = %d, %v; want 0", n, err)
	}
}

// concurrentParks: letters parked at once each get their own Seq, and
// one letter parked by several at once is stored once.
func concurrentParks(t *testing.T, ctx context.Context, s Store) {
	const workers, each = 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*2)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				pos := uint64(100 + w*each + i)
				errs <- s.Park(ctx, letter("apps", w, pos, fmt.Sprintf("a%d", w)))
				errs <- s.Park(ctx, letter("apps", 9, uint64(i), "shared")) // every worker parks these
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Park: %v", err)
		}
	}
	ls := list(t, ctx, s, "apps")
	if len(ls) != workers*each+each {
		t.Fatalf("List after concurrent parks: %d letters; want %d", len(ls), workers*each+each)
	}
	seqs, seen := map[uint64]bool{}, map[uint64]bool{}
	for _, l := range ls {
		if seqs[l.Seq] {
			t.Errorf("Seq %d given to two letters", l.Seq)
		}
		if seen[l.Position] {
			t.Errorf("position %d stored twice", l.Position)
		}
		seqs[l.Seq], seen[l.Position] = true, true
	}
}

// samePositionOnTwoPartitions: positions are per partition on some buses
// (Kafka), so letters at one position of two partitions are two letters.
func samePositionOnTwoPartitions(t *testing.T, ctx context.Context, s Store) {
	a, b := letter("apps", 0, 5, "a"), letter("apps", 3, 5, "b")
	park(t, ctx, s, a, b)
	if ls := list(t, ctx, s, "apps"); len(ls) != 2 {
		t.Fatalf("%d letters after parking position 5 of partitions 0 and 3, want 2", len(ls))
	}
	for _, l := range []bus.Letter{a, b} {
		ok, err := s.Parked(ctx, "apps", l.Partition, l.AggregateType, l.AggregateID)
		if err != nil || !ok {
			t.Fatalf("Parked(partition %d, %s) = %v, %v; want true", l.Partition, l.AggregateID, ok, err)
		}
	}
}
