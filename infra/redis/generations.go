package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"

	"github.com/evflow/evflow/infra/generation"
)

var _ generation.Store = (*Generations)(nil)

// PrefixOf is the key prefix of generation gen (a [generation.Valid] name):
// [DefaultPrefix] for [generation.Original], DefaultPrefix followed by the
// name for the others ("ev", "ev_gk3x9…"). The key space of a generation is
// every key under "<prefix>:", its checkpoint hashes included.
//
// The key spaces of two generations never nest, so SCAN MATCH "<prefix>:*"
// finds the keys of one generation only: a generation name starts with '_'
// and contains no ':', the separator, so "ev:*" cannot match "ev_g1:…" and
// "ev_g1:*" cannot match "ev_g12:…". Nor does a name contain a glob
// character, so the prefix needs no escaping in a MATCH pattern.
func PrefixOf(gen string) string { return DefaultPrefix + gen }

// recordKey is the hash of projection's generation record. It lies outside
// every generation's key space, so dropping a generation never removes it.
func recordKey(projection string) string { return "evflow:generation:" + projection }

// Fields of a record hash. Durable data, like the names in keys.go.
const (
	recordLive     = "live"
	recordReady    = "ready"  // "1" or "0"
	recordTarget   = "target" // JSON object partition → position; absent when empty
	recordBuilding = "building"
	recordFrom     = "from"
	recordSeeded   = "seeded" // "1" or "0"
	recordPrevious = "previous"
)

// createRecordLua stores a record unless there is one, and returns the
// record stored. KEYS[1] record hash; ARGV its field/value pairs.
const createRecordLua = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
end
return redis.call('HGETALL', KEYS[1])
`

// saveRecordLua replaces a record, so no field of the old one survives.
// KEYS[1] record hash; ARGV its field/value pairs.
const saveRecordLua = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`

// updateRecordLua replaces a record if its live, ready and building fields
// are ARGV[1..3]; it returns 1 if it did, 0 if not. KEYS[1] record hash;
// ARGV[4..] the new record's field/value pairs.
const updateRecordLua = `
local cur = redis.call('HMGET', KEYS[1], 'live', 'ready', 'building')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
return 1
`

var (
	scriptCreateRecord = newScript("create record", createRecordLua)
	scriptSaveRecord   = newScript("save record", saveRecordLua)
	scriptUpdateRecord = newScript("update record", updateRecordLua)
)

// scanCount is the COUNT of each SCAN, and so about the number of keys
// copied or removed per pipeline.
const scanCount = 1000

// Generations is the [generation.Store] of the Redis projection: its
// records, and the key spaces of its generations (see [PrefixOf]). It is
// safe for concurrent use.
type Generations struct {
	client rueidis.Client
	// scripts runs the record scripts (Store.exec: EVALSHA, EVAL when the
	// server lacks the script).
	scripts *Store
}

// NewGenerations returns the generation store of the Redis server or
// cluster of client. It scans every node of client for keys. The caller
// owns client and closes it.
func NewGenerations(client rueidis.Client) *Generations {
	return &Generations{client: client, scripts: &Store{client: client, keys: keys{prefix: DefaultPrefix}}}
}

// Load implements [generation.Store].
func (g *Generations) Load(ctx context.Context, projection string) (generation.Record, bool, error) {
	m, err := g.client.Do(ctx, g.client.B().Hgetall().Key(recordKey(projection)).Build()).AsStrMap()
	if err != nil {
		return generation.Record{}, false, fmt.Errorf("redis generations: load record of %s: %w", projection, err)
	}
	if len(m) == 0 {
		return generation.Record{}, false, nil
	}
	rec, err := decodeRecord(m)
	if err != nil {
		return generation.Record{}, false, fmt.Errorf("redis generations: load record of %s: %w", projection, err)
	}
	return rec, true, nil
}

