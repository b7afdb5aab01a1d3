package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBadArgumentsNameTheFlagAndExit2(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "Usage"},
		{[]string{"explode"}, `unknown command "explode"`},
		{[]string{"serve", "--partitions", "0"}, "--partitions"},
		{[]string{"serve", "--no-such-flag"}, "no-such-flag"},
		{[]string{"publish"}, "command or launches"},
		{[]string{"publish", "launches", "--batch", "5000"}, "--batch"},
		{[]string{"publish", "launches", "--count", "0"}, "--count"},
		{[]string{"publish", "command", "{not json"}, "not valid JSON"},
		{[]string{"status", "--addr", "::bad"}, "--addr"},
		{[]string{"serve", "--max-attempts", "0"}, "--max-attempts"},
		{[]string{"serve", "--retry-backoff", "1s", "--retry-max-backoff", "10ms"}, "--retry-max-backoff"},
		{[]string{"dlq"}, "list|show|redrive|purge"},
		{[]string{"dlq", "explode"}, `unknown subcommand "explode"`},
		{[]string{"dlq", "show"}, "--seq"},
		{[]string{"dlq", "purge"}, "--seq, --projection or --all"},
		{[]string{"dlq", "list", "--addr", "::bad"}, "--addr"},
		{[]string{"replay"}, "--projection (or --all)"},
		{[]string{"replay", "--all", "--projection", "apps"}, "--all and --projection"},
		{[]string{"replay", "--projection", "apps", "--from", "0"}, "--from"},
		{[]string{"replay", "--projection", "apps", "--from", "yesterday"}, "--from"},
		{[]string{"replay", "--projection", "apps", "--grace", "10ms"}, "--grace"},
		{[]string{"replay", "--projection", "nope"}, `--projection "nope"`},
		{[]string{"replay", "--projection", "apps"}, "--nats-url is required"},
		{[]string{"replay", "--projection", "redis", "--from", "42"}, "--from 42"},
		{[]string{"replay", "--projection", "apps", "--mongo-max-bulk", "-1"}, "--mongo-max-bulk"},
		{[]string{"serve", "--bus", "rabbit"}, "--bus"},
		{[]string{"serve", "--bus", "kafka"}, "--kafka-brokers: is required"},
		{[]string{"serve", "--bus", "kafka", "--kafka-brokers", "nohost"}, "--kafka-brokers"},
		{[]string{"serve", "--bus", "kafka", "--kafka-brokers", "k:9092", "--nats-url", "nats://x:4222"}, "--bus"},
		{[]string{"serve", "--kafka-brokers", "k:9092"}, "needs --bus kafka"},
		{[]string{"replay", "--projection", "apps", "--bus", "rabbit"}, "--bus"},
		{[]string{"replay", "--projection", "apps", "--bus", "kafka"}, "--kafka-brokers is required"},
		{[]string{"replay", "--projection", "apps", "--bus", "kafka", "--from", "42"}, "on Kafka replay from the beginning or from a time"},
		{[]string{"publish", "launches", "--bus", "rabbit"}, "--bus"},
		{[]string{"publish", "launches", "--bus", "kafka"}, "--kafka-brokers is required"},
		{[]string{"publish", "launches", "--bus", "kafka", "--kafka-brokers", "127.0.0.1:1"}, "--redis-addr"},
		{[]string{"publish", "launches", "--bus", "jetstream"}, "--nats-url is required"},
		{[]string{"serve", "--redis-db", "16"}, "--redis-db"},
		{[]string{"replay", "--projection", "apps", "--redis-db", "-2"}, "--redis-db"},
		{[]string{"replay", "--projection", "apps", "--linger", "2s"}, "--linger"},
		{[]string{"replay", "--projection", "apps", "--max-batch", "0"}, "--max-batch"},
		{[]string{"serve", "--linger", "-1ms"}, "--linger"},
		{[]string{"serve", "--auth-keys", "/no/such/keys.json"}, "--auth-keys"},
		{[]string{"serve", "--auth-jwt-secret-file", "/no/such/secret"}, "--auth-jwt-secret-file"},
		{[]string{"serve", "--rate-limit", "5"}, "--rate-limit: limits each token"},
		{[]string{"serve", "--rate-limit", "NaN"}, "--rate-limit: NaN is not"},
		{[]string{"serve", "--rate-limit", "-Inf"}, "--rate-limit: -Inf is not"},
		{[]string{"serve", "--max-body", "10"}, "--max-body"},
		{[]string{"serve", "--max-launches", "0"}, "--max-launches"},
		{[]string{"token"}, "new or jwt"},
		{[]string{"token", "new", "--roles", "root", "--name", "n", "--tenant", "t"}, "--roles"},
		{[]string{"token", "new", "--roles", "reader", "--tenant", "t"}, "name is required"},
		{[]string{"token", "new", "--roles", "reader", "--name", "n", "--tenant", "t", "--expires", "soon"}, "--expires"},
		{[]string{"token", "jwt", "--roles", "reader", "--name", "n", "--tenant", "t"}, "--secret-file is required"},
		{[]string{"status", "--token"}, "flag needs an argument"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errOut)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("stderr %q does not mention %q", errOut.String(), tc.want)
			}
		})
	}
}
