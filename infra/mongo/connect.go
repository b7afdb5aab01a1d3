package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Defaults of [Connect]. The URI's connectTimeoutMS and
// serverSelectionTimeoutMS override them.
const (
	// DefaultConnectTimeout bounds dialling one connection.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultServerSelectionTimeout bounds waiting for a suitable server,
	// for example a primary during an election.
	DefaultServerSelectionTimeout = 15 * time.Second
	// DefaultOperationTimeout bounds every operation whose context has no
	// earlier deadline (the URI's timeoutMS overrides it), so a store that
	// stops answering turns into errors, not a silent stall.
	DefaultOperationTimeout = 30 * time.Second
)

// Connect connects to the deployment at uri, checks that its primary
// answers a ping within ctx, and returns the client and database db. The
// client writes with w:majority (durable across a failover; FerretDB, which
// has no replicas, accepts it) unless the URI says otherwise. extra options
// are applied last, for example options.Client().SetMonitor(c.Monitor())
// with a [CommandCounter]; each field set in them replaces the default.
// The caller disconnects the client. Errors never show the URI's password
// (see [RedactURI]); credentials and TLS come in the URI
// (mongodb://user:pass@host/?tls=true&tlsCAFile=ca.pem), which the driver
// reads.
func Connect(ctx context.Context, uri, db string, extra ...*options.ClientOptions) (*mongo.Client, *mongo.Database, error) {
	if db == "" {
		return nil, nil, errors.New("mongo: connect: empty database name")
	}
	secrets, err := uriSecrets(uri)
	if err != nil {
		return nil, nil, fmt.Errorf("mongo: connect: %w", err)
	}
	client, err := connect(ctx, uri, extra)
	if err != nil {
		return nil, nil, redactError(err, secrets)
	}
	return client, client.Database(db), nil
}

// connect is [Connect]; its errors may show the URI's secrets.
func connect(ctx context.Context, uri string, extra []*options.ClientOptions) (*mongo.Client, error) {
	base := options.Client().
		SetConnectTimeout(DefaultConnectTimeout).
		SetServerSelectionTimeout(DefaultServerSelectionTimeout).
		SetTimeout(DefaultOperationTimeout).
		SetWriteConcern(writeconcern.Majority()).
		ApplyURI(uri)
	client, err := mongo.Connect(append([]*options.ClientOptions{base}, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultConnectTimeout)
		defer cancel()
		_ = client.Disconnect(dctx)
		return nil, fmt.Errorf("mongo: connect: ping: %w", err)
	}
	return client, nil
}
