package redis

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

// cutter dials connections that, once armed, cut themselves right after
// sending the next script call to the server: the server may apply it, the
// client never sees the reply.
type cutter struct {
	armed atomic.Bool
}

func (c *cutter) dial(ctx context.Context, addr string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: conn, c: c}, nil
}

type cutConn struct {
	net.Conn
	c   *cutter
	cut atomic.Bool
}

func (k *cutConn) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("EVALSHA")) && k.c.armed.CompareAndSwap(true, false) {
		k.cut.Store(true) // before the write: no reply to it can be read
		n, err := k.Conn.Write(b)
		_ = k.Conn.Close()
		return n, err
	}
	return k.Conn.Write(b)
}

func (k *cutConn) Read(b []byte) (int, error) {
	n, err := k.Conn.Read(b)
	if k.cut.Load() {
		return 0, net.ErrClosed
	}
	return n, err
}

// TestConnectionCut: a batch whose connection is cut after it was sent
// fails with an error, though the server may have applied it; the client
// reconnects, and retrying the batch leaves every count exact.
func TestConnectionCut(t *testing.T) {
	r := testenv.StartRedis(t)
	var c cutter
	client, err := Connect(timeout(t), ClientConfig{Addr: r.Addr, DialCtxFn: c.dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	s := newStore(t, client, "")
	ctx := timeout(t)
	if err := s.ApplyHot(ctx, nil, []projections.LaunchGroup{group("a", day1, 1, "x", "y")}); err != nil {
		t.Fatal(err)
	}
	rs, gs := []projections.ReleaseChange{rel("a", "1.0", 5)}, []projections.LaunchGroup{group("a", day1, 2, "y", "z", "w")}
	c.armed.Store(true)
	if err := s.ApplyHot(ctx, rs, gs); err == nil {
		t.Fatal("ApplyHot over a cut connection: no error")
	}
	testenv.WaitFor(t, 10*time.Second, func() error { return s.ApplyHot(ctx, rs, gs) })
	runHotCase(t, s, hotCase{
		releases: []releaseWant{{"a", "1.0", 5, true}},
		launches: []launchWant{{"a", day1, 4, 4}},
		top:      map[string][]projections.AppCount{day1: {{AppID: "a", Launches: 4}}},
	})
}
