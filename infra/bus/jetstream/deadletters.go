package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evflow/evflow/infra/bus"
)

// Names of the dead-letter stream.
const (
	DefaultDeadLetterStream = "EVFLOW_DLQ"
	deadLetterTopic         = "evflow_dlq"
)

// Headers of a letter on the dead-letter stream.
const (
	hdrProjection = "Evflow-Projection"
	hdrPartition  = "Evflow-Partition"
	hdrPosition   = "Evflow-Position"
	hdrAggType    = "Evflow-Aggregate-Type"
	hdrAggID      = "Evflow-Aggregate-Id"
	hdrEventID    = "Evflow-Event-Id"
	hdrReason     = "Evflow-Reason"
	hdrAttempts   = "Evflow-Attempts"
	hdrParkedAt   = "Evflow-Parked-At"
)

// DeadLetters keeps parked events on a stream of their own, one subject
// per projection, partition and aggregate:
// evflow_dlq.<projection>.<partition>.<aggregate type>.<aggregate id>.
// A letter is parked once per projection and position (its Nats-Msg-Id),
// and stays until it is redriven or purged.
type DeadLetters struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// EnsureDeadLetters creates (or opens) the dead-letter stream with replicas
// copies, retrying while a cluster forms, until ctx ends.
func EnsureDeadLetters(ctx context.Context, js jetstream.JetStream, replicas int) (*DeadLetters, error) {
	if replicas <= 0 {
		replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:        DefaultDeadLetterStream,
		Description: "evflow events that a projection could not apply",
		Subjects:    []string{deadLetterTopic + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  DefaultDuplicates,
		Retention:   jetstream.LimitsPolicy,
	}
	s, err := retryForming(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, cfg)
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", cfg.Name, err)
	}
	return &DeadLetters{js: js, stream: s}, nil
}

func letterSubject(projection string, partition int, aggType, aggID string) string {
	if aggType == "" || aggID == "" {
		aggType, aggID = "_", "_"
	}
	return fmt.Sprintf("%s.%s.%d.%s.%s", deadLetterTopic, projection, partition, aggType, aggID)
}

// Park stores l; parking the same projection and position again within the
// deduplication window stores nothing more.
func (d *DeadLetters) Park(ctx context.Context, l bus.Letter) error {
	m := nats.NewMsg(letterSubject(l.Projection, l.Partition, l.AggregateType, l.AggregateID))
	m.Data = l.Payload
	h := m.Header
	h.Set(nats.MsgIdHdr, l.Projection+":"+strconv.Itoa(l.Partition)+":"+strconv.FormatUint(l.Position, 10))
	h.Set(hdrProjection, l.Projection)
	h.Set(hdrPartition, strconv.Itoa(l.Partition))
	h.Set(hdrPosition, strconv.FormatUint(l.Position, 10))
	h.Set(hdrAggType, l.AggregateType)
	h.Set(hdrAggID, l.AggregateID)
	h.Set(hdrEventID, l.MessageID)
	h.Set(hdrReason, l.Reason)
	h.Set(hdrAttempts, strconv.Itoa(l.Attempts))
	h.Set(hdrParkedAt, l.ParkedAt.UTC().Format(time.RFC3339Nano))
	if _, err := d.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("park %s position %d: %w", l.Projection, l.Position, err)
	}
	return nil
}

// Parked reports whether projection has letters of the aggregate on partition.
func (d *DeadLetters) Parked(ctx context.Context, projection string, partition int, aggType, aggID string) (bool, error) {
	_, err := d.stream.GetLastMsgForSubject(ctx, letterSubject(projection, partition, aggType, aggID))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("dead letters of %s/%s: %w", aggType, aggID, err)
	}
	return true, nil
}

// Blocked returns the aggregates (see [bus.AggregateKey]) that projection
// has letters of on partition.
func (d *DeadLetters) Blocked(ctx context.Context, projection string, partition int) (map[string]bool, error) {
	prefix := fmt.Sprintf("%s.%s.%d.", deadLetterTopic, projection, partition)
	info, err := d.stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s on partition %d: %w", projection, partition, err)
	}
	out := map[string]bool{}
	for subj := range info.State.Subjects {
		typ, id, _ := strings.Cut(strings.TrimPrefix(subj, prefix), ".")
		if typ != "_" {
			out[bus.AggregateKey(typ, id)] = true
		}
	}
	return out, nil
}

// letterFilter is the subject filter of projection's letters ("" for all).
func letterFilter(projection string) string {
	if projection == "" {
		return deadLetterTopic + ".>"
	}
	return deadLetterTopic + "." + projection + ".>"
}

// List returns the letters of projection ("" for all), in the order they
// were parked.
func (d *DeadLetters) List(ctx context.Context, projection string) ([]bus.Letter, error) {
	filter := letterFilter(projection)
	info, err := d.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := d.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var out []bus.Letter
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			l, err := letterOf(m.Headers(), m.Data())
			if err != nil {
				return nil, err
			}
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("dead letters: %w", err)
			}
			l.Seq, pending = md.Sequence.Stream, md.NumPending
			out = append(out, l)
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		if n == 0 || pending == 0 {
			return out, nil
		}
	}
}

// Get returns the letter at seq on the dead-letter stream.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (bus.Letter, error) {
	m, err := d.stream.GetMsg(ctx, seq)
	if err != nil {
		return bus.Letter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	l, err := letterOf(m.Header, m.Data)
	l.Seq = seq
	return l, err
}

// Delete removes the letter at seq.
func (d *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	if err := d.stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("delete dead letter %d: %w", seq, err)
	}
	return nil
}

// Purge removes every letter of projection ("" for all) and returns how
// many there were.
func (d *DeadLetters) Purge(ctx context.Context, projection string) (uint64, error) {
	n, err := d.Count(ctx, projection)
	if err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	if err := d.stream.Purge(ctx, jetstream.WithPurgeSubject(letterFilter(projection))); err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return n, nil
}

// Count is the number of letters of projection ("" for all).
func (d *DeadLetters) Count(ctx context.Context, projection string) (uint64, error) {
	info, err := d.stream.Info(ctx, jetstream.WithSubjectFilter(letterFilter(projection)))
	if err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

func letterOf(h nats.Header, data []byte) (bus.Letter, error) {
	l := bus.Letter{
		Projection: h.Get(hdrProjection), AggregateType: h.Get(hdrAggType), AggregateID: h.Get(hdrAggID),
		MessageID: h.Get(hdrEventID), Payload: data, Reason: h.Get(hdrReason),
	}
	var err error
	if l.Partition, err = strconv.Atoi(h.Get(hdrPartition)); err != nil {
		return l, fmt.Errorf("dead letter: bad %s %q", hdrPartition, h.Get(hdrPartition))
	}
	if l.Position, err = strconv.ParseUint(h.Get(hdrPosition), 10, 64); err != nil {
		return l, fmt.Errorf("dead letter: bad %s %q", hdrPosition, h.Get(hdrPosition))
	}
	l.Attempts, _ = strconv.Atoi(h.Get(hdrAttempts))
	l.ParkedAt, _ = time.Parse(time.RFC3339Nano, h.Get(hdrParkedAt))
	return l, nil
}