// Create implements [generation.Store]: one script checks for a record and
// stores rec, so of replicas racing to create the record all get the
// winner's.
func (g *Generations) Create(ctx context.Context, projection string, rec generation.Record) (generation.Record, error) {
	fields, err := encodeRecord(rec)
	if err != nil {
		return generation.Record{}, fmt.Errorf("redis generations: create record of %s: %w", projection, err)
	}
	res := g.scripts.exec(ctx, []call{{script: scriptCreateRecord, keys: []string{recordKey(projection)}, args: fields}})[0]
	pairs, err := res.AsStrSlice()
	if err == nil && len(pairs)%2 != 0 {
		err = fmt.Errorf("odd reply of %d values", len(pairs))
	}
	if err != nil {
		return generation.Record{}, fmt.Errorf("redis generations: create record of %s: %w", projection, err)
	}
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	if rec, err = decodeRecord(m); err != nil {
		return generation.Record{}, fmt.Errorf("redis generations: create record of %s: %w", projection, err)
	}
	return rec, nil
}

// Save implements [generation.Store]. It replaces the whole record in one
// script.
func (g *Generations) Save(ctx context.Context, projection string, rec generation.Record) error {
	fields, err := encodeRecord(rec)
	if err == nil {
		err = g.scripts.execErr(ctx, []call{{script: scriptSaveRecord, keys: []string{recordKey(projection)}, args: fields}})
	}
	if err != nil {
		return fmt.Errorf("redis generations: save record of %s: %w", projection, err)
	}
	return nil
}

// Update implements [generation.Store] in one script.
func (g *Generations) Update(ctx context.Context, projection string, old, rec generation.Record) (bool, error) {
	fields, err := encodeRecord(rec)
	if err != nil {
		return false, fmt.Errorf("redis generations: update record of %s: %w", projection, err)
	}
	args := append([]string{old.Live, flag(old.Ready), old.Building}, fields...)
	n, err := g.scripts.exec(ctx, []call{{script: scriptUpdateRecord, keys: []string{recordKey(projection)}, args: args}})[0].AsInt64()
	if err != nil {
		return false, fmt.Errorf("redis generations: update record of %s: %w", projection, err)
	}
	return n == 1, nil
}

// Copy implements [generation.Store]. It removes every key of generation
// to, then copies each key of generation from (COPY, Redis 6.2 or later)
// to the same key under to's prefix, except the checkpoint hashes. Only
// the prefix, before the first ':', changes, so the hash tag and the Redis
// Cluster slot of every copied key stay the same (every key of the store
// but the checkpoint hashes has a hash tag).
//
// Keys written in from during the copy may or may not be copied (SCAN
// returns the keys present throughout). As only one Redis projection
// exists, projection only names it in errors.
func (g *Generations) Copy(ctx context.Context, projection, from, to string) error {
	wrap := func(err error) error {
		return fmt.Errorf("redis generations: copy %s from %q to %q: %w", projection, from, to, err)
	}
	if err := validNames(from, to); err != nil {
		return wrap(err)
	}
	if from == to {
		return wrap(errors.New("same generation"))
	}
	if err := g.drop(ctx, PrefixOf(to)); err != nil {
		return wrap(err)
	}
	src, dst := PrefixOf(from), PrefixOf(to)
	ckpt := src + ":ckpt:"
	err := g.scan(ctx, src, func(keys []string) error {
		cmds := make(rueidis.Commands, 0, len(keys))
		for _, k := range keys {
			if !strings.HasPrefix(k, ckpt) {
				cmds = append(cmds, g.client.B().Copy().Source(k).Destination(dst+k[len(src):]).Replace().Build())
			}
		}
		return g.doAll(ctx, cmds)
	})
	if err != nil {
		return wrap(err)
	}
	return nil
}

// Drop implements [generation.Store]. It removes the whole key space of
// gen (UNLINK), data and checkpoints of every projection in it: only one
// Redis projection exists, so projection only names it in errors. Records
// are never removed.
func (g *Generations) Drop(ctx context.Context, projection, gen string) error {
	err := validNames(gen)
	if err == nil {
		err = g.drop(ctx, PrefixOf(gen))
	}
	if err != nil {
		return fmt.Errorf("redis generations: drop %s in %q: %w", projection, gen, err)
	}
	return nil
}

