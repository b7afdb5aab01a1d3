package httpapi

import (
	"strconv"
	"testing"
)

// TestLimitersDropIdleBuckets: past maxLimiters tokens, the buckets that
// refilled are dropped, and a busy token keeps its own.
func TestLimitersDropIdleBuckets(t *testing.T) {
	l := newLimiters(1e9, 1) // refills at once: every bucket but a busy one is idle
	for i := range maxLimiters {
		l.allow(strconv.Itoa(i))
	}
	l.rate = 1e-9 // a bucket made from now on does not refill
	if ok, _ := l.allow("busy"); !ok {
		t.Fatal("the first request of a token was refused")
	}
	if len(l.by) != 1 {
		t.Fatalf("%d buckets after the eviction, want only the new one", len(l.by))
	}
	if ok, _ := l.allow("busy"); ok {
		t.Error("a token over its burst passed: its bucket was dropped")
	}
}
