package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/evflow/evflow/handlers"
	"github.com/evflow/evflow/infra/client"
)

// The publisher batches launches into few requests, bounded in flight, and
// acknowledges each one only once the replica answered for its batch.
func TestPublisherBatchesAndAcknowledgesEachLaunch(t *testing.T) {
	base := startReplica(t)
	ct := &countingTransport{}
	c := newClient(t, base, client.WithHTTPClient(&http.Client{Transport: ct}))
	p := c.NewPublisher(client.WithPublishBatch(100), client.WithLinger(time.Hour), client.WithMaxInFlight(2))
	at := time.Now().UTC()
	var acks []*client.Ack
	for i := range 1000 {
		acks = append(acks, p.Publish(handlers.Launch{AppID: fmt.Sprintf("app%d", i%7), Version: "1", DeviceID: "d", Org: "o", At: at}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatalf("launch %d: %v", i, err)
		}
	}
	if n := ct.count("POST /v1/launches"); n != 10 {
		t.Fatalf("%d requests for 1000 launches in batches of 100, want 10", n)
	}
	if st := status(t, ctx, base); st.StreamMessages != 1000 {
		t.Fatalf("stream holds %d events, want the 1000 acknowledged", st.StreamMessages)
	}
	// A batch the server refuses fails every launch of it, and only those.
	bad := p.Publish(handlers.Launch{AppID: "app1", Version: "1", DeviceID: "d", Org: "o"}) // no time
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var apiErr *client.APIError
	if err := bad.Wait(ctx); !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("launch without a time: %v, want a 400", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(handlers.Launch{}).Wait(ctx); !errors.Is(err, client.ErrPublisherClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}
