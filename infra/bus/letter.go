package bus

import (
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Letter is an event a projection could not apply, parked on a dead-letter
// stream with why, so that its partition moves on. Later events of the
// same aggregate are parked behind it, which keeps the aggregate's order
// for when the letters are redriven.
type Letter struct {
	// Projection is the projection that could not apply the event.
	Projection string
	// Partition and Position locate the event on the event stream.
	Partition int
	Position  uint64
	// AggregateType and AggregateID name the event's aggregate ("" when
	// the message did not say).
	AggregateType, AggregateID string
	// MessageID is the event id; Payload the event as it was on the stream.
	MessageID string
	Payload   []byte
	// Reason says why it was parked; Attempts how often it was tried.
	Reason   string
	Attempts int
	// ParkedAt is when it was parked.
	ParkedAt time.Time
	// Seq is the letter's position on the dead-letter stream, set when read.
	Seq uint64
}

// LetterOf returns the letter of a delivered message m.
func LetterOf(projection string, m *message.Message, reason string, attempts int) Letter {
	pos, _ := Position(m)
	part, _ := strconv.Atoi(m.Metadata.Get(MetaPartition))
	return Letter{
		Projection: projection, Partition: part, Position: pos,
		AggregateType: m.Metadata.Get(MetaAggregateType), AggregateID: m.Metadata.Get(MetaAggregateID),
		MessageID: m.UUID, Payload: m.Payload, Reason: reason, Attempts: attempts,
		ParkedAt: time.Now().UTC(),
	}
}

// Message rebuilds the message as it was delivered.
func (l Letter) Message() *message.Message {
	m := message.NewMessage(l.MessageID, l.Payload)
	m.Metadata.Set(MetaPosition, strconv.FormatUint(l.Position, 10))
	m.Metadata.Set(MetaPartition, strconv.Itoa(l.Partition))
	m.Metadata.Set(MetaAggregateType, l.AggregateType)
	m.Metadata.Set(MetaAggregateID, l.AggregateID)
	return m
}

// Aggregate is the key of the letter's aggregate: type/id.
func (l Letter) Aggregate() string { return AggregateKey(l.AggregateType, l.AggregateID) }

// AggregateKey is the key of an aggregate: type/id.
func AggregateKey(typ, id string) string { return typ + "/" + id }
