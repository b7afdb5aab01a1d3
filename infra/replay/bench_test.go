package replay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/redis"
	"github.com/evflow/evflow/infra/replay"
	"github.com/evflow/evflow/infra/testenv"
	"github.com/evflow/evflow/projections"
)

const (
	benchEvents     = 50000
	benchPartitions = 16
)

// BenchmarkReplay measures, in one run on the same stream of launches,
// the raw ordered read of the stream and a replay's rebuild rate into the
// Redis projection and into MongoDB's daily stats (FerretDB here):
//
//	go test -run '^$' -bench Replay -benchtime 1x ./infra/replay
func BenchmarkReplay(b *testing.B) {
	ctx := testenv.Context(b)
	srv := testenv.StartNATS(b)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := evjs.EnsureStream(ctx, js, evjs.StreamConfig{Partitions: benchPartitions})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, js)

	rs := testenv.StartRedis(b)
	rc, err := redis.Connect(ctx, redis.ClientConfig{Addr: rs.Addr})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	m := testenv.StartMongo(b)
	mc, db, err := evmongo.Connect(ctx, m.URI(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	mcfg := evmongo.FerretConfig(evmongo.Config{})
	mgens, err := evmongo.NewGenerations(db, mcfg)
	if err != nil {
		b.Fatal(err)
	}
	cfg := replay.Config{
		Log: evjs.Log{Stream: stream, Topic: evjs.DefaultTopic, Partitions: benchPartitions}, Topic: evjs.DefaultTopic, Partitions: benchPartitions, Grace: time.Millisecond,
		NewSubscriber: func(start projector.StartAfter, window int) (message.Subscriber, error) {
			return evjs.NewMux(js, evjs.DefaultTopic, evjs.SubscriberConfig{StartAfter: start, Window: window})
		},
	}
	targets := []replay.Target{
		{Name: projections.RedisName, Store: redis.NewGenerations(rc), Open: func(gen string) (projections.Projector, error) {
			s, err := redis.New(rc, redis.Config{Prefix: redis.PrefixOf(gen)})
			return projections.NewRedis(s), err
		}},
		{Name: projections.DailyStatsName, Store: mgens, Open: func(gen string) (projections.Projector, error) {
			c := mcfg
			c.Suffix = gen
			s, err := evmongo.NewStore(db, c)
			return projections.NewDailyStats(s), err
		}},
	}

	for b.Loop() {
		began := time.Now()
		n := orderedRead(b, js)
		b.ReportMetric(float64(n)/time.Since(began).Seconds(), "read-events/s")
		for _, t := range targets {
			sum, err := replay.Run(ctx, cfg, t)
			if err != nil {
				b.Fatal(err)
			}
			if sum.Events != benchEvents {
				b.Fatalf("%s: replayed %d events, want %d", t.Name, sum.Events, benchEvents)
			}
			b.ReportMetric(sum.Rate(), t.Name+"-events/s")
		}
	}
}

// fill appends benchEvents launches of 200 apps on 2000 devices.
func fill(b *testing.B, js jetstream.JetStream) {
	b.Helper()
	app := bus.NewAppender(evjs.NewPublisher(js, evjs.PublisherConfig{}), evjs.DefaultTopic, benchPartitions)
	const batch = 500
	for i := 0; i < benchEvents; i += batch {
		envs := make([]events.Envelope, 0, batch)
		for j := i; j < i+batch; j++ {
			id := fmt.Sprintf("app-%03d", j%200)
			data := fmt.Sprintf(`{"app_id":%q,"version":"1.0.0","device_id":"dev-%d","org":"org","at":"2026-11-23T10:00:00Z"}`, id, j%2000)
			envs = append(envs, events.Envelope{ID: fmt.Sprintf("l%d", j), Type: events.TypeAppLaunched, SchemaVersion: 1,
				Tenant: "org", AggregateType: events.AggregateUsage, AggregateID: id, OccurredAt: time.Now(), Data: []byte(data)})
		}
		if _, err := app.Append(context.Background(), nil, envs...); err != nil {
			b.Fatal(err)
		}
	}
}

// orderedRead reads the whole stream with one ordered consumer.
func orderedRead(b *testing.B, js jetstream.JetStream) int {
	b.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, evjs.DefaultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(2048))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	for n := 1; ; n++ {
		if _, err := it.Next(); err != nil {
			b.Fatal(err)
		}
		if n == benchEvents {
			return n
		}
	}
}
