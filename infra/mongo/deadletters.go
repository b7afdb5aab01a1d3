package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/evflow/evflow/infra/bus"
)

// Collections of the dead letters. Like the names in names.go they are
// durable data, and they take no [Config.Suffix]: letters belong to a
// projection, not to one of its generations.
const (
	// DeadLettersCollection holds one document per parked letter,
	// _id "<projection>:<partition>:<position>" (Kafka positions are per
	// partition).
	DeadLettersCollection = "dead_letters"
	// CountersCollection holds named sequence counters; the dead letters'
	// is the document of _id [DeadLettersCollection].
	CountersCollection = "counters"
)

// Field names of the dead_letters and counters documents.
const (
	fieldSeq       = "seq"
	fieldAggregate = "aggregate"
)

// Names of the dead_letters indexes.
const (
	indexSeq       = "seq"
	indexAggregate = "projection_partition_aggregate"
)

// parkedAtLayout stores ParkedAt in UTC to the nanosecond (a BSON date
// keeps milliseconds only), with a fixed number of digits so that the
// strings sort as the times do.
const parkedAtLayout = "2006-01-02T15:04:05.000000000Z07:00"

// maxSeqTries bounds how many sequence numbers one Park draws when each
// turns out to be taken (see [DeadLetters.Park]).
const maxSeqTries = 10

// DeadLetters keeps parked events in [DeadLettersCollection], for a bus
// (Kafka) that cannot delete single messages. It has the semantics of the
// JetStream dead letters: a letter is parked once per projection and
// position, numbered with a Seq unique among all letters ever parked and
// increasing in parking order, and stays until it is deleted or purged.
// Get and Delete of a Seq that has no letter return an error wrapping
// mongo.ErrNoDocuments. No transaction is used: it runs on MongoDB and on
// FerretDB alike. It is safe for concurrent use.
//
// Seq comes from a counter document in [CountersCollection], a
// findOneAndUpdate with $inc. MongoDB increments it atomically; FerretDB
// reads, then writes it, so two draws at once can get one number. Draws
// of one DeadLetters are serialized, which makes them exact on FerretDB
// too. Across processes on FerretDB a number can still be drawn twice:
// the unique index on seq refuses the second letter and Park draws again;
// the counter can then step back, so letters parked at that moment may
// be numbered out of parking order, and the number of a letter deleted
// in that moment given again.
type DeadLetters struct {
	letters  *mongo.Collection
	counters *mongo.Collection
	drawMu   sync.Mutex // held around each draw from the counter
}

// NewDeadLetters returns the dead letters of db, creating the indexes of
// [DeadLettersCollection] (unique on seq; projection, partition and
// aggregate for [DeadLetters.Parked] and [DeadLetters.Blocked]) if they
// are missing. Reads go to the primary, so a letter just parked is seen.
func NewDeadLetters(ctx context.Context, db *mongo.Database) (*DeadLetters, error) {
	if db == nil {
		return nil, errors.New("mongo dead letters: nil database")
	}
	opts := options.Collection().SetReadPreference(readpref.Primary())
	d := &DeadLetters{
		letters:  db.Collection(DeadLettersCollection, opts),
		counters: db.Collection(CountersCollection, opts),
	}
	// One index per command: FerretDB v1.24 panics (and drops the
	// connection) on a createIndexes of several indexes that all exist.
	for _, idx := range []mongo.IndexModel{
		{Keys: bson.D{{Key: fieldSeq, Value: 1}}, Options: options.Index().SetName(indexSeq).SetUnique(true)},
		{Keys: bson.D{{Key: fieldProjection, Value: 1}, {Key: fieldPartition, Value: 1}, {Key: fieldAggregate, Value: 1}},
			Options: options.Index().SetName(indexAggregate)},
	} {
		if _, err := d.letters.Indexes().CreateOne(ctx, idx); err != nil {
			return nil, fmt.Errorf("mongo dead letters: create index: %w", err)
		}
	}
	return d, nil
}

// letterDoc is a dead_letters document.
type letterDoc struct {
	ID            string `bson:"_id"`
	Seq           int64  `bson:"seq"`
	Projection    string `bson:"projection"`
	Partition     int    `bson:"partition"`
	Position      int64  `bson:"position"`
	AggregateType string `bson:"aggregate_type"`
	AggregateID   string `bson:"aggregate_id"`
	// Aggregate is bus.AggregateKey of the letter's aggregate, "" when the
	// type or the id is empty: what Parked and Blocked look up.
	Aggregate string `bson:"aggregate"`
	MessageID string `bson:"message_id"`
	Payload   []byte `bson:"payload"`
	Reason    string `bson:"reason"`
	Attempts  int    `bson:"attempts"`
	ParkedAt  string `bson:"parked_at"`
}

