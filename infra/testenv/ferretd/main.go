// Command ferretd runs evflow's embedded FerretDB (package ferret) as a
// process of its own, for tests: built without the race detector, so that
// tests run with -race instrument evflow and not FerretDB's SQLite, and
// out of the test process, as a real MongoDB would be.
//
// It prints the server's MongoDB URI on its first line of output once it
// listens, and runs until SIGTERM, SIGINT or its standard input closes.
//
//	ferretd -dir DIR [-tls-cert FILE -tls-key FILE]
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
	cert := flag.String("tls-cert", "", "certificate (PEM): listen with TLS alone")
	key := flag.String("tls-key", "", "private key (PEM) of -tls-cert")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretd: -dir is required")
		os.Exit(2)
	}
	if (*cert == "") != (*key == "") {
		fmt.Fprintln(os.Stderr, "ferretd: -tls-cert and -tls-key go together")
		os.Exit(2)
	}
	var opts []ferret.Option
	if *cert != "" {
		opts = append(opts, ferret.WithTLS(*cert, *key, ""))
	}
	if err := run(*dir, opts); err != nil {
		fmt.Fprintln(os.Stderr, "ferretd:", err)
		os.Exit(1)
	}
}

func run(dir string, opts []ferret.Option) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s, err := ferret.Start(dir, slog.New(slog.NewTextHandler(os.Stderr, nil)), opts...)
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
