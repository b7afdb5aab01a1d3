package mongo_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/testenv"
)

func TestRedactURI(t *testing.T) {
	for _, tc := range []struct{ uri, secret, want string }{
		{"mongodb://app:s3cr%2Ft@m1:27017,m2:27017/?replicaSet=rs0", "s3cr", "mongodb://app:REDACTED@m1:27017,m2:27017/?replicaSet=rs0"},
		{"mongodb+srv://app:hunter2@cluster.example.com/evflow", "hunter2", "mongodb+srv://app:REDACTED@cluster.example.com/evflow"},
		{"mongodb://m1/?tls=true&tlsCertificateKeyFile=c.pem&tlsCertificateKeyFilePassword=keypw", "keypw", ""},
		{"mongodb://app:pa@ss@m1/", "pa@ss", ""},
		{"mongodb://m1:27017/?tls=true", "", "mongodb://m1:27017/?tls=true"},
	} {
		got := evmongo.RedactURI(tc.uri)
		if tc.secret != "" && strings.Contains(got, tc.secret) {
			t.Errorf("RedactURI(%q) = %q: shows %q", tc.uri, got, tc.secret)
		}
		if tc.want != "" && got != tc.want {
			t.Errorf("RedactURI(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}

func TestConnectErrorsNeverShowThePassword(t *testing.T) {
	for _, tc := range []struct{ uri, secret string }{
		{"mongodb://app:ab%zzSECRET@127.0.0.1:1/", "SECRET"},
		{"mongodb://app:ab%zzSECRET@127.0.0.1:1/", "%zz"},
		{"mongodb://app:SEC@RET:x@127.0.0.1:1/", "RET"},
		{"mongodb://app:SECRET@127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200", "SECRET"},
		{"mongodb://app:SECRET@127.0.0.1:1/?connectTimeoutMS=SECRET", "SECRET"},
		{"mongodb://127.0.0.1:1/?tls=true&tlsCertificateKeyFile=/nonexistent&tlsCertificateKeyFilePassword=KEYPW", "KEYPW"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := evmongo.Connect(ctx, tc.uri, "evflow")
		cancel()
		if err == nil {
			t.Errorf("Connect(%q) succeeded", tc.uri)
			continue
		}
		if strings.Contains(err.Error(), tc.secret) {
			t.Errorf("Connect(%q): error %q shows %q", tc.uri, err, tc.secret)
		}
	}
}

// FerretDB serves TLS; the driver takes tls=true and tlsCAFile from the URI.
func TestConnectWithTLSFromTheURI(t *testing.T) {
	ca := testenv.NewCA(t)
	m := testenv.StartMongoWith(t, testenv.MongoOptions{TLS: ca})
	if !strings.Contains(m.URI(), "tls=true") || !strings.Contains(m.URI(), "tlsCAFile=") {
		t.Fatalf("URI %q: want tls=true and tlsCAFile", m.URI())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, db, err := evmongo.Connect(ctx, m.URI(), "evflow")
	if err != nil {
		t.Fatalf("Connect over TLS: %v", err)
	}
	defer client.Disconnect(ctx)
	if _, err := db.Collection("c").InsertOne(ctx, bson.M{"_id": "a"}); err != nil {
		t.Fatalf("insert over TLS: %v", err)
	}

	noCA, _, _ := strings.Cut(m.URI(), "&tlsCAFile=")
	_, _, err = evmongo.Connect(ctx, noCA+"&serverSelectionTimeoutMS=1000", "evflow")
	if !errors.As(err, new(x509.UnknownAuthorityError)) && (err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority")) {
		t.Errorf("TLS without the CA: err = %v, want an unknown authority", err)
	}
	plain := strings.Replace(noCA, "tls=true", "tls=false", 1)
	if _, _, err := evmongo.Connect(ctx, plain+"&serverSelectionTimeoutMS=1000", "evflow"); err == nil {
		t.Errorf("plain TCP to FerretDB's TLS listener connected")
	}
}
