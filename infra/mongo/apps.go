package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evflow/evflow/projections"
)

// LoadApps implements [projections.DocStore] with one find on _id $in ids
// (with [Config.KeyOnly], one find per id).
func (s *Store) LoadApps(ctx context.Context, ids []string) (map[string]projections.App, error) {
	out := make(map[string]projections.App, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if s.cfg.KeyOnly {
		for _, id := range ids {
			a, ok, err := s.App(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("mongo: load %d apps: %w", len(ids), err)
			}
			if ok {
				out[id] = a
			}
		}
		return out, nil
	}
	cur, err := s.apps.Find(ctx, bson.D{{Key: fieldID, Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, fmt.Errorf("mongo: load %d apps: %w", len(ids), err)
	}
	var docs []projections.App
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: load %d apps: %w", len(ids), err)
	}
	for _, a := range docs {
		out[a.ID] = a
	}
	return out, nil
}

// App returns the stored state of app id, for the query API; ok is false
// when there is none.
func (s *Store) App(ctx context.Context, id string) (app projections.App, ok bool, err error) {
	err = s.apps.FindOne(ctx, bson.D{{Key: fieldID, Value: id}}).Decode(&app)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return projections.App{}, false, nil
	case err != nil:
		return projections.App{}, false, fmt.Errorf("mongo: app %q: %w", id, err)
	}
	return app, true, nil
}

// SaveApps implements [projections.DocStore]. A write with Prev 0 inserts
// the document and is lost if one exists (duplicate key); a write with Prev
// above 0 replaces the document whose pos is still Prev and is lost if
// there is none. Lost ids come back in the order of writes. Bulks hold at
// most [Config.MaxBulk] operations.
//
// Inserts are judged by their duplicate-key errors, which both MongoDB and
// FerretDB report with the operation's index. Replaces cannot be judged
// from a bulk result: a non-matching replace is no error, and a bulk only
// counts matches in total. So when a replace bulk matched fewer documents
// than it holds, the store reads back the positions of its documents: a
// write won if the document now holds the position it wrote. (Positions of
// one aggregate only grow and the fold is deterministic, so a document at
// that position holds the same state whoever wrote it; if another writer
// has already moved it further, reporting the write lost costs the caller
// a harmless re-fold.) That is one extra find per bulk only when there was
// a conflict, instead of one round trip per app.
func (s *Store) SaveApps(ctx context.Context, writes []projections.AppWrite) ([]string, error) {
	defer s.serialize()()
	var inserts, replaces []projections.AppWrite
	for _, w := range writes {
		if w.App.ID == "" {
			return nil, errors.New("mongo: save apps: write without an app id")
		}
		if w.Prev == 0 {
			inserts = append(inserts, w)
		} else {
			replaces = append(replaces, w)
		}
	}
	lost := map[string]bool{}
	for chunk := range slices.Chunk(inserts, s.cfg.MaxBulk) {
		if err := s.insertApps(ctx, chunk, lost); err != nil {
			return nil, err
		}
	}
	for chunk := range slices.Chunk(replaces, s.cfg.MaxBulk) {
		if err := s.replaceApps(ctx, chunk, lost); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, w := range writes {
		if lost[w.App.ID] {
			out = append(out, w.App.ID)
		}
	}
	return out, nil
}

// insertApps inserts the new apps in one bulk and marks the ids that
// already existed as lost.
func (s *Store) insertApps(ctx context.Context, ws []projections.AppWrite, lost map[string]bool) error {
	models := make([]mongo.WriteModel, len(ws))
	for i, w := range ws {
		models[i] = mongo.NewInsertOneModel().SetDocument(w.App)
	}
	_, err := s.apps.BulkWrite(ctx, models, unordered())
	if err == nil {
		return nil
	}
	idx, ok := dupKeyIndexes(err)
	if !ok {
		return fmt.Errorf("mongo: insert %d apps: %w", len(ws), err)
	}
	for _, i := range idx {
		lost[ws[i].App.ID] = true
	}
	return nil
}

// replaceApps replaces the apps still at their Prev position in one bulk,
// and reads back to find the lost ones when not all matched. With
// [Config.KeyOnly] it reads the stored positions first and replaces, by _id
// alone, only the apps still at Prev.
func (s *Store) replaceApps(ctx context.Context, ws []projections.AppWrite, lost map[string]bool) error {
	if s.cfg.KeyOnly {
		stored, err := s.positions(ctx, s.apps, appIDs(ws))
		if err != nil {
			return fmt.Errorf("mongo: replace %d apps: %w", len(ws), err)
		}
		var current []projections.AppWrite
		for _, w := range ws {
			if pos, ok := stored[w.App.ID]; ok && pos == w.Prev {
				current = append(current, w)
			} else {
				lost[w.App.ID] = true
			}
		}
		if ws = current; len(ws) == 0 {
			return nil
		}
	}
	models := make([]mongo.WriteModel, len(ws))
	for i, w := range ws {
		filter := bson.D{{Key: fieldID, Value: w.App.ID}}
		if !s.cfg.KeyOnly {
			filter = append(filter, bson.E{Key: fieldPos, Value: w.Prev})
		}
		models[i] = mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(w.App)
	}
	res, err := s.apps.BulkWrite(ctx, models, unordered())
	if err != nil {
		return fmt.Errorf("mongo: replace %d apps: %w", len(ws), err)
	}
	// Each filter names one _id, so each operation matches at most one
	// document: a full count means every replace was applied.
	if res.MatchedCount == int64(len(ws)) {
		return nil
	}
	stored, err := s.positions(ctx, s.apps, appIDs(ws))
	if err != nil {
		return fmt.Errorf("mongo: replace %d apps: read back: %w", len(ws), err)
	}
	for _, w := range ws {
		if pos, ok := stored[w.App.ID]; !ok || pos != w.App.Position {
			lost[w.App.ID] = true
		}
	}
	return nil
}

func appIDs(ws []projections.AppWrite) []string {
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.App.ID
	}
	return ids
}

// positions returns the pos field of the documents of coll among ids, in
// one find on _id $in ids (with [Config.KeyOnly], one find per id);
// missing documents are absent.
func (s *Store) positions(ctx context.Context, coll *mongo.Collection, ids []string) (map[string]int64, error) {
	type doc struct { // tags: fieldID, fieldPos
		ID  string `bson:"_id"`
		Pos int64  `bson:"pos"`
	}
	out := make(map[string]int64, len(ids))
	if s.cfg.KeyOnly {
		opts := options.FindOne().SetProjection(bson.D{{Key: fieldPos, Value: 1}})
		for _, id := range ids {
			var d doc
			err := coll.FindOne(ctx, bson.D{{Key: fieldID, Value: id}}, opts).Decode(&d)
			switch {
			case errors.Is(err, mongo.ErrNoDocuments):
			case err != nil:
				return nil, err
			default:
				out[d.ID] = d.Pos
			}
		}
		return out, nil
	}
	filter := bson.D{{Key: fieldID, Value: bson.D{{Key: "$in", Value: ids}}}}
	cur, err := coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: fieldPos, Value: 1}}))
	if err != nil {
		return nil, err
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	for _, d := range docs {
		out[d.ID] = d.Pos
	}
	return out, nil
}

// AppsOf returns the ids of the apps tenant owns or was granted, in id
// order: the apps a token of tenant may read. It scans the apps
// collection, which has no index on tenant or grants.
func (s *Store) AppsOf(ctx context.Context, tenant string) ([]string, error) {
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: fieldTenant, Value: tenant}},
		bson.D{{Key: fieldGrants, Value: tenant}},
	}}}
	opts := options.Find().SetProjection(bson.D{{Key: fieldID, Value: 1}})
	cur, err := s.apps.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: apps of %q: %w", tenant, err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: apps of %q: %w", tenant, err)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	slices.Sort(ids)
	return ids, nil
}
