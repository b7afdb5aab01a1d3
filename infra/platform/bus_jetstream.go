package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/fx"

	"github.com/evflow/evflow/infra/bus"
	evjs "github.com/evflow/evflow/infra/bus/jetstream"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/natsd"
	"github.com/evflow/evflow/infra/ownership"
	"github.com/evflow/evflow/infra/projector"
)

// newJetStreamBus connects to NATS (embedded unless --nats-url), creates
// the stream and the dead-letter stream, and shares partitions by leases
// in a KV bucket.
func newJetStreamBus(lc fx.Lifecycle, cfg config.Config, log *slog.Logger) (*Bus, error) {
	url := cfg.NATSURL
	if url == "" {
		dir := filepath.Join(cfg.DataDir, "nats")
		ncfg := natsd.Config{Dir: dir, Host: cfg.NATSHost, Port: cfg.NATSPort, Name: cfg.NATSServerName}
		var err error
		if ncfg.Auth, ncfg.TLS, err = natsdSecurity(cfg); err != nil {
			return nil, fmt.Errorf("embedded nats-server: %w", err)
		}
		if ncfg.Name == "" {
			ncfg.Name = cfg.ReplicaID()
		}
		if cfg.NATSRoutes != "" {
			ncfg.Cluster = natsd.ClusterConfig{Name: cfg.NATSClusterName, Port: cfg.NATSClusterPort, Routes: strings.Split(cfg.NATSRoutes, ",")}
		}
		s, err := natsd.Start(ncfg)
		if err != nil {
			return nil, fmt.Errorf("embedded nats-server: %w", err)
		}
		lc.Append(fx.StopHook(func() { s.Shutdown(); s.WaitForShutdown() }))
		url = s.ClientURL()
		log.Info("embedded nats-server running", "url", url, "store", dir, "auth", ncfg.Auth.Enabled(), "tls", ncfg.TLS.Enabled())
	}
	nc, err := connectNATS(cfg, url, "evflow", cfg.NATSURL == "", nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(nc.Close))
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(evjs.DefaultAckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := evjs.EnsureStream(ctx, js, evjs.StreamConfig{Partitions: cfg.Partitions, Duplicates: cfg.Dedup, Replicas: cfg.Replicas()})
	if err != nil {
		return nil, err
	}
	dl, err := evjs.EnsureDeadLetters(ctx, js, cfg.Replicas())
	if err != nil {
		return nil, err
	}
	pub := evjs.NewPublisher(js, evjs.PublisherConfig{})
	return &Bus{
		Kind: config.BusJetStream, URL: config.RedactURL(url), Topic: evjs.DefaultTopic,
		Publisher:   pub,
		Appender:    bus.NewAppender(pub, evjs.DefaultTopic, cfg.Partitions),
		Heads:       evjs.NewHeads(stream, evjs.DefaultTopic, cfg.Partitions),
		Log:         evjs.Log{Stream: stream, Topic: evjs.DefaultTopic, Partitions: cfg.Partitions},
		DeadLetters: dl,
		NewSubscriber: func(start projector.StartAfter, window int) (messageSubscriber, error) {
			return evjs.NewSubscriber(js, evjs.SubscriberConfig{StartAfter: start, Window: window, Logger: log})
		},
		newOwner: func(runners runnerSet) (Ownership, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := ownership.New(ctx, js, ownership.Config{
				Replica: cfg.ReplicaID(), Partitions: cfg.Partitions, TTL: cfg.LeaseTTL, Replicas: cfg.Replicas(), Logger: log,
			}, runners)
			return leases{c}, err
		},
		ready: func(context.Context) error {
			if !nc.IsConnected() {
				return fmt.Errorf("nats: %s", nc.Status())
			}
			return nil
		},
	}, nil
}

// leases is ownership by leases in a JetStream KV bucket.
type leases struct{ *ownership.Coordinator }

func (l leases) Start() error {
	if l.Coordinator == nil {
		return errors.New("no coordinator")
	}
	l.Coordinator.Start()
	return nil
}
