package testenv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/rueidis"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evflow/evflow/infra/testenv"
)

func TestComponentsAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	n := testenv.StartNATS(t)
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	defer nc.Close()
	if err := nc.FlushWithContext(ctx); err != nil {
		t.Fatalf("nats flush: %v", err)
	}

	r := testenv.StartRedis(t)
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("redis connect: %v", err)
	}
	defer rc.Close()
	if s, err := rc.Do(ctx, rc.B().Ping().Build()).ToString(); err != nil || s != "PONG" {
		t.Fatalf("redis ping = %q, %v", s, err)
	}
	if err := rc.Do(ctx, rc.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatalf("redis set: %v", err)
	}
	r.Restart()
	testenv.WaitFor(t, 5*time.Second, func() error {
		err := rc.Do(ctx, rc.B().Get().Key("k").Build()).Error()
		if rueidis.IsRedisNil(err) {
			return nil // restarted empty: the data was not persisted
		}
		return fmt.Errorf("get after restart: %v", err)
	})

	m := testenv.StartMongo(t)
	mc, err := mongo.Connect(options.Client().ApplyURI(m.URI()))
	if err != nil {
		t.Fatalf("mongo connect: %v", err)
	}
	defer mc.Disconnect(ctx)
	if _, err := mc.Database("t").Collection("c").InsertOne(ctx, bson.M{"_id": "a"}); err != nil {
		t.Fatalf("mongo insert: %v", err)
	}
}