// drop removes every key under "<prefix>:".
func (g *Generations) drop(ctx context.Context, prefix string) error {
	return g.scan(ctx, prefix, func(keys []string) error {
		cmds := make(rueidis.Commands, len(keys))
		for i, k := range keys {
			cmds[i] = g.client.B().Unlink().Key(k).Build()
		}
		return g.doAll(ctx, cmds)
	})
}

// scan calls fn with each batch of keys under "<prefix>:" that SCAN finds
// on each node (a key may come twice, from a primary and its replica).
func (g *Generations) scan(ctx context.Context, prefix string, fn func(keys []string) error) error {
	for _, node := range g.client.Nodes() {
		var cursor uint64
		for {
			cmd := node.B().Scan().Cursor(cursor).Match(prefix + ":*").Count(scanCount).Build()
			e, err := node.Do(ctx, cmd).AsScanEntry()
			if err != nil {
				return fmt.Errorf("scan %s:*: %w", prefix, err)
			}
			if len(e.Elements) > 0 {
				if err := fn(e.Elements); err != nil {
					return err
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// doAll sends cmds as one pipeline and returns the first failure, if any,
// naming its command and key.
func (g *Generations) doAll(ctx context.Context, cmds rueidis.Commands) error {
	if len(cmds) == 0 {
		return nil
	}
	for i, r := range g.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(cmds[i].Commands()[:2], " "), err)
		}
	}
	return nil
}

// validNames returns an error naming the first invalid generation name.
func validNames(gens ...string) error {
	for _, gen := range gens {
		if !generation.Valid(gen) {
			return fmt.Errorf("invalid generation name %q", gen)
		}
	}
	return nil
}

// encodeRecord returns the field/value pairs of rec's hash.
func encodeRecord(rec generation.Record) ([]string, error) {
	if err := validNames(rec.Live, rec.Building, rec.Previous); err != nil {
		return nil, err
	}
	fields := []string{
		recordLive, rec.Live,
		recordReady, flag(rec.Ready),
		recordBuilding, rec.Building,
		recordFrom, rec.From,
		recordSeeded, flag(rec.Seeded),
		recordPrevious, rec.Previous,
	}
	if len(rec.Target) > 0 {
		target, err := json.Marshal(rec.Target)
		if err != nil {
			return nil, fmt.Errorf("encode target: %w", err)
		}
		fields = append(fields, recordTarget, string(target))
	}
	return fields, nil
}

// decodeRecord returns the record of a record hash's fields.
func decodeRecord(m map[string]string) (generation.Record, error) {
	rec := generation.Record{Live: m[recordLive], Building: m[recordBuilding], From: m[recordFrom], Previous: m[recordPrevious]}
	if err := validNames(rec.Live, rec.Building, rec.Previous); err != nil {
		return generation.Record{}, err
	}
	var err error
	if rec.Ready, err = parseFlag(recordReady, m[recordReady]); err != nil {
		return generation.Record{}, err
	}
	if rec.Seeded, err = parseFlag(recordSeeded, m[recordSeeded]); err != nil {
		return generation.Record{}, err
	}
	if t, ok := m[recordTarget]; ok {
		if err := json.Unmarshal([]byte(t), &rec.Target); err != nil {
			return generation.Record{}, fmt.Errorf("stored target %q: %w", t, err)
		}
	}
	return rec, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func parseFlag(field, v string) (bool, error) {
	switch v {
	case "1":
		return true, nil
	case "0", "":
		return false, nil
	}
	return false, fmt.Errorf("stored %s %q, want 1 or 0", field, v)
}

// Checkpoints returns the checkpoint of every partition of projection that
// has one, in one read: what the replicas compare with a record's Target
// to tell when a rebuilt generation has caught up.
func (s *Store) Checkpoints(ctx context.Context, projection string) (map[int]uint64, error) {
	m, err := s.client.Do(ctx, s.client.B().Hgetall().Key(s.keys.checkpoints(projection)).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("read checkpoints of %s: %w", projection, err)
	}
	out := make(map[int]uint64, len(m))
	for f, v := range m {
		partition, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("read checkpoints of %s: stored partition %q: %w", projection, f, err)
		}
		if out[partition], err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, fmt.Errorf("read checkpoints of %s: stored value %q of partition %d: %w", projection, v, partition, err)
		}
	}
	return out, nil
}
