// Command ferretd runs evflow's embedded FerretDB (package ferret) as a
// process of its own, for tests: built without the race detector, so that
// tests run with -race instrument evflow and not FerretDB's SQLite, and
// out of the test process, as a real MongoDB would be.
//
// It prints the server's MongoDB URI on its first line of output once it
// listens, and runs until SIGTERM, SIGINT or its standard input closes.
//
//	ferretd -dir DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/evflow/evflow/infra/ferret"
)

func main() {
	dir := flag.String("dir", "", "directory of the SQLite files (required)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretd: -dir is required")
		os.Exit(2)
	}
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "ferretd:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s, err := ferret.Start(dir, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println(s.URI())
	// The parent holds our standard input: when it dies, so do we.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	<-ctx.Done()
	return nil
}
