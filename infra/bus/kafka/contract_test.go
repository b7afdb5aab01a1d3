package kafka_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/evflow/evflow/infra/bus/bustest"
	"github.com/evflow/evflow/infra/bus/kafka"
	evredis "github.com/evflow/evflow/infra/redis"
	"github.com/evflow/evflow/infra/testenv"
)

// stores are the Redis a Kafka bus keeps its fence and deduplication window
// in, shared by the tests of a run; each bus gets its own key prefixes.
type stores struct {
	redis *testenv.Redis
	n     int
}

func newStores(t *testing.T) *stores {
	return &stores{redis: testenv.StartRedis(t)}
}

// open starts a kfake cluster and opens a bus on it.
func (s *stores) open(t *testing.T, partitions int) *kafka.Bus {
	t.Helper()
	s.n++
	ctx := testenv.Context(t)
	k := testenv.StartKafka(t, 1)
	rc, err := evredis.Connect(ctx, evredis.ClientConfig{Addr: s.redis.Addr})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(rc.Close)
	b, err := kafka.Open(ctx, kafka.Config{
		Brokers: kafka.Brokers(k.Brokers()), Partitions: partitions,
		Fence: evredis.NewFence(rc, s.fencePrefix(), evredis.Config{}), Dedup: evredis.NewDedup(rc, fmt.Sprintf("t%d:published:", s.n)),
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestContract(t *testing.T) {
	s := newStores(t)
	bustest.Run(t, func(t *testing.T, partitions int) bustest.Backend {
		b := s.open(t, partitions)
		return bustest.Backend{
			Topic: kafka.DefaultTopic, Partitions: partitions, Publisher: b.Publisher,
			NewSubscriber: func(start func(context.Context, int) (uint64, error), window int) (message.Subscriber, error) {
				return b.NewSubscriber(start, window, nil)
			},
			Head: b.Heads().Head,
			Log:  b.Log,
		}
	})
}

func (s *stores) fencePrefix() string { return fmt.Sprintf("t%d:fence:", s.n) }

// setFence sets the position the fence of the last opened bus records for
// key, as a Redis that lost writes would.
func (s *stores) setFence(t *testing.T, key string, pos uint64) {
	t.Helper()
	rc, err := evredis.Connect(testenv.Context(t), evredis.ClientConfig{Addr: s.redis.Addr})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	defer rc.Close()
	cmd := rc.B().Hset().Key(s.fencePrefix()+key).FieldValue().FieldValue("pos", fmt.Sprint(pos)).Build()
	if err := rc.Do(testenv.Context(t), cmd).Error(); err != nil {
		t.Fatalf("hset: %v", err)
	}
}

// flush empties the Redis, as a restart without persistence does.
func (s *stores) flush(t *testing.T) {
	t.Helper()
	rc, err := evredis.Connect(testenv.Context(t), evredis.ClientConfig{Addr: s.redis.Addr})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	defer rc.Close()
	if err := rc.Do(testenv.Context(t), rc.B().Flushall().Build()).Error(); err != nil {
		t.Fatalf("flushall: %v", err)
	}
}
