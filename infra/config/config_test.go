package config_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/evflow/evflow/infra/config"
)

func parse(t *testing.T, args ...string) (config.Config, error) {
	t.Helper()
	c := config.Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestDefaultIsValidAndEmbedded(t *testing.T) {
	c, err := parse(t)
	if err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if c.NATSURL != "" || c.MongoURI != "" || c.RedisAddr != "" {
		t.Fatalf("default config points at external servers: %+v", c)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"--partitions", "0"}, "--partitions"},
		{[]string{"--max-batch", "100000"}, "--max-batch"},
		{[]string{"--linger", "-1ms"}, "--linger"},
		{[]string{"--linger", "2s"}, "--linger"},
		{[]string{"--http-addr", "8080"}, "--http-addr"},
		{[]string{"--redis-addr", "redis"}, "--redis-addr"},
		{[]string{"--mongo-uri", "postgres://x"}, "--mongo-uri"},
		{[]string{"--nats-port", "70000"}, "--nats-port"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--dedup-window", "10ms"}, "--dedup-window"},
		{[]string{"--data-dir", ""}, "--data-dir"},
		{[]string{"--redis-sentinels", "s1", "--redis-master-set", "m"}, "--redis-sentinels"},
		{[]string{"--redis-sentinels", "s1:26379,s2:26379"}, "--redis-master-set"},
		{[]string{"--redis-sentinels", "s1:26379", "--redis-master-set", "m", "--redis-addr", "r:6379"}, "--redis-sentinels"},
		{[]string{"--redis-master-set", "m"}, "--redis-master-set"},
	}
	for _, tc := range cases {
		t.Run(tc.flag, func(t *testing.T) {
			_, err := parse(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("args %v: err = %v, want one naming %s", tc.args, err, tc.flag)
			}
		})
	}
}

func TestEnvironmentSetsDefaultsAndFlagsWin(t *testing.T) {
	t.Setenv("EVFLOW_REDIS_ADDR", "10.0.0.1:6379")
	t.Setenv("EVFLOW_PARTITIONS", "8")
	c, err := parse(t, "--partitions", "32")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if c.RedisAddr != "10.0.0.1:6379" || c.Partitions != 32 {
		t.Fatalf("redis %q partitions %d, want the env's address and the flag's 32", c.RedisAddr, c.Partitions)
	}
}

func TestUnparsableEnvironmentIsReported(t *testing.T) {
	t.Setenv("EVFLOW_PARTITIONS", "many")
	_, err := parse(t)
	if err == nil || !strings.Contains(err.Error(), "EVFLOW_PARTITIONS") || !strings.Contains(err.Error(), "--partitions") {
		t.Fatalf("err = %v, want one naming EVFLOW_PARTITIONS and --partitions", err)
	}
}

func TestRedisClientConfig(t *testing.T) {
	c, err := parse(t, "--redis-sentinels", "s1:26379,s2:26379", "--redis-master-set", "evflow")
	if err != nil {
		t.Fatal(err)
	}
	rc, external := c.Redis()
	if !external || rc.Addr != "" || rc.MasterSet != "evflow" || len(rc.Sentinels) != 2 || rc.Sentinels[1] != "s2:26379" {
		t.Fatalf("Redis() = %+v, %v; want the two sentinels and the master set", rc, external)
	}
	if rc, external := config.Default().Redis(); external {
		t.Fatalf("default Redis() = %+v, want the embedded one", rc)
	}
}
