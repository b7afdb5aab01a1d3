package jetstream_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/infra/bus/bustest"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
)

func TestContract(t *testing.T) { bustest.Run(t, open(false)) }

// TestContractMux runs the contract with the multiplexing subscriber.
func TestContractMux(t *testing.T) { bustest.Run(t, open(true)) }

func open(mux bool) bustest.Open {
	return func(t *testing.T, partitions int) bustest.Backend {
		js, s := setupN(t, partitions)
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
