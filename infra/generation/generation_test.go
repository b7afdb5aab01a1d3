package generation

import (
	"testing"
	"time"
)

func TestNewNamesAreValidAndUnique(t *testing.T) {
	now := time.Now()
	seen := map[string]bool{}
	for range 1000 {
		n := New(now) // one instant: the names must still differ
		if !Valid(n) || n == Original {
			t.Fatalf("New = %q, not a valid new generation name", n)
		}
		if seen[n] {
			t.Fatalf("New returned %q twice", n)
		}
		seen[n] = true
	}
	for _, bad := range []string{"g1", "_g", "_G1", "_g1:", "_g12345678901234", "_g1*"} {
		if Valid(bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}