// letterID is the _id of projection's letter of the event at position of
// partition.
func letterID(projection string, partition int, position uint64) string {
	return projection + ":" + strconv.Itoa(partition) + ":" + strconv.FormatUint(position, 10)
}

// aggregateOf is the stored aggregate key of (aggType, aggID).
func aggregateOf(aggType, aggID string) string {
	if aggType == "" || aggID == "" {
		return ""
	}
	return bus.AggregateKey(aggType, aggID)
}

// toLetterDoc returns the document of l, without its Seq.
func toLetterDoc(l bus.Letter) (letterDoc, error) {
	pos, err := position(l.Position)
	if err != nil {
		return letterDoc{}, err
	}
	return letterDoc{
		ID: letterID(l.Projection, l.Partition, l.Position), Projection: l.Projection, Partition: l.Partition, Position: pos,
		AggregateType: l.AggregateType, AggregateID: l.AggregateID, Aggregate: aggregateOf(l.AggregateType, l.AggregateID),
		MessageID: l.MessageID, Payload: l.Payload, Reason: l.Reason, Attempts: l.Attempts,
		ParkedAt: l.ParkedAt.UTC().Format(parkedAtLayout),
	}, nil
}

// letter returns the letter d holds, its Seq set.
func (d letterDoc) letter() (bus.Letter, error) {
	if d.Seq <= 0 || d.Position < 0 {
		return bus.Letter{}, fmt.Errorf("dead letter %s: bad seq %d or position %d", d.ID, d.Seq, d.Position)
	}
	at, err := time.Parse(time.RFC3339Nano, d.ParkedAt)
	if err != nil {
		return bus.Letter{}, fmt.Errorf("dead letter %s: bad parked_at %q", d.ID, d.ParkedAt)
	}
	return bus.Letter{
		Projection: d.Projection, Partition: d.Partition, Position: uint64(d.Position),
		AggregateType: d.AggregateType, AggregateID: d.AggregateID, MessageID: d.MessageID, Payload: d.Payload,
		Reason: d.Reason, Attempts: d.Attempts, ParkedAt: at, Seq: uint64(d.Seq),
	}, nil
}

// Park stores l under the next Seq. Parking the same projection and
// position again stores nothing and returns nil: the letter parked first
// stays. ParkedAt is kept to the nanosecond and read back in UTC.
func (d *DeadLetters) Park(ctx context.Context, l bus.Letter) error {
	doc, err := toLetterDoc(l)
	if err == nil {
		err = d.park(ctx, doc)
	}
	if err != nil {
		return fmt.Errorf("mongo: park %s position %d: %w", l.Projection, l.Position, err)
	}
	return nil
}

// park inserts doc under a Seq drawn for it, drawing again while the Seq
// is taken; it returns nil when doc's _id is stored already.
func (d *DeadLetters) park(ctx context.Context, doc letterDoc) error {
	for range maxSeqTries {
		seq, err := d.draw(ctx)
		if err != nil {
			return err
		}
		doc.Seq = seq
		_, err = d.letters.InsertOne(ctx, doc)
		if !mongo.IsDuplicateKeyError(err) {
			return err
		}
		// The _id is taken (parked already: done) or the seq is (drawn
		// twice on FerretDB: draw again).
		err = d.letters.FindOne(ctx, bson.D{{Key: fieldID, Value: doc.ID}}).Err()
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return err
		}
	}
	return fmt.Errorf("%d seqs drawn in a row were taken", maxSeqTries)
}

// draw returns the next number of the dead letters' counter, creating
// the counter at 1.
func (d *DeadLetters) draw(ctx context.Context) (int64, error) {
	d.drawMu.Lock()
	defer d.drawMu.Unlock()
	var c struct {
		Seq int64 `bson:"seq"`
	}
	filter := bson.D{{Key: fieldID, Value: DeadLettersCollection}}
	update := bson.D{{Key: "$inc", Value: bson.D{{Key: fieldSeq, Value: int64(1)}}}}
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	err := d.counters.FindOneAndUpdate(ctx, filter, update, opts).Decode(&c)
	if mongo.IsDuplicateKeyError(err) {
		// Another process created the counter first: it exists now.
		err = d.counters.FindOneAndUpdate(ctx, filter, update, opts).Decode(&c)
	}
	if err != nil {
		return 0, fmt.Errorf("draw seq: %w", err)
	}
	return c.Seq, nil
}

