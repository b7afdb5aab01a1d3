// Command evflow runs and operates the evflow platform.
//
//	evflow serve     run a replica (embedded NATS, FerretDB and Redis by default)
//	evflow status    print a replica's projection progress
//	evflow publish   send commands or launches
//	evflow dlq       list, show, redrive and purge dead letters
//	evflow replay    rebuild projections from the stream, while replicas run
//	evflow token     make API tokens
//	evflow version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/evflow/evflow/infra/config"
	"github.com/evflow/evflow/infra/platform"
)

const usage = `evflow: event-driven backends on NATS JetStream, MongoDB and Redis.

Usage:
  evflow serve  [flags]   run a replica; with no flags everything runs embedded
  evflow status [flags]   print a replica's projection progress
  evflow publish [flags]  send a command or launches to a replica
  evflow dlq list|show|redrive|purge [flags]
                          dead letters: events a projection could not apply
  evflow replay --projection NAME|--all [--from beginning|SEQ|TIME] [--dry-run] [flags]
                          rebuild projections from the stream, while replicas run
  evflow token new|jwt [flags]
                          make an API token (keys-file entry or JWT)

Run "evflow <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "status":
		err = status(ctx, args[1:], stdout, stderr)
	case "publish":
		err = publish(ctx, args[1:], stdout, stderr)
	case "dlq":
		err = dlq(ctx, args[1:], stdout, stderr)
	case "replay":
		err = replayCmd(ctx, args[1:], stdout, stderr)
	case "token":
		err = token(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "evflow: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)), errors.As(err, new(platform.UsageError)):
		fmt.Fprintf(stderr, "evflow %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "evflow %s: %v\n", args[0], err)
		return 1
	}
}

// usageError is a bad flag or argument (exit code 2).
type usageError struct{ error }

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := config.Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	logger := newLogger(stderr, cfg)
	app, _, err := platform.New(cfg, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := app.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	<-ctx.Done()
	logger.Info("stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	logger.Info("stopped")
	return nil
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}
