package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/evflow/evflow/infra/config"
	evmongo "github.com/evflow/evflow/infra/mongo"
	"github.com/evflow/evflow/infra/testenv"
)

// Recovery drill 5: a replay killed (kill -9) halfway resumes when run
// again, applies only what it had not, swaps its generation in, and every
// projection ends identical to the workload's fold; the old generation is
// removed.
func TestReplayKilledHalfwayResumesAndEndsIdentical(t *testing.T) {
	c := newCluster(t)
	c.start("r1")
	c.owners(10 * time.Second)
	w := newWorkload(50, 10000, 250, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c.run(ctx, w, func() {})
	c.caughtUp(2 * time.Minute)
	c.verify(w)

	args := []string{"replay", "--projection", "daily_stats", "--nats-url", c.nats.URL(),
		"--mongo-uri", c.mongo.URI(), "--redis-addr", c.redis.Addr,
		"--max-batch", "20", "--progress-every", "50ms", "--grace", "1500ms"}
	first := exec.Command(c.bin, args...)
	logs := &logBuffer{}
	stderr, _ := first.StderrPipe()
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	go logs.copy(stderr)
	progress := regexp.MustCompile(`replay daily_stats: (\d+)/(\d+) events`)
	var done, total int
	testenv.WaitEvery(t, time.Minute, 10*time.Millisecond, func() error {
		for _, m := range progress.FindAllStringSubmatch(logs.String(), -1) {
			done, _ = strconv.Atoi(m[1])
			total, _ = strconv.Atoi(m[2])
		}
		if done == 0 || done*4 < total {
			return fmt.Errorf("not a quarter replayed yet:\n%s", logs.String())
		}
		return nil
	})
	_ = first.Process.Kill()
	_ = first.Wait()
	if done >= total {
		t.Fatalf("replay finished (%d/%d) before it could be killed halfway", done, total)
	}

	out := runCLI(t, c.bin, append(args, "--dry-run")...)
	m := regexp.MustCompile(`daily_stats: would resume generation (_g[0-9a-z]+) from beginning`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dry run after the kill does not resume:\n%s", out)
	}
	gen := m[1]
	out = runCLI(t, c.bin, args...)
	m = regexp.MustCompile(`daily_stats: (\d+) events in .*; generation "(_g[0-9a-z]+)" live, "" removed`).FindStringSubmatch(out)
	if m == nil || m[2] != gen {
		t.Fatalf("second run did not swap in %s:\n%s", gen, out)
	}
	if again, _ := strconv.Atoi(m[1]); again >= total {
		t.Errorf("the resumed replay applied %d events, the whole %d again", again, total)
	}
	t.Logf("killed at %d/%d events; the resumed run applied %s more", done, total, m[1])

	testenv.WaitFor(t, 10*time.Second, func() error {
		st, err := c.status(c.live()[0])
		if err != nil {
			return err
		}
		for _, p := range st.Projections {
			if p.Name == "daily_stats" && p.Generation != gen {
				return fmt.Errorf("replica applies daily_stats generation %q, want %q", p.Generation, gen)
			}
		}
		return nil
	})
	c.verify(w)
	client, db, err := evmongo.Connect(ctx, c.mongo.URI(), config.DefaultMongoDB)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == evmongo.DailyStatsCollection {
			t.Errorf("the old generation's %s collection is still there: %v", n, names)
		}
	}
}

// runCLI runs the evflow binary to completion and returns its output,
// failing the test if it fails.
func runCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("evflow %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}
