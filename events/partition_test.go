package events

import (
	"fmt"
	"testing"
)

// TestPartitionStable pins the mapping. Events already on a stream were
// stored by it: if this test fails, the change re-maps aggregates and
// breaks per-aggregate order. Do not update the expected values; revert
// the change to Partition.
func TestPartitionStable(t *testing.T) {
	tests := []struct {
		id   string
		want int
	}{
		{"", 5},       // FNV-1a("") = 0x811c9dc5
		{"a", 12},     // FNV-1a("a") = 0xe40c292c
		{"foobar", 8}, // FNV-1a("foobar") = 0xbf9cf968
		{"app-1", 6},
		{"app-2", 3},
		{"app-3", 0},
		{"app-42", 5},
		{"weather_mini", 3},
		{"org-7", 1},
		{"01HZX3K9Q4V6B7N8M2C5D1E0FA", 1},
	}
	for _, tt := range tests {
		for range 3 {
			if got := Partition(tt.id, 16); got != tt.want {
				t.Fatalf("Partition(%q, 16) = %d, want %d", tt.id, got, tt.want)
			}
		}
	}
	if DefaultPartitions != 16 {
		t.Errorf("DefaultPartitions = %d, want 16", DefaultPartitions)
	}
}

func TestPartitionInRange(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 16, 17, 64, 1000} {
		for i := range 2000 {
			id := fmt.Sprintf("app-%d", i)
			if p := Partition(id, n); p < 0 || p >= n {
				t.Fatalf("Partition(%q, %d) = %d, out of [0,%d)", id, n, p, n)
			}
		}
	}
}

func TestPartitionSpread(t *testing.T) {
	const ids, n = 10000, 16
	for _, format := range []string{"app-%d", "%d", "device_%08d"} {
		counts := make([]int, n)
		for i := range ids {
			counts[Partition(fmt.Sprintf(format, i), n)]++
		}
		mean := float64(ids) / n
		for p, c := range counts {
			if d := float64(c) - mean; d > 0.3*mean || d < -0.3*mean {
				t.Errorf("%s: partition %d holds %d ids, mean %.0f (±30%%): %v", format, p, c, mean, counts)
			}
		}
	}
}
