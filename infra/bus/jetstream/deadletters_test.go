package jetstream_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/bus/lettertest"
	"github.com/evflow/evflow/infra/testenv"
)

var _ lettertest.Store = (*evjs.DeadLetters)(nil)

// TestDeadLettersContract runs the dead-letter contract on the stream of
// a NATS server of each subtest's own.
func TestDeadLettersContract(t *testing.T) {
	lettertest.Letters(t, func(t *testing.T) lettertest.Store {
		t.Helper()
		nc, err := nats.Connect(testenv.StartNATS(t).URL())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatalf("jetstream: %v", err)
		}
		d, err := evjs.EnsureDeadLetters(testenv.Context(t), js, 1)
		if err != nil {
			t.Fatalf("ensure dead letters: %v", err)
		}
		return d
	})
}
