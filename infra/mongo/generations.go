package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/evflow/evflow/infra/generation"
	"github.com/evflow/evflow/projections"
)

// Generations keeps the generation records of the MongoDB projections in
// [GenerationsCollection] and copies and drops their generations' data: a
// projection's documents in a generation are a collection named with the
// generation as suffix, its checkpoints the documents of the checkpoints
// collection of that suffix whose projection field names it. Only simple
// commands are used (find, insert, replace, delete, drop), so it runs on
// MongoDB and on FerretDB alike.
type Generations struct {
	db      *mongo.Database
	records *mongo.Collection
	maxBulk int
}

var _ generation.Store = (*Generations)(nil)

// NewGenerations returns the generation store of db. Of cfg it uses
// MaxBulk, the number of documents a copy inserts at once; it fails if cfg
// is invalid.
func NewGenerations(db *mongo.Database, cfg Config) (*Generations, error) {
	if db == nil {
		return nil, errors.New("mongo generations: nil database")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generations{db: db, maxBulk: cfg.MaxBulk}
	g.records = g.coll(GenerationsCollection)
	return g, nil
}

// coll returns the collection name of the store's database, read from the
// primary as [Store] reads.
func (g *Generations) coll(name string) *mongo.Collection {
	return g.db.Collection(name, options.Collection().SetReadPreference(readpref.Primary()))
}

// recordDoc is a generations document.
type recordDoc struct {
	ID       string      `bson:"_id"`
	Live     string      `bson:"live"`
	Ready    bool        `bson:"ready"`
	Target   []targetDoc `bson:"target"`
	Building string      `bson:"building"`
	From     string      `bson:"from"`
	Seeded   bool        `bson:"seeded"`
	Previous string      `bson:"previous"`
}

// targetDoc is one partition's target position, an element of
// recordDoc.Target.
type targetDoc struct {
	Partition int   `bson:"partition"`
	Pos       int64 `bson:"pos"`
}

// toDoc returns the document of projection's record rec, its target sorted
// by partition.
func toDoc(projection string, rec generation.Record) (recordDoc, error) {
	d := recordDoc{ID: projection, Live: rec.Live, Ready: rec.Ready, Building: rec.Building, From: rec.From, Seeded: rec.Seeded, Previous: rec.Previous}
	if !generation.Valid(rec.Live) || !generation.Valid(rec.Building) || !generation.Valid(rec.Previous) {
		return d, fmt.Errorf("invalid generation in record (live %q, building %q, previous %q)", rec.Live, rec.Building, rec.Previous)
	}
	d.Target = []targetDoc{}
	for partition, pos := range rec.Target {
		p, err := position(pos)
		if err != nil {
			return d, fmt.Errorf("target of partition %d: %w", partition, err)
		}
		d.Target = append(d.Target, targetDoc{Partition: partition, Pos: p})
	}
	slices.SortFunc(d.Target, func(a, b targetDoc) int { return a.Partition - b.Partition })
	return d, nil
}

// record returns the record d holds; an empty target is nil.
func (d recordDoc) record() (generation.Record, error) {
	rec := generation.Record{Live: d.Live, Ready: d.Ready, Building: d.Building, From: d.From, Seeded: d.Seeded, Previous: d.Previous}
	for _, t := range d.Target {
		if t.Pos < 0 {
			return generation.Record{}, fmt.Errorf("target of partition %d: negative position %d", t.Partition, t.Pos)
		}
		if rec.Target == nil {
			rec.Target = make(map[int]uint64, len(d.Target))
		}
		rec.Target[t.Partition] = uint64(t.Pos)
	}
	return rec, nil
}

// Load implements [generation.Store]. A stored empty Target loads as nil.
func (g *Generations) Load(ctx context.Context, projection string) (generation.Record, bool, error) {
	var d recordDoc
	err := g.records.FindOne(ctx, bson.D{{Key: fieldID, Value: projection}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return generation.Record{}, false, nil
	}
	if err != nil {
		return generation.Record{}, false, fmt.Errorf("mongo generations: load %s: %w", projection, err)
	}
	rec, err := d.record()
	if err != nil {
		return generation.Record{}, false, fmt.Errorf("mongo generations: load %s: %w", projection, err)
	}
	return rec, true, nil
}

// Create implements [generation.Store] with one insert, atomic because
// _id is unique: on a duplicate key it loads and returns the record there.
func (g *Generations) Create(ctx context.Context, projection string, rec generation.Record) (generation.Record, error) {
	d, err := toDoc(projection, rec)
	if err != nil {
		return generation.Record{}, fmt.Errorf("mongo generations: create %s: %w", projection, err)
	}
	_, err = g.records.InsertOne(ctx, d)
	if err == nil {
		return rec, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return generation.Record{}, fmt.Errorf("mongo generations: create %s: %w", projection, err)
	}
	stored, ok, err := g.Load(ctx, projection)
	if err != nil {
		return generation.Record{}, err
	}
	if !ok {
		return generation.Record{}, fmt.Errorf("mongo generations: create %s: record exists, then vanished", projection)
	}
	return stored, nil
}

// Save implements [generation.Store] with one replace by _id, an upsert.
func (g *Generations) Save(ctx context.Context, projection string, rec generation.Record) error {
	d, err := toDoc(projection, rec)
	if err != nil {
		return fmt.Errorf("mongo generations: save %s: %w", projection, err)
	}
	_, err = g.records.ReplaceOne(ctx, bson.D{{Key: fieldID, Value: projection}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mongo generations: save %s: %w", projection, err)
	}
	return nil
}

// Update implements [generation.Store]: one replace filtered on the
// stored record's live, ready and building fields.
func (g *Generations) Update(ctx context.Context, projection string, old, rec generation.Record) (bool, error) {
	d, err := toDoc(projection, rec)
	if err != nil {
		return false, fmt.Errorf("mongo generations: update %s: %w", projection, err)
	}
	filter := bson.D{{Key: fieldID, Value: projection}, {Key: "live", Value: old.Live}, {Key: "ready", Value: old.Ready}, {Key: "building", Value: old.Building}}
	res, err := g.records.ReplaceOne(ctx, filter, d)
	if err != nil {
		return false, fmt.Errorf("mongo generations: update %s: %w", projection, err)
	}
	return res.MatchedCount == 1, nil
}

// dataCollection is the collection that holds projection's documents
// without a generation suffix.
func dataCollection(projection string) (string, error) {
	switch projection {
	case projections.AppsName:
		return AppsCollection, nil
	case projections.DailyStatsName:
		return DailyStatsCollection, nil
	}
	return "", fmt.Errorf("unknown projection (want %s or %s)", projections.AppsName, projections.DailyStatsName)
}

// Copy implements [generation.Store]: it drops projection's collection in
// to, then inserts every document of its collection in from, in bulks of
// up to [Config.MaxBulk]. A missing source gives an empty target. Nothing
// must write to either generation meanwhile: writes to from after the
// find has passed them may be missed.
func (g *Generations) Copy(ctx context.Context, projection, from, to string) error {
	if err := g.copy(ctx, projection, from, to); err != nil {
		return fmt.Errorf("mongo generations: copy %s %q to %q: %w", projection, from, to, err)
	}
	return nil
}

func (g *Generations) copy(ctx context.Context, projection, from, to string) error {
	name, err := dataCollection(projection)
	switch {
	case err != nil:
		return err
	case !generation.Valid(from) || !generation.Valid(to):
		return errors.New("invalid generation name")
	case from == to:
		return errors.New("a generation cannot be copied onto itself")
	}
	src, dst := g.coll(name+from), g.coll(name+to)
	if err := dst.Drop(ctx); err != nil {
		return fmt.Errorf("drop target: %w", err)
	}
	cur, err := src.Find(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("read source: %w", err)
	}
	defer cur.Close(ctx)
	var docs []bson.Raw
	flush := func() error {
		if len(docs) == 0 {
			return nil
		}
		if _, err := dst.InsertMany(ctx, docs); err != nil {
			return fmt.Errorf("insert %d documents: %w", len(docs), err)
		}
		docs = docs[:0]
		return nil
	}
	for cur.Next(ctx) {
		docs = append(docs, slices.Clone(cur.Current)) // Current is reused by Next
		if len(docs) == g.maxBulk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read source: %w", err)
	}
	return flush()
}

// Drop implements [generation.Store]: it drops projection's collection in
// gen and deletes its checkpoints there, then drops gen's checkpoints
// collection if that left it empty, unless gen is [generation.Original].
// The checkpoints collection is shared by the projections of the store:
// it must not be dropped while another projection writes to gen.
func (g *Generations) Drop(ctx context.Context, projection, gen string) error {
	if err := g.drop(ctx, projection, gen); err != nil {
		return fmt.Errorf("mongo generations: drop %s %q: %w", projection, gen, err)
	}
	return nil
}

func (g *Generations) drop(ctx context.Context, projection, gen string) error {
	name, err := dataCollection(projection)
	if err != nil {
		return err
	}
	if !generation.Valid(gen) {
		return errors.New("invalid generation name")
	}
	if err := g.coll(name + gen).Drop(ctx); err != nil {
		return err
	}
	cps := g.coll(CheckpointsCollection + gen)
	if _, err := cps.DeleteMany(ctx, bson.D{{Key: fieldProjection, Value: projection}}); err != nil {
		return fmt.Errorf("delete checkpoints: %w", err)
	}
	if gen == generation.Original {
		return nil
	}
	err = cps.FindOne(ctx, bson.D{}).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		if err := cps.Drop(ctx); err != nil {
			return fmt.Errorf("drop checkpoints: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read checkpoints: %w", err)
	}
	return nil
}
