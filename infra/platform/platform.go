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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/httpapi"
	"github.com/evflow/evflow/infra/projector"
	"github.com/evflow/evflow/infra/telemetry"
)

// Replica exposes a running replica to its caller (the CLI, tests).
type Replica struct {
	// HTTPAddr is the address the API actually listens on.
	HTTPAddr string
	// NATSURL is the URL the replica's bus is connected to (JetStream).
	NATSURL string
	// Bus is the replica's event log.
	Bus *Bus
	// MongoURI is the MongoDB the replica uses (the embedded one's when embedded).
	MongoURI string
	// Runners are the projection runners.
	Runners []*projector.Runner
	// Owner decides which partitions this replica consumes.
	Owner Ownership
}

// Options returns the fx options of a replica configured by cfg.
func Options(cfg config.Config, logger *slog.Logger) fx.Option {
	logger = telemetry.Logger(logger) // request, correlation and trace ids from contexts
	return fx.Options(
		fx.Supply(cfg, logger),
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.Provide(newMetrics, newAuth, newBus, newDocs, newHot, newLive, newService, newRunners, newOwner, newReplica),
		telemetryOptions(),
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

// newMetrics is the replica's Prometheus registry, with the Go runtime's
// and the process's collectors.
func newMetrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newLive opens every projection's live generation.
func newLive(cfg config.Config, log *slog.Logger, reg *prometheus.Registry, b *Bus, d *Docs, h *Hot) (*generations, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return newGenerations(ctx, log, reg, d, h, func(ctx context.Context) ([]uint64, error) {
		return b.Log.Heads(ctx)
	})
}

func newService(cfg config.Config, g *generations, b *Bus) *handlers.Service {
	return handlers.NewService(&g.live, b.Appender, handlers.Config{Heads: b.Heads, MaxLaunchBatch: cfg.MaxLaunches})
}

func newRunners(cfg config.Config, log *slog.Logger, b *Bus, g *generations, m *telemetry.Metrics, t *telemetry.Tracing) (runnerSet, error) {
	projs, err := g.projectors()
	if err != nil {
		return nil, err
	}
	var runners runnerSet
	for _, p := range projs {
		r, err := projector.New(projector.Config{
			Topic: b.Topic, Partitions: cfg.Partitions, MaxBatch: cfg.MaxBatch, Linger: projector.Lingering(cfg.Linger), Logger: log,
			DeadLetters: b.DeadLetters, MaxAttempts: cfg.MaxAttempts,
			MinBackoff: cfg.RetryBackoff, MaxBackoff: cfg.RetryMaxBackoff,
			Observer: observer(p.Name(), b, m, t),
		}, p, b.NewSubscriber)
		if err != nil {
			return nil, err
		}
		runners = append(runners, r)
	}
	return runners, nil
}

// newOwner runs partition ownership: it starts the runners and takes part in
// the lease protocol; on stop its partitions are drained and handed over
// before the runners stop.
func newOwner(lc fx.Lifecycle, log *slog.Logger, b *Bus, g *generations, runners runnerSet) (Ownership, error) {
	owner, err := b.newOwner(runners)
	if err != nil {
		return nil, err
	}
	followCtx, stopFollowing := context.WithCancel(context.Background())
	following := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			for _, r := range runners {
				r.Start(context.Background())
			}
			if err := owner.Start(); err != nil {
				return err
			}
			go func() {
				defer close(following)
				g.follow(followCtx, runners)
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			stopFollowing()
			<-following
			owner.Stop(ctx) // already done by the HTTP hook, unless that never started
			for _, r := range runners {
				r.Stop()
				log.Info("projection stopped", "projection", r.Name(), "applied", r.Applied())
			}
			return nil
		},
	})
	return owner, nil
}

// runnerSet hands each partition to every projection runner.
type runnerSet []*projector.Runner

// Assign implements ownership.Assigner and kafka.Assigner.
func (rs runnerSet) Assign(p int) {
	for _, r := range rs {
		r.Assign(p)
	}
}

// Revoke implements ownership.Assigner: the runners drain in parallel.
func (rs runnerSet) Revoke(p int) {
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Revoke(p)
		}()
	}
	wg.Wait()
}

func newReplica(lc fx.Lifecycle, cfg config.Config, log *slog.Logger, reg *prometheus.Registry, auth apiAuth, tr *telemetry.Tracing, svc *handlers.Service, b *Bus, d *Docs, h *Hot, g *generations, runners runnerSet, owner Ownership) *Replica {
	r := &Replica{MongoURI: d.URI, Runners: runners, Owner: owner, Bus: b}
	if b.Kind == config.BusJetStream {
		r.NATSURL = b.URL
	}
	srv := &http.Server{
		Handler: observeHTTP(httpapi.New(httpapi.Config{
			Commands: svc, Docs: &g.live, Hot: &g.live, Logger: log,
			DeadLetters: deadLetters{letterStore: b.DeadLetters, runners: runners},
			Status:      func(ctx context.Context) (any, error) { return status(ctx, cfg, b, g, runners, owner) },
			Ready:       func(ctx context.Context) error { return ready(ctx, b, d, h) },
			Metrics:     promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
			Auth:        auth.Verifier, AdminAPI: cfg.AdminAPI, Tenancy: &g.live,
			RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
			MaxBody: int64(cfg.MaxBody), MaxLaunches: cfg.MaxLaunches,
		}), tr, log),
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
			log.Info("evflow serving", "http", "http://"+r.HTTPAddr, "bus", b.Kind, "at", b.URL, "partitions", cfg.Partitions)
			return nil
		},
		// Hand the partitions over first, while the API still answers: a
		// stopping replica's in-flight requests must not delay the takeover.
		OnStop: func(ctx context.Context) error {
			owner.Stop(ctx)
			return srv.Shutdown(ctx)
		},
	})
	return r
}
