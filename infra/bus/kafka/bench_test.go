package kafka_test

// Benchmarks choosing the Kafka client: evflow's franz-go publisher and
// subscriber against watermill-kafka (IBM/sarama), on one in-process kfake
// broker and one workload: events of a 256-byte payload, as bus.ToMessage
// builds them, spread over 1000 aggregates and 16 partitions.
//
//	go test -run '^$' -bench . -benchtime 1x ./infra/bus/kafka
//	go test -run '^$' -bench . -benchtime 1x ./infra/bus/kafka -args -kafkabench.events=20000
//
// Both clients route as evflow does: to the aggregate's evflow partition,
// keyed by aggregate id. Both publish with acks from all in-sync replicas
// and an idempotent producer. watermill-kafka's Publish sends its messages
// one at a time (a sarama SyncProducer.SendMessage each), and its
// subscriber holds one message per partition until it is acked. Each
// benchmark ends with a table of events/s.

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evflow/evflow/infra/bus"
	"github.com/evflow/evflow/infra/bus/bustest"
	"github.com/evflow/evflow/infra/bus/kafka"
	"github.com/evflow/evflow/infra/testenv"
)

var benchEvents = flag.Int("kafkabench.events", 50_000, "events in each Kafka benchmark workload")

const (
	benchPartitions = 16
	benchPayload    = 256
	benchAggregates = 1000
	benchWorkers    = 16
	benchBatch      = 100
	// benchLimit bounds one timed run; past it the benchmark fails rather
	// than hangs.
	benchLimit = 2 * time.Minute
)

// benchOccurredAt keeps every payload the same length.
var benchOccurredAt = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// benchMessages returns n events as bus.ToMessage encodes them, each
// payload padded to exactly benchPayload bytes. tag keeps event ids apart
// between workloads.
func benchMessages(tb testing.TB, tag string, n int) []*message.Message {
	tb.Helper()
	msgs := make([]*message.Message, n)
	for i := range msgs {
		m := benchMessage(tb, fmt.Sprintf("%s-%08d", tag, i), fmt.Sprintf("app%04d", i%benchAggregates), "")
		pad := benchPayload - len(m.Payload)
		if pad < 0 {
			tb.Fatalf("event %d is %d bytes before padding, over %d", i, len(m.Payload), benchPayload)
		}
		m = benchMessage(tb, m.UUID, m.Metadata.Get(bus.MetaAggregateID), strings.Repeat("x", pad))
		if len(m.Payload) != benchPayload {
			tb.Fatalf("event %d is %d bytes, want %d", i, len(m.Payload), benchPayload)
		}
		msgs[i] = m
	}
	return msgs
}

func benchMessage(tb testing.TB, id, app, pad string) *message.Message {
	e := bustest.Launch(id, app, 0)
	e.OccurredAt = benchOccurredAt
	e.Data = []byte(fmt.Sprintf(`{"app_id":%q,"org":"org1","pad":%q}`, app, pad))
	m, err := bus.ToMessage(e, benchPartitions)
	if err != nil {
		tb.Fatalf("encode event %s: %v", id, err)
	}
	return m
}

// benchCluster is the kfake broker the benchmarks of one function share.
type benchCluster struct {
	brokers []string
	adm     *kadm.Client
	topics  int
}

func startBenchCluster(b *testing.B) *benchCluster {
	b.Helper()
	k := testenv.StartKafka(b, 1)
	brokers := kafka.Brokers(k.Brokers())
	// A client caches metadata for MetadataMinAge (5s by default): having
	// seen a topic missing, it would wait that long to see it created.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		b.Fatalf("admin client: %v", err)
	}
	b.Cleanup(cl.Close)
	return &benchCluster{brokers: brokers, adm: kadm.NewClient(cl)}
}

// newTopic creates a fresh topic of benchPartitions partitions.
func (c *benchCluster) newTopic(b *testing.B, name string) string {
	b.Helper()
	c.topics++
	topic := fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(name, "/", "-"), c.topics)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(ctx, c.adm, kafka.TopicConfig{Name: topic, Partitions: benchPartitions}); err != nil {
		b.Fatalf("create topic: %v", err)
	}
	return topic
}

// dropTopic deletes topic, so that kfake does not keep every run's records in memory.
func (c *benchCluster) dropTopic(b *testing.B, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.adm.DeleteTopics(ctx, topic); err != nil {
		b.Logf("delete topic %s: %v", topic, err)
	}
}

