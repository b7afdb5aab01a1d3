package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/client"
	evconfig "github.com/evflow/evflow/infra/config"
	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/platform"
)

// httpInflight is how many launch batches the HTTP clients keep in flight.
const httpInflight = 4

// measureHTTP is evflow.publish.http (no target): a whole replica
// (platform.New, as `evflow serve` runs it) over the stand's NATS, Redis
// and FerretDB, and the Go client (infra/client) posting cfg.Events
// launches in batches of launchBatch from httpInflight goroutines, each
// with one batch in flight and its own kept-alive connection. The figure
// is launches accepted (202: stored by JetStream) per second. The replica
// projects meanwhile, as it would, so this is ingestion under a replica's
// full load, not ingestion alone. The replica uses the default stream
// name (EVFLOW); its streams and its MongoDB database are removed after.
func measureHTTP(ctx context.Context, e *evEnv, r *results) error {
	uri, err := e.st.MongoURI()
	if err != nil {
		return err
	}
	before, err := e.streamNames(ctx)
	if err != nil {
		return err
	}
	defer e.removeNewStreams(before)
	cfg := evconfig.Default()
	cfg.DataDir = filepath.Join(e.st.dir, "evflow-http")
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATSURL = e.st.NATSURL()
	cfg.RedisAddr, cfg.RedisDB = e.st.RedisAddr, evflowRedisDB
	cfg.MongoURI, cfg.MongoDB = uri, "evbench_http"
	cfg.Partitions = e.cfg.Partitions
	cfg.Replica = "evbench-http"
	app, rep, err := platform.New(cfg, e.log)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := app.Start(sctx); err != nil {
		return fmt.Errorf("start replica: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := app.Stop(stopCtx); err != nil {
			e.log.Warn("replica did not stop cleanly", "err", err)
		}
		dropDB(uri, cfg.MongoDB, e.log)
	}()

	hc := &http.Client{Timeout: client.DefaultAttemptTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: httpInflight}}
	defer hc.CloseIdleConnections()
	c, err := client.New("http://"+rep.HTTPAddr, client.WithHTTPClient(hc))
	if err != nil {
		return err
	}
	gen := e.launchGen("http", backlogApps)
	send := func(ctx context.Context, b []handlers.Launch) (int, error) { return c.Launch(ctx, b...) }
	stop := startProfile("http", e.log)
	began := time.Now()
	accepted, err := ingest(ctx, send, httpInflight, fromSlice(gen.batches(0, e.cfg.Events, launchBatch)))
	took := time.Since(began)
	stop()
	if err != nil {
		return err
	}
	if accepted != e.cfg.Events {
		return fmt.Errorf("%d launches accepted, want %d", accepted, e.cfg.Events)
	}
	r.add("evflow.publish.http", "evflow", fmt.Sprintf("HTTP API launches, Go client (batches of %d, %d in flight)", launchBatch, httpInflight),
		rate(e.cfg.Events, took), "events/s")
	return nil
}

// streamNames lists the streams on the server.
func (e *evEnv) streamNames(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l := e.pub.StreamNames(ctx)
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	return names, l.Err()
}

// removeNewStreams deletes the streams that are not among before.
func (e *evEnv) removeNewStreams(before []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now, err := e.streamNames(ctx)
	if err != nil {
		e.log.Warn("cannot list streams", "err", err)
	}
	for _, n := range now {
		if !slices.Contains(before, n) {
			if err := e.pub.DeleteStream(ctx, n); err != nil {
				e.log.Warn("cannot delete stream", "stream", n, "err", err)
			}
		}
	}
}

// dropDB drops a MongoDB database.
func dropDB(uri, name string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, db, err := evmongo.Connect(ctx, uri, name)
	if err != nil {
		log.Warn("cannot drop database", "db", name, "err", err)
		return
	}
	defer c.Disconnect(ctx)
	if err := db.Drop(ctx); err != nil {
		log.Warn("cannot drop database", "db", name, "err", err)
	}
}
