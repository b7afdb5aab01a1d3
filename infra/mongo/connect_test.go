package mongo_test

import (
	"context"
	"testing"
	"time"

	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/testenv"
)

func TestConnect(t *testing.T) {
	m := testenv.StartMongo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, db, err := evmongo.Connect(ctx, m.URI(), "evflow")
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer client.Disconnect(ctx)
	if db.Name() != "evflow" {
		t.Errorf("database %q, want evflow", db.Name())
	}
	if _, _, err := evmongo.Connect(ctx, m.URI(), ""); err == nil {
		t.Error("Connect with an empty database name succeeded")
	}
}

func TestConnectFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	// Nothing listens on port 1.
	_, _, err := evmongo.Connect(ctx, "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300", "evflow")
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Connect took %s to fail; the URI's timeouts were not applied", d)
	}
	if _, _, err := evmongo.Connect(ctx, "not a uri", "evflow"); err == nil {
		t.Error("Connect with a malformed URI succeeded")
	}
}