// Clients.

// benchPublisher opens a publisher of topic and returns its closer.
type benchPublisher func(b *testing.B, c *benchCluster, topic string) (message.Publisher, func())

// evflowPublisher opens an evflow bus as evflow runs it: franz-go's
// defaults (snappy compression among them; sarama's default is none) and
// [kafka.ProducerOpts].
func evflowPublisher(b *testing.B, c *benchCluster, topic string) (message.Publisher, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bs, err := kafka.Open(ctx, kafka.Config{Brokers: c.brokers, Topic: topic, Partitions: benchPartitions})
	if err != nil {
		b.Fatalf("open evflow bus: %v", err)
	}
	return bs.Publisher, bs.Close
}

func watermillPublisher(b *testing.B, c *benchCluster, topic string) (message.Publisher, func()) {
	pub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{
		Brokers: c.brokers, Marshaler: partitionMarshaler{}, OverwriteSaramaConfig: saramaProducerConfig(),
	}, nil)
	if err != nil {
		b.Fatalf("watermill-kafka publisher: %v", err)
	}
	return pub, func() {
		if err := pub.Close(); err != nil {
			b.Errorf("close watermill-kafka publisher: %v", err)
		}
	}
}

// saramaProducerConfig is watermill-kafka's default sync producer config
// (Kafka 1.0 protocol, Return.Successes, 10 retries) made as durable as
// evflow's: acks from all in-sync replicas and an idempotent producer,
// which needs one request in flight per broker. The manual partitioner
// honours the partition the marshaler sets.
func saramaProducerConfig() *sarama.Config {
	c := wmkafka.DefaultSaramaSyncPublisherConfig()
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Partitioner = sarama.NewManualPartitioner
	return c
}

// partitionMarshaler is watermill-kafka's DefaultMarshaler (the message
// UUID and every metadata entry as headers) routing as evflow does: to the
// message's evflow partition, keyed by its aggregate id.
type partitionMarshaler struct{ wmkafka.DefaultMarshaler }

func (m partitionMarshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	pm, err := m.DefaultMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(msg.Metadata.Get(bus.MetaPartition))
	if err != nil {
		return nil, fmt.Errorf("message %s: bad %s: %w", msg.UUID, bus.MetaPartition, err)
	}
	pm.Partition = int32(p)
	pm.Key = sarama.StringEncoder(msg.Metadata.Get(bus.MetaAggregateID))
	return pm, nil
}

// Publish modes.

type publishMode struct {
	name string
	run  func(pub message.Publisher, topic string, msgs []*message.Message) error
}

var publishModes = []publishMode{
	{"sequential", func(pub message.Publisher, topic string, msgs []*message.Message) error {
		for _, m := range msgs {
			if err := pub.Publish(topic, m); err != nil {
				return err
			}
		}
		return nil
	}},
	{"batch100", func(pub message.Publisher, topic string, msgs []*message.Message) error {
		for i := 0; i < len(msgs); i += benchBatch {
			if err := pub.Publish(topic, msgs[i:min(i+benchBatch, len(msgs))]...); err != nil {
				return err
			}
		}
		return nil
	}},
	{"concurrent16", func(pub message.Publisher, topic string, msgs []*message.Message) error {
		return publishConcurrently(pub, topic, msgs, 1)
	}},
}

// publishConcurrently publishes msgs from benchWorkers goroutines, batch
// messages per call, and returns the first error.
func publishConcurrently(pub message.Publisher, topic string, msgs []*message.Message, batch int) error {
	var next atomic.Int64
	errs := make(chan error, benchWorkers)
	var wg sync.WaitGroup
	for range benchWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(int64(batch))) - batch
				if i >= len(msgs) {
					return
				}
				if err := pub.Publish(topic, msgs[i:min(i+batch, len(msgs))]...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// within runs f and returns its error, or an error once limit passed (f
// keeps running then; the benchmark's cleanup closes what it uses).
func within(limit time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return fmt.Errorf("not done after %s", limit)
	}
}

