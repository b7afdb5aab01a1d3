// Package ferret runs an embedded FerretDB (SQLite backend) that speaks the
// MongoDB wire protocol: the zero-setup stand-in for MongoDB. It has no
// transactions and slows down sharply on large bulk updates, so evflow caps
// its bulk size in this mode (see DESIGN.md).
package ferret

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// MaxPoolSize is the client connection pool that [Server.URI] asks for.
// FerretDB opens at most 100 SQLite connections per database; an update
// holds one per operation of its bulk until the bulk ends, and one more
// for its write, so concurrent bulk updates can deadlock it. Each client,
// and so each replica, sharing one FerretDB stays at 10 connections, and
// evflow serializes its writes on FerretDB with small bulks
// (mongo.FerretConfig).
const MaxPoolSize = 10

// Server is a running embedded FerretDB.
type Server struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// Option changes how [Start] runs the server.
type Option func(*ferretdb.ListenerConfig)

// WithTLS makes the server listen with TLS alone, with the certificate and
// key in certFile and keyFile (PEM); [Server.URI] then says tls=true.
// caFile, optional, makes it require client certificates signed by that CA.
// Clients verify the server with tlsCAFile=… in their URI.
func WithTLS(certFile, keyFile, caFile string) Option {
	return func(l *ferretdb.ListenerConfig) {
		l.TLS, l.TCP = l.TCP, ""
		l.TLSCertFile, l.TLSKeyFile, l.TLSCAFile = certFile, keyFile, caFile
	}
}

// Start starts FerretDB on a free loopback port, storing SQLite files in dir.
// FerretDB's own logs go to logger at error level only: it logs every
// unsupported command (such as the driver's endSessions) as a warning.
func Start(dir string, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ferret: data dir: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("ferret: data dir: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	quiet := slog.New(levelFilter{h: logger.Handler(), min: slog.LevelError})
	listener := ferretdb.ListenerConfig{TCP: "127.0.0.1:0"}
	for _, o := range opts {
		o(&listener)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: listener,
		Handler:  "sqlite",
		// WAL (FerretDB's default) with synchronous=normal: a commit is
		// durable across a crash of the process, and the last ones may be
		// lost with the machine's power, consistently with their
		// checkpoints, to be applied again from the stream.
		SQLiteURL: "file:" + abs + "/?_pragma=synchronous(normal)",
		Logger:    quiet,
	})
	if err != nil {
		return nil, fmt.Errorf("ferret: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = f.Run(ctx)
	}()
	// MongoDBURI blocks until the listener is bound.
	uriC := make(chan string, 1)
	go func() { uriC <- f.MongoDBURI() }()
	select {
	case s.uri = <-uriC:
	case <-time.After(10 * time.Second):
		cancel()
		return nil, fmt.Errorf("ferret: listener not ready after 10s")
	}
	return s, nil
}

// URI is the MongoDB connection string of the server, with a connection
// pool of [MaxPoolSize].
func (s *Server) URI() string {
	sep := "?"
	if strings.Contains(s.uri, "?") {
		sep = "&"
	}
	return s.uri + sep + "maxPoolSize=" + strconv.Itoa(MaxPoolSize)
}

// Close stops the server and waits for it to release its files. It is
// safe to call more than once.
func (s *Server) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// levelFilter drops records below min: FerretDB logs every connection at info.
type levelFilter struct {
	h   slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.h.Enabled(ctx, l)
}
func (f levelFilter) Handle(ctx context.Context, r slog.Record) error { return f.h.Handle(ctx, r) }
func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{h: f.h.WithAttrs(a), min: f.min}
}
func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{h: f.h.WithGroup(n), min: f.min}
}
