package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The CLI's publish and replay reach a Kafka bus directly, as serve does.
func TestPublishAndReplayOnKafka(t *testing.T) {
	c := newKafkaCluster(t)
	p := c.start("k1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bus := append(append([]string{}, c.busFlags[:4]...), "--redis-addr", c.redis.Addr)
	var out, errOut bytes.Buffer
	args := append([]string{"publish", "launches", "--count", "3000", "--apps", "20", "--batch", "250"}, bus...)
	if code := run(ctx, args, &out, &errOut); code != 0 {
		t.Fatalf("publish launches on kafka: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "published 3000 launches") {
		t.Fatalf("publish said %q", out.String())
	}
	st := c.caughtUp(time.Minute)
	if st.StreamMessages != 3000 || st.Bus != "kafka" {
		t.Fatalf("the %s log holds %d events, want 3000 on kafka", st.Bus, st.StreamMessages)
	}
	out.Reset()
	errOut.Reset()
	args = append([]string{"replay", "--projection", "daily_stats", "--grace", "1s", "--mongo-uri", c.mongo.URI()}, bus...)
	if code := run(ctx, args, &out, &errOut); code != 0 {
		t.Fatalf("replay on kafka: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String()+errOut.String(), "3000 events") {
		t.Fatalf("replay did not report rebuilding the 3000 events: %s%s", out.String(), errOut.String())
	}
	var status struct {
		Projections []struct {
			Name       string `json:"name"`
			Generation string `json:"generation"`
		} `json:"projections"`
	}
	if _, err := get(p, "/v1/status", &status); err != nil {
		t.Fatal(err)
	}
	for _, pr := range status.Projections {
		if pr.Name == "daily_stats" && pr.Generation == "" {
			t.Fatalf("daily_stats still on the original generation after the replay")
		}
	}
}