// BenchmarkPublish publishes the workload to a fresh topic with each
// client in each mode: one message per Publish call, 100 per call, and 16
// goroutines publishing one message per call.
func BenchmarkPublish(b *testing.B) {
	c := startBenchCluster(b)
	clients := []struct {
		name string
		open benchPublisher
	}{
		{"evflow", evflowPublisher},
		{"watermill", watermillPublisher},
	}
	res := newRates("evflow", "watermill")
	for _, mode := range publishModes {
		for _, cl := range clients {
			b.Run(mode.name+"/"+cl.name, func(b *testing.B) {
				var elapsed time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					topic := c.newTopic(b, mode.name+"-"+cl.name)
					msgs := benchMessages(b, topic, *benchEvents)
					pub, closePub := cl.open(b, c, topic)
					closePub = sync.OnceFunc(closePub)
					b.Cleanup(closePub) // should the run fail
					// Warm up: connections, metadata, producer id, one record per partition.
					if err := pub.Publish(topic, benchMessages(b, topic+"-warm", benchPartitions)...); err != nil {
						b.Fatalf("warm up: %v", err)
					}
					b.StartTimer()
					start := time.Now()
					err := within(benchLimit, func() error { return mode.run(pub, topic, msgs) })
					elapsed += time.Since(start)
					b.StopTimer()
					if err != nil {
						b.Fatalf("publish %d events: %v", len(msgs), err)
					}
					closePub()
					c.dropTopic(b, topic)
				}
				rate := float64(b.N**benchEvents) / elapsed.Seconds()
				b.ReportMetric(rate, "events/s")
				res.set(mode.name, cl.name, rate)
			})
		}
	}
	fmt.Printf("publish, %d events of %d B, %d partitions, events/s:\n%s\n", *benchEvents, benchPayload, benchPartitions, res.table())
}

// Consumers.

// benchConsumer drains topic, holding prefilled events, acking each
// message; it returns when all n arrived, with the time the first one did.
type benchConsumer func(b *testing.B, c *benchCluster, topic string, n int) (first time.Duration)

// evflowConsumer subscribes to each partition with window unacknowledged messages.
func evflowConsumer(window int) benchConsumer {
	return func(b *testing.B, c *benchCluster, topic string, n int) time.Duration {
		sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
			Brokers: c.brokers, Topic: topic, Window: window,
			StartAfter: func(context.Context, int) (uint64, error) { return 0, nil },
		})
		if err != nil {
			b.Fatalf("evflow subscriber: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		d := newDrain(n)
		for p := range benchPartitions {
			ch, err := sub.Subscribe(ctx, bus.PartitionTopic(topic, p))
			if err != nil {
				b.Fatalf("subscribe partition %d: %v", p, err)
			}
			d.read(ch)
		}
		err = d.wait(benchLimit)
		cancel()
		closeWithin(b, "evflow subscriber", sub.Close)
		d.stop(b)
		if err != nil {
			b.Fatal(err)
		}
		return d.first()
	}
}

// watermillConsumer reads through a consumer group, with watermill-kafka's
// default subscriber config except where a fresh group starts: at the
// oldest offset, since the topic was filled before it joined. Its handler
// holds one message per partition until it is acked.
func watermillConsumer(b *testing.B, c *benchCluster, topic string, n int) time.Duration {
	cfg := wmkafka.DefaultSaramaSubscriberConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	sub, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{
		Brokers: c.brokers, Unmarshaler: wmkafka.DefaultMarshaler{}, OverwriteSaramaConfig: cfg,
		ConsumerGroup: "bench-" + topic + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	}, nil)
	if err != nil {
		b.Fatalf("watermill-kafka subscriber: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := newDrain(n)
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatalf("subscribe: %v", err)
	}
	// One channel carries every partition; read it as a Watermill router
	// would, with a handler per partition in flight.
	for range benchPartitions {
		d.read(ch)
	}
	err = d.wait(benchLimit)
	cancel()
	closeWithin(b, "watermill-kafka subscriber", sub.Close)
	d.stop(b)
	if err != nil {
		b.Fatal(err)
	}
	return d.first()
}

// drain counts the messages its readers ack until n arrived.
type drain struct {
	n       int64
	start   time.Time
	got     atomic.Int64
	firstAt atomic.Int64 // nanoseconds after start
	done    chan struct{}
	once    sync.Once
	readers sync.WaitGroup
}

func newDrain(n int) *drain {
	return &drain{n: int64(n), start: time.Now(), done: make(chan struct{})}
}

