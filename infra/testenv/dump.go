package testenv

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DumpRedis returns every key of the server at addr with a canonical
// rendering of its value, so two key spaces can be compared with ==.
// HyperLogLogs are rendered by their count (their bytes depend on history).
func DumpRedis(t testing.TB, addr string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("dump redis: connect %s: %v", addr, err)
	}
	defer c.Close()
	out := map[string]string{}
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatalf("dump redis: scan: %v", err)
		}
		for _, k := range e.Elements {
			out[k] = dumpKey(ctx, t, c, k)
		}
		if cursor = e.Cursor; cursor == 0 {
			return out
		}
	}
}

func dumpKey(ctx context.Context, t testing.TB, c rueidis.Client, k string) string {
	typ, err := c.Do(ctx, c.B().Type().Key(k).Build()).ToString()
	if err != nil {
		t.Fatalf("dump redis: type %s: %v", k, err)
	}
	switch typ {
	case "string":
		v, err := c.Do(ctx, c.B().Get().Key(k).Build()).ToString()
		if err != nil {
			t.Fatalf("dump redis: get %s: %v", k, err)
		}
		if strings.HasPrefix(v, "HYLL") {
			n, err := c.Do(ctx, c.B().Pfcount().Key(k).Build()).AsInt64()
			if err != nil {
				t.Fatalf("dump redis: pfcount %s: %v", k, err)
			}
			return fmt.Sprintf("hll:%d", n)
		}
		return "string:" + v
	case "hash":
		m, err := c.Do(ctx, c.B().Hgetall().Key(k).Build()).AsStrMap()
		if err != nil {
			t.Fatalf("dump redis: hgetall %s: %v", k, err)
		}
		return "hash:" + sortedPairs(m)
	case "zset":
		zs, err := c.Do(ctx, c.B().Zrange().Key(k).Min("0").Max("-1").Withscores().Build()).AsZScores()
		if err != nil {
			t.Fatalf("dump redis: zrange %s: %v", k, err)
		}
		m := map[string]string{}
		for _, z := range zs {
			m[z.Member] = fmt.Sprint(z.Score)
		}
		return "zset:" + sortedPairs(m)
	default:
		return "type:" + typ
	}
}

func sortedPairs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s;", k, m[k])
	}
	return b.String()
}

// DumpMongo returns every document of every collection of database db,
// rendered as canonical extended JSON and keyed by "collection/_id".
func DumpMongo(t testing.TB, uri, db string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatalf("dump mongo: connect: %v", err)
	}
	defer func() { _ = c.Disconnect(ctx) }()
	names, err := c.Database(db).ListCollectionNames(ctx, bson.M{})
	if err != nil {
		t.Fatalf("dump mongo: list collections: %v", err)
	}
	out := map[string]string{}
	for _, name := range names {
		cur, err := c.Database(db).Collection(name).Find(ctx, bson.M{})
		if err != nil {
			t.Fatalf("dump mongo: find %s: %v", name, err)
		}
		for cur.Next(ctx) {
			var doc bson.D
			if err := cur.Decode(&doc); err != nil {
				t.Fatalf("dump mongo: decode %s: %v", name, err)
			}
			js, err := bson.MarshalExtJSON(doc, true, false)
			if err != nil {
				t.Fatalf("dump mongo: render %s: %v", name, err)
			}
			out[fmt.Sprintf("%s/%v", name, cur.Current.Lookup("_id"))] = string(js)
		}
		if err := cur.Err(); err != nil {
			t.Fatalf("dump mongo: cursor %s: %v", name, err)
		}
	}
	return out
}

// DiffDumps describes how two dumps differ ("" when equal), at most 20 lines.
func DiffDumps(want, got map[string]string) string {
	var lines []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			lines = append(lines, fmt.Sprintf("missing %s (want %s)", k, w))
		} else if g != w {
			lines = append(lines, fmt.Sprintf("%s: got %s, want %s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("extra %s = %s", k, g))
		}
	}
	sort.Strings(lines)
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("… and %d more", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}
