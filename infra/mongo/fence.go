package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/bus/kafka"
)

// FenceCollection holds the aggregates' last positions on a Kafka bus.
const FenceCollection = "fence"

// Fence is the MongoDB [kafka.Fence]: a document per aggregate holding its
// last position and the claim of the append in progress, if any. Every
// change is one conditional update, so it needs no transactions (FerretDB).
// Claims expire by the clocks of the replicas: they must agree within the
// lease minus the time a produce may take (by default 10 s − 5 s).
type Fence struct {
	coll *mongo.Collection
	now  func() time.Time
}

var _ kafka.Fence = (*Fence)(nil)

// NewFence returns the fence kept in db.
func NewFence(db *mongo.Database) *Fence {
	return &Fence{coll: db.Collection(FenceCollection, options.Collection().SetReadPreference(readpref.Primary())), now: time.Now}
}

type fenceDoc struct {
	ID      string    `bson:"_id"`
	Pos     int64     `bson:"pos"`
	Pending string    `bson:"pending"`
	Since   time.Time `bson:"since"`
	Until   time.Time `bson:"until"`
}

// Claim implements kafka.Fence.
func (f *Fence) Claim(ctx context.Context, key string, expected uint64, id string, lease time.Duration) error {
	for range 5 {
		now := f.now()
		res, err := f.coll.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: key}, {Key: "pos", Value: int64(expected)}, {Key: "pending", Value: ""}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "pending", Value: id}, {Key: "since", Value: now}, {Key: "until", Value: now.Add(lease)}}}})
		if err != nil {
			return fmt.Errorf("claim %s: %w", key, err)
		}
		if res.MatchedCount == 1 {
			return nil
		}
		var d fenceDoc
		err = f.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments) && expected == 0:
			_, err := f.coll.InsertOne(ctx, fenceDoc{ID: key, Pending: id, Since: now, Until: now.Add(lease)})
			if err == nil {
				return nil
			}
			if !mongo.IsDuplicateKeyError(err) {
				return fmt.Errorf("claim %s: %w", key, err)
			}
			continue // another append created it first: look again
		case errors.Is(err, mongo.ErrNoDocuments):
			// Events of the aggregate exist that the fence never recorded
			// (its collection was lost): find the last one in the log.
			return &kafka.Doubt{Key: key}
		case err != nil:
			return fmt.Errorf("claim %s: %w", key, err)
		case d.Pending == id:
			_, err := f.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "pending", Value: id}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: now.Add(lease)}}}})
			if err != nil {
				return fmt.Errorf("renew claim %s: %w", key, err)
			}
			return nil
		case d.Pending != "" && now.Before(d.Until):
			return fmt.Errorf("%s: another append is in progress: %w", key, events.ErrConflict)
		case d.Pending != "":
			return &kafka.Doubt{Key: key, ID: d.Pending, Head: uint64(d.Pos), Since: d.Since}
		case uint64(d.Pos) != expected:
			return fmt.Errorf("%s is at position %d, expected %d: %w", key, d.Pos, expected, events.ErrConflict)
		}
		// Settled between the update and the read: try again.
	}
	return fmt.Errorf("%s keeps changing: %w", key, events.ErrConflict)
}

// Settle implements kafka.Fence. An empty id settles an aggregate the fence
// has no document of.
func (f *Fence) Settle(ctx context.Context, key, id string, pos uint64) error {
	if id == "" {
		_, err := f.coll.InsertOne(ctx, fenceDoc{ID: key, Pos: int64(pos)})
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("settle %s: %w", key, err)
		}
		return nil
	}
	set := bson.D{{Key: "pending", Value: ""}}
	if pos > 0 {
		set = append(set, bson.E{Key: "pos", Value: int64(pos)})
	}
	if _, err := f.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "pending", Value: id}}, bson.D{{Key: "$set", Value: set}}); err != nil {
		return fmt.Errorf("settle %s: %w", key, err)
	}
	return nil
}

// Head implements kafka.Fence.
func (f *Fence) Head(ctx context.Context, key string) (uint64, error) {
	var d fenceDoc
	err := f.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("head of %s: %w", key, err)
	}
	return uint64(d.Pos), nil
}
