// Package platform wires an evflow replica with go.uber.org/fx: the bus
// (embedded or external NATS), the MongoDB and Redis stores (embedded or
// external), the command service, the projection runners and the HTTP API.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/natsd"
	"github.com/evflow/evflow/infra/projector"
)

// Replica exposes a running replica to its caller (the CLI, tests).
type Replica struct {
	// HTTPAddr is the address the API actually listens on.
	HTTPAddr string
	// NATSURL is the URL the replica's bus is connected to.
	NATSURL string
	// MongoURI is the MongoDB the replica uses (the embedded one's when embedded).
	MongoURI string
	// Runners are the projection runners.
	Runners []*projector.Runner
}

// Options returns the fx options of a replica configured by cfg.
func Options(cfg config.Config, logger *slog.Logger) fx.Option {
	return fx.Options(
		fx.Supply(cfg, logger),
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.Provide(newBus, newDocs, newHot, newService, newRunners, newReplica),
	)
}

// New builds a replica; Start it with the returned app.
func New(cfg config.Config, logger *slog.Logger) (*fx.App, *Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	var r *Replica
	app := fx.New(Options(cfg, logger), fx.Populate(&r), fx.StartTimeout(60*time.Second), fx.StopTimeout(30*time.Second))
	if err := app.Err(); err != nil {
		return nil, nil, err
	}
	return app, r, nil
}

// Bus is the replica's connection to the event stream.
type Bus struct {
	URL      string
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Stream   jetstream.Stream
	Appender *bus.Appender
	Heads    *evjs.Heads
}

func newBus(lc fx.Lifecycle, cfg config.Config, log *slog.Logger) (*Bus, error) {
	url := cfg.NATSURL
	if url == "" {
		dir := filepath.Join(cfg.DataDir, "nats")
		s, err := natsd.Start(natsd.Config{Dir: dir, Port: cfg.NATSPort, Name: "evflow"})
		if err != nil {
			return nil, fmt.Errorf("embedded nats-server: %w", err)
		}
		lc.Append(fx.StopHook(func() { s.Shutdown(); s.WaitForShutdown() }))
		url = s.ClientURL()
		log.Info("embedded nats-server running", "url", url, "store", dir)
	}
	nc, err := nats.Connect(url, nats.Name("evflow"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(url), err)
	}
	lc.Append(fx.StopHook(nc.Close))
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := evjs.EnsureStream(ctx, js, evjs.StreamConfig{Partitions: cfg.Partitions, Duplicates: cfg.Dedup})
	if err != nil {
		return nil, err
	}
	pub := evjs.NewPublisher(js, evjs.PublisherConfig{})
	return &Bus{URL: url, Conn: nc, JS: js, Stream: stream,
		Appender: bus.NewAppender(pub, evjs.DefaultTopic, cfg.Partitions),
		Heads:    evjs.NewHeads(stream, evjs.DefaultTopic, cfg.Partitions)}, nil
}

func newService(d *Docs, b *Bus) *handlers.Service {
	return handlers.NewService(d.Store, b.Appender, handlers.Config{Heads: b.Heads})
}

func newRunners(lc fx.Lifecycle, cfg config.Config, log *slog.Logger, b *Bus, d *Docs, h *Hot) ([]*projector.Runner, error) {
	newSub := func(start projector.StartAfter, window int) (messageSubscriber, error) {
		return evjs.NewSubscriber(b.JS, evjs.SubscriberConfig{StartAfter: start, Window: window, Logger: log})
	}
	var runners []*projector.Runner
	for _, p := range projectionsOf(d, h) {
		r, err := projector.New(projector.Config{
			Topic: evjs.DefaultTopic, Partitions: cfg.Partitions, MaxBatch: cfg.MaxBatch, Logger: log,
		}, p, newSub)
		if err != nil {
			return nil, err
		}
		runners = append(runners, r)
	}
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			for _, r := range runners {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := r.Run(ctx); err != nil {
						log.Error("projection stopped", "projection", r.Name(), "err", err)
					}
				}()
			}
			return nil
		},
		OnStop: func(context.Context) error {
			cancel()
			wg.Wait()
			return nil
		},
	})
	return runners, nil
}

func newReplica(lc fx.Lifecycle, cfg config.Config, log *slog.Logger, svc *handlers.Service, b *Bus, d *Docs, h *Hot, runners []*projector.Runner) *Replica {
	r := &Replica{NATSURL: b.URL, MongoURI: d.URI, Runners: runners}
	srv := &http.Server{
		Handler: httpapi.New(httpapi.Config{
			Commands: svc, Docs: d.Store, Hot: h.Store, Logger: log,
			Status: func(ctx context.Context) (any, error) { return status(ctx, cfg, b, runners) },
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			l, err := net.Listen("tcp", cfg.HTTPAddr)
			if err != nil {
				return fmt.Errorf("--http-addr %s: %w", cfg.HTTPAddr, err)
			}
			r.HTTPAddr = l.Addr().String()
			go func() {
				if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("http server stopped", "err", err)
				}
			}()
			log.Info("evflow serving", "http", "http://"+r.HTTPAddr, "nats", redactURL(b.URL), "partitions", cfg.Partitions)
			return nil
		},
		OnStop: srv.Shutdown,
	})
	return r
}

// redactURL drops credentials from URLs before they are logged.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "REDACTED@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}
