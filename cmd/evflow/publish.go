package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/platform"
)

const publishUsage = `Usage:
  evflow publish command [--addr URL] '{"type":"app.create","tenant":"acme","app_id":"weather","name":"Weather"}'
  evflow publish launches [--addr URL] [--count N] [--apps N] [--devices N] [--batch N] [--concurrency N] [--wait]
  evflow publish launches --bus jetstream --nats-url URL [...]
  evflow publish launches --bus kafka --kafka-brokers HOST:PORT,... --redis-addr HOST:PORT [...]

Launches go through a replica's HTTP API (--addr), or with --bus straight to
the replicas' event log, as their ingestion publishes them.
`

func publish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, publishUsage)
		return usageError{errors.New("name what to publish: command or launches")}
	}
	switch args[0] {
	case "command":
		return publishCommand(ctx, args[1:], stdout, stderr)
	case "launches":
		return publishLaunches(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, publishUsage)
		return usageError{fmt.Errorf("unknown kind %q: want command or launches", args[0])}
	}
}

func publishCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish command", flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := targetFlags(fs, "base URL of a replica's HTTP API")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("give the command as one JSON argument")}
	}
	var cmd handlers.Command
	dec := json.NewDecoder(strings.NewReader(fs.Arg(0)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cmd); err != nil {
		return usageError{fmt.Errorf("the command is not valid JSON: %w", err)}
	}
	c, err := to.client()
	if err != nil {
		return err
	}
	res, err := c.Send(ctx, cmd)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// load describes a synthetic launch load.
type load struct {
	to                                    *target
	count, apps, devices, batch, parallel int
	wait                                  bool
}

func publishLaunches(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish launches", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var l load
	l.to = targetFlags(fs, "base URL of a replica's HTTP API (--wait reads its status, which takes an admin token when it checks tokens)")
	fs.IntVar(&l.count, "count", 10000, "launches to send")
	fs.IntVar(&l.apps, "apps", 50, "distinct apps launched")
	fs.IntVar(&l.devices, "devices", 1000, "distinct devices")
	fs.IntVar(&l.batch, "batch", 500, "launches per request (at most 1000)")
	fs.IntVar(&l.parallel, "concurrency", 4, "requests in flight")
	fs.BoolVar(&l.wait, "wait", false, "wait until every projection applied the launches (read from --addr), and report the end-to-end rate")
	cfg := config.Default()
	cfg.Bus = ""
	busFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"count", l.count}, {"apps", l.apps}, {"devices", l.devices}, {"batch", l.batch}, {"concurrency", l.parallel}} {
		if f.v < 1 {
			return usageError{fmt.Errorf("--%s must be at least 1, got %d", f.name, f.v)}
		}
	}
	if l.batch > handlers.DefaultMaxLaunchBatch {
		return usageError{fmt.Errorf("--batch must be at most %d, got %d", handlers.DefaultMaxLaunchBatch, l.batch)}
	}
	var to launcher
	switch cfg.Bus {
	case "":
		c, err := l.to.client()
		if err != nil {
			return err
		}
		to = c
	case config.BusJetStream, config.BusKafka:
		in, closeBus, err := platform.Ingester(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeBus()
		to = ingester{in}
	default:
		return usageError{fmt.Errorf("--bus %q is not jetstream or kafka", cfg.Bus)}
	}
	start := time.Now()
	if err := l.send(ctx, to); err != nil {
		return err
	}
	sent := time.Since(start)
	fmt.Fprintf(stdout, "published %d launches in %s: %.0f launches/s acknowledged\n", l.count, sent.Round(time.Millisecond), float64(l.count)/sent.Seconds())
	if !l.wait {
		return nil
	}
	if err := waitProjected(ctx, l.to); err != nil {
		return err
	}
	total := time.Since(start)
	fmt.Fprintf(stdout, "projected into MongoDB and Redis in %s: %.0f launches/s end to end\n", total.Round(time.Millisecond), float64(l.count)/total.Seconds())
	return nil
}

// launcher publishes launches: a replica's API, or the bus directly.
type launcher interface {
	Launch(ctx context.Context, launches ...handlers.Launch) (int, error)
}

type ingester struct{ handlers.Ingester }

func (in ingester) Launch(ctx context.Context, launches ...handlers.Launch) (int, error) {
	return in.Ingest(ctx, launches)
}

func (l load) send(ctx context.Context, c launcher) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	now := time.Now().UTC()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range l.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(int64(l.batch))) - l.batch
				if from >= l.count || ctx.Err() != nil {
					return
				}
				batch := make([]handlers.Launch, 0, l.batch)
				for i := from; i < min(from+l.batch, l.count); i++ {
					batch = append(batch, handlers.Launch{
						ID: fmt.Sprintf("load-%s-%d", run, i), AppID: fmt.Sprintf("app-%d", i%l.apps), Version: "1.0.0",
						DeviceID: fmt.Sprintf("device-%d", i%l.devices), Org: "load", At: now,
					})
				}
				if _, err := c.Launch(ctx, batch...); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// waitProjected polls the replica's status until no projection lags.
func waitProjected(ctx context.Context, to *target) error {
	for {
		st, err := fetchStatus(ctx, to)
		if err != nil {
			return err
		}
		lagging := false
		for _, p := range st.Projections {
			lagging = lagging || p.Error != ""
			for _, lag := range p.Lag {
				lagging = lagging || lag > 0
			}
		}
		if !lagging {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