// Parked reports whether projection has letters of the aggregate on
// partition. An empty aggType or aggID asks for the letters without an
// aggregate.
func (d *DeadLetters) Parked(ctx context.Context, projection string, partition int, aggType, aggID string) (bool, error) {
	filter := bson.D{
		{Key: fieldProjection, Value: projection},
		{Key: fieldPartition, Value: partition},
		{Key: fieldAggregate, Value: aggregateOf(aggType, aggID)},
	}
	err := d.letters.FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: fieldID, Value: 1}})).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("mongo: dead letters of %s/%s: %w", aggType, aggID, err)
	}
	return true, nil
}

// Blocked returns the aggregates (see [bus.AggregateKey]) that projection
// has letters of on partition; letters without an aggregate block none.
// It is empty, not nil, when there are none.
func (d *DeadLetters) Blocked(ctx context.Context, projection string, partition int) (map[string]bool, error) {
	filter := bson.D{{Key: fieldProjection, Value: projection}, {Key: fieldPartition, Value: partition}}
	cur, err := d.letters.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: fieldAggregate, Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: dead letters of %s on partition %d: %w", projection, partition, err)
	}
	var docs []struct {
		Aggregate string `bson:"aggregate"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: dead letters of %s on partition %d: %w", projection, partition, err)
	}
	out := map[string]bool{}
	for _, doc := range docs {
		if doc.Aggregate != "" {
			out[doc.Aggregate] = true
		}
	}
	return out, nil
}

// projectionFilter selects the letters of projection ("" for all).
func projectionFilter(projection string) bson.D {
	if projection == "" {
		return bson.D{}
	}
	return bson.D{{Key: fieldProjection, Value: projection}}
}

// List returns the letters of projection ("" for all), in the order they
// were parked (by Seq), each with its Seq; nil when there are none.
func (d *DeadLetters) List(ctx context.Context, projection string) ([]bus.Letter, error) {
	cur, err := d.letters.Find(ctx, projectionFilter(projection), options.Find().SetSort(bson.D{{Key: fieldSeq, Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: dead letters: %w", err)
	}
	var docs []letterDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: dead letters: %w", err)
	}
	var out []bus.Letter
	for _, doc := range docs {
		l, err := doc.letter()
		if err != nil {
			return nil, fmt.Errorf("mongo: %w", err)
		}
		out = append(out, l)
	}
	return out, nil
}

// seqFilter selects the letter numbered seq.
func seqFilter(seq uint64) (bson.D, error) {
	s, err := position(seq)
	if err != nil {
		return nil, err
	}
	return bson.D{{Key: fieldSeq, Value: s}}, nil
}

// Get returns the letter numbered seq, or an error wrapping
// mongo.ErrNoDocuments when there is none.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (bus.Letter, error) {
	filter, err := seqFilter(seq)
	if err != nil {
		return bus.Letter{}, fmt.Errorf("mongo: dead letter %d: %w", seq, err)
	}
	var doc letterDoc
	if err := d.letters.FindOne(ctx, filter).Decode(&doc); err != nil {
		return bus.Letter{}, fmt.Errorf("mongo: dead letter %d: %w", seq, err)
	}
	l, err := doc.letter()
	if err != nil {
		return bus.Letter{}, fmt.Errorf("mongo: %w", err)
	}
	return l, nil
}

// Delete removes the letter numbered seq; it returns an error wrapping
// mongo.ErrNoDocuments when there is none.
func (d *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	filter, err := seqFilter(seq)
	if err != nil {
		return fmt.Errorf("mongo: delete dead letter %d: %w", seq, err)
	}
	res, err := d.letters.DeleteOne(ctx, filter)
	if err != nil {
		return fmt.Errorf("mongo: delete dead letter %d: %w", seq, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongo: delete dead letter %d: %w", seq, mongo.ErrNoDocuments)
	}
	return nil
}

// Purge removes every letter of projection ("" for all) and returns how
// many it removed. Seqs are not reused after it.
func (d *DeadLetters) Purge(ctx context.Context, projection string) (uint64, error) {
	res, err := d.letters.DeleteMany(ctx, projectionFilter(projection))
	if err != nil {
		return 0, fmt.Errorf("mongo: purge dead letters: %w", err)
	}
	return uint64(res.DeletedCount), nil
}

// Count is the number of letters of projection ("" for all).
func (d *DeadLetters) Count(ctx context.Context, projection string) (uint64, error) {
	n, err := d.letters.CountDocuments(ctx, projectionFilter(projection))
	if err != nil {
		return 0, fmt.Errorf("mongo: count dead letters: %w", err)
	}
	return uint64(n), nil
}
