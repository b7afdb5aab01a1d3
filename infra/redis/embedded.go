package redis

import (
	"fmt"
	"sync"

	"github.com/alicebob/miniredis/v2"
)

// StartEmbedded starts an in-process Redis (miniredis) on a free loopback
// port for the zero-setup run, and returns its address and a function that
// stops it (safe to call more than once). Data lives in memory only.
// Production and the tests that claim Redis behaviour use a real server.
func StartEmbedded() (addr string, closeFn func(), err error) {
	m, err := miniredis.Run()
	if err != nil {
		return "", nil, fmt.Errorf("start embedded redis: %w", err)
	}
	var once sync.Once
	return m.Addr(), func() { once.Do(m.Close) }, nil
}
