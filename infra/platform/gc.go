package platform

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage collector's target evflow runs with when
// GOGC is not set: a replica's live heap is small (tens of MB) and its work
// allocates per event, so letting the heap grow 4× between collections
// trades a little memory for CPU (garbage collection was 10–14% of a
// replica's CPU at saturation with Go's default of 100).
const DefaultGCPercent = 400

// TuneGC applies DefaultGCPercent unless the GOGC environment variable says
// otherwise.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
}
