package projector

import (
	"testing"
	"time"
)

// A zero Linger is the default; a negative one, what Lingering makes of a
// flag's 0, stays none.
func TestLingerDefaults(t *testing.T) {
	for _, c := range []struct{ set, want time.Duration }{
		{0, DefaultLinger},
		{-1, -1},
		{5 * time.Millisecond, 5 * time.Millisecond},
		{Lingering(0), -1},
		{Lingering(3 * time.Millisecond), 3 * time.Millisecond},
	} {
		cfg := Config{Linger: c.set}
		cfg.setDefaults()
		if cfg.Linger != c.want {
			t.Errorf("Linger %s becomes %s, want %s", c.set, cfg.Linger, c.want)
		}
	}
}
