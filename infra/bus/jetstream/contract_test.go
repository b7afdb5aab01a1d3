package jetstream_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/infra/bus/bustest"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/testenv"
)

func TestContract(t *testing.T) { bustest.Run(t, open(false)) }

// TestContractMux runs the contract with the multiplexing subscriber.
func TestContractMux(t *testing.T) { bustest.Run(t, open(true)) }

func open(mux bool) bustest.Open {
	return func(t *testing.T, partitions int) bustest.Backend {
		n := testenv.StartNATS(t)
		nc, err := nats.Connect(n.URL())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatalf("jetstream: %v", err)
		}
		s, err := evjs.EnsureStream(testenv.Context(t), js, evjs.StreamConfig{Partitions: partitions})
		if err != nil {
			t.Fatalf("ensure stream: %v", err)
		}
		heads := evjs.NewHeads(s, evjs.DefaultTopic, partitions)
		return bustest.Backend{
			Topic: evjs.DefaultTopic, Partitions: partitions,
			Publisher: evjs.NewPublisher(js, evjs.PublisherConfig{}),
			NewSubscriber: func(start func(context.Context, int) (uint64, error), window int) (message.Subscriber, error) {
				if mux {
					return evjs.NewMux(js, evjs.DefaultTopic, evjs.SubscriberConfig{StartAfter: start, Window: window})
				}
				return evjs.NewSubscriber(js, evjs.SubscriberConfig{StartAfter: start, Window: window})
			},
			Head: heads.Head,
			Log:  evjs.Log{Stream: s, Topic: evjs.DefaultTopic, Partitions: partitions},
		}
	}
}