// read acks every message of ch until ch closes.
func (d *drain) read(ch <-chan *message.Message) {
	d.readers.Go(func() {
		for m := range ch {
			m.Ack()
			got := d.got.Add(1)
			if got == 1 {
				d.firstAt.Store(int64(time.Since(d.start)))
			}
			if got == d.n {
				d.once.Do(func() { close(d.done) })
			}
		}
	})
}

func (d *drain) wait(limit time.Duration) error {
	select {
	case <-d.done:
		return nil
	case <-time.After(limit):
		return fmt.Errorf("received %d of %d events in %s", d.got.Load(), d.n, limit)
	}
}

func (d *drain) first() time.Duration { return time.Duration(d.firstAt.Load()) }

// stop waits for the readers, whose channels closed with the subscriber.
func (d *drain) stop(b *testing.B) {
	if err := within(30*time.Second, func() error { d.readers.Wait(); return nil }); err != nil {
		b.Errorf("subscription channels still open: %v", err)
	}
	if got := d.got.Load(); got > d.n {
		b.Logf("received %d messages for %d events (redeliveries)", got, d.n)
	}
}

func closeWithin(b *testing.B, what string, f func() error) {
	if err := within(30*time.Second, f); err != nil {
		b.Errorf("close %s: %v", what, err)
	}
}

// BenchmarkConsume fills one topic with the workload, then times draining
// it, acking every message: evflow's subscriber with a subscription per
// partition (window 1 and 256) and watermill-kafka's consumer-group
// subscriber. events/s counts from the subscribe call, startup included;
// first-ms is how long the first message took.
func BenchmarkConsume(b *testing.B) {
	c := startBenchCluster(b)
	topic := c.newTopic(b, "consume")
	pub, closePub := evflowPublisher(b, c, topic)
	closePub = sync.OnceFunc(closePub)
	b.Cleanup(closePub) // should the fill fail
	if err := publishConcurrently(pub, topic, benchMessages(b, topic, *benchEvents), benchBatch); err != nil {
		b.Fatalf("fill topic: %v", err)
	}
	closePub()
	consumers := []struct {
		name    string
		consume benchConsumer
	}{
		{"evflow-window1", evflowConsumer(1)},
		{"evflow-window256", evflowConsumer(256)},
		{"watermill-group", watermillConsumer},
	}
	names := make([]string, len(consumers))
	for i, cn := range consumers {
		names[i] = cn.name
	}
	res := newRates(names...)
	for _, cn := range consumers {
		b.Run(cn.name, func(b *testing.B) {
			var elapsed, first time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				first += cn.consume(b, c, topic, *benchEvents)
				elapsed += time.Since(start)
			}
			rate := float64(b.N**benchEvents) / elapsed.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "first-ms")
			res.set("drain", cn.name, rate)
		})
	}
	fmt.Printf("consume with ack, %d events of %d B, %d partitions, events/s:\n%s\n", *benchEvents, benchPayload, benchPartitions, res.table())
}

// rates collects events/s by mode and client for a side-by-side table.
type rates struct {
	mu      sync.Mutex
	clients []string
	modes   []string
	v       map[[2]string]float64
}

func newRates(clients ...string) *rates {
	return &rates{clients: clients, v: map[[2]string]float64{}}
}

func (r *rates) set(mode, client string, rate float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.modes, mode) {
		r.modes = append(r.modes, mode)
	}
	r.v[[2]string{mode, client}] = rate
}

// table has a column per client, then each client's rate over the last
// client's.
func (r *rates) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	last := r.clients[len(r.clients)-1]
	fmt.Fprint(w, "mode\t")
	for _, c := range r.clients {
		fmt.Fprintf(w, "%s\t", c)
	}
	for _, c := range r.clients[:len(r.clients)-1] {
		fmt.Fprintf(w, "%s/%s\t", c, last)
	}
	fmt.Fprintln(w)
	for _, m := range r.modes {
		fmt.Fprintf(w, "%s\t", m)
		for _, c := range r.clients {
			fmt.Fprintf(w, "%.0f\t", r.v[[2]string{m, c}])
		}
		for _, c := range r.clients[:len(r.clients)-1] {
			if base := r.v[[2]string{m, last}]; base > 0 {
				fmt.Fprintf(w, "%.2fx\t", r.v[[2]string{m, c}]/base)
			} else {
				fmt.Fprint(w, "-\t")
			}
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush()
	return sb.String()
}
