// Package config holds the configuration of `evflow serve`: every setting
// is a flag and an environment variable (EVFLOW_ and the flag's name in
// capitals, dashes as underscores); a flag given on the command line wins.
// Leaving NATS, MongoDB or Redis unset runs that part embedded.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/evflow/evflow/events"
	"github.com/evflow/evflow/infra/auth"
	"github.com/evflow/evflow/infra/ownership"
	"github.com/evflow/evflow/infra/redis"
)

// Defaults.
const (
	DefaultDataDir  = "./evflow-data"
	DefaultHTTPAddr = "127.0.0.1:8080"
	DefaultNATSPort = 4222
	DefaultMongoDB  = "evflow"
	DefaultMaxBatch = 256
	// DefaultLinger is how long a projection's batch waits to fill (see
	// projector.Config.Linger).
	DefaultLinger = time.Millisecond
	// DefaultMaxBody and DefaultMaxLaunches are httpapi's defaults.
	DefaultMaxBody     = 1 << 20
	DefaultMaxLaunches = 1000
	BusJetStream       = "jetstream"
	BusKafka           = "kafka"
)

// Config configures a replica.
type Config struct {
	// DataDir holds the embedded parts' data (nats/, mongo/).
	DataDir string
	// HTTPAddr is where the API listens.
	HTTPAddr string
	// Bus is the event log: BusJetStream (default) or BusKafka.
	Bus string
	// KafkaBrokers (comma-separated host:port), KafkaTopic and KafkaGroup
	// locate the event topic and the replicas' consumer group on Kafka;
	// KafkaSessionTimeout is how long a silent replica keeps its
	// partitions there (the broker's group.min.session.timeout.ms bounds it).
	KafkaBrokers        string
	KafkaTopic          string
	KafkaGroup          string
	KafkaSessionTimeout time.Duration
	// NATSURL is a comma-separated list of NATS URLs; empty runs an
	// embedded nats-server on NATSPort.
	NATSURL  string
	NATSHost string
	NATSPort int
	// MongoURI is a MongoDB connection string; empty runs an embedded
	// FerretDB (SQLite) in DataDir.
	MongoURI string
	MongoDB  string
	// RedisAddr is a Redis host:port; empty (and no RedisSentinels) runs
	// an embedded in-memory Redis (miniredis), whose projections are
	// rebuilt from the stream at start.
	RedisAddr string
	// RedisSentinels (comma-separated host:port) and RedisMasterSet name
	// a Redis primary watched by Sentinel, instead of RedisAddr: evflow
	// follows its failovers.
	RedisSentinels string
	RedisMasterSet string
	// RedisDB is the Redis logical database evflow uses.
	RedisDB int
	// Partitions of the event stream, fixed for its life.
	Partitions int
	// MaxBatch bounds the events a projection applies at once; Linger is
	// how long a batch that is not full waits for more (0: not at all).
	MaxBatch int
	Linger   time.Duration
	// MaxAttempts is how often an event failing for good is tried on its
	// own before it is parked as a dead letter; RetryBackoff and
	// RetryMaxBackoff bound the pause between attempts (doubling).
	MaxAttempts                   int
	RetryBackoff, RetryMaxBackoff time.Duration
	// MongoMaxBulk caps MongoDB bulk writes; 0 picks 16 for FerretDB and 500 otherwise.
	MongoMaxBulk int
	// Dedup is the window in which a republished event id is dropped.
	Dedup time.Duration
	// Replica is this replica's unique id (default hostname-pid).
	Replica string
	// LeaseTTL is how long a silent replica keeps its partitions.
	LeaseTTL time.Duration
	// StreamReplicas is the replication of the stream and lease bucket:
	// 1 on a single node, 3 in a cluster (default: 3 when NATSRoutes is set).
	StreamReplicas int
	// NATSServerName, NATSClusterName, NATSClusterPort and NATSRoutes make
	// the embedded nats-server a node of a cluster.
	NATSServerName  string
	NATSClusterName string
	NATSClusterPort int
	NATSRoutes      string
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel  string
	LogFormat string
	// API holds the HTTP API's authentication and limits.
	API
	// OTel configures tracing.
	OTel OTel
	// Security holds credentials and TLS of the NATS and Redis connections.
	Security

	// envErrs records environment variables that did not parse.
	envErrs []error
}

// Default returns the zero-setup configuration.
func Default() Config {
	return Config{
		DataDir: DefaultDataDir, HTTPAddr: DefaultHTTPAddr, Bus: BusJetStream,
		KafkaTopic: "evflow", KafkaGroup: "evflow", KafkaSessionTimeout: 6 * time.Second, NATSHost: "127.0.0.1", NATSPort: DefaultNATSPort,
		MongoDB: DefaultMongoDB, Partitions: events.DefaultPartitions, MaxBatch: DefaultMaxBatch, Linger: DefaultLinger,
		Dedup: 2 * time.Minute, LogLevel: "info", LogFormat: "text",
		LeaseTTL: 3 * time.Second, NATSClusterName: "evflow", NATSClusterPort: 6222,
		MaxAttempts: 5, RetryBackoff: 50 * time.Millisecond, RetryMaxBackoff: 5 * time.Second,
		API:  API{MaxBody: DefaultMaxBody, MaxLaunches: DefaultMaxLaunches, AdminOrg: auth.DefaultAdminOrg},
		OTel: DefaultOTel(),
	}
}

// Flags registers every setting on fs, with defaults taken from c and then
// from the environment.
func (c *Config) Flags(fs *flag.FlagSet) {
	str, num := c.envVars(fs)
	str(&c.DataDir, "data-dir", "directory of the embedded parts' data")
	str(&c.HTTPAddr, "http-addr", "address the HTTP API listens on")
	str(&c.Bus, "bus", "event log: jetstream (NATS, embedded unless --nats-url) or kafka (--kafka-brokers)")
	str(&c.KafkaBrokers, "kafka-brokers", "Kafka brokers' host:port, comma-separated (with --bus kafka)")
	str(&c.KafkaTopic, "kafka-topic", "Kafka topic of the events (with --bus kafka)")
	str(&c.KafkaGroup, "kafka-group", "Kafka consumer group of the replicas (with --bus kafka)")
	fs.DurationVar(&c.KafkaSessionTimeout, "kafka-session-timeout", c.envDuration("kafka-session-timeout", c.KafkaSessionTimeout), "how long a silent replica keeps its Kafka partitions; at least the broker's group.min.session.timeout.ms (env "+EnvName("kafka-session-timeout")+")")
	URLVar(fs, &c.NATSURL, "nats-url", "NATS server `URLs`, comma-separated; empty runs an embedded nats-server")
	str(&c.NATSHost, "nats-host", "interface the embedded nats-server listens on, for clients and routes (0.0.0.0 for other hosts)")
	num(&c.NATSPort, "nats-port", "client port of the embedded nats-server (-1 picks a free one)")
	URLVar(fs, &c.MongoURI, "mongo-uri", "MongoDB connection `URI` (credentials and TLS in it: mongodb://user:pass@host/?tls=true&tlsCAFile=ca.pem); empty runs an embedded FerretDB")
	str(&c.MongoDB, "mongo-db", "MongoDB database name")
	str(&c.RedisAddr, "redis-addr", "Redis host:port; empty (and no --redis-sentinels) runs an embedded in-memory Redis")
	str(&c.RedisSentinels, "redis-sentinels", "Redis Sentinels' host:port, comma-separated, watching --redis-master-set (instead of --redis-addr)")
	str(&c.RedisMasterSet, "redis-master-set", "name under which the Sentinels watch the Redis primary")
	num(&c.RedisDB, "redis-db", "Redis logical database (SELECT) evflow uses")
	num(&c.Partitions, "partitions", "partitions of the event stream (fixed once the stream exists)")
	num(&c.MaxBatch, "max-batch", "most events a projection applies in one batch")
	fs.DurationVar(&c.Linger, "linger", c.envDuration("linger", c.Linger), "how long a projection's batch that is not full waits for more events; 0 applies what has arrived at once (env "+EnvName("linger")+")")
	num(&c.MaxAttempts, "max-attempts", "attempts of an event failing for good before it is parked as a dead letter")
	fs.DurationVar(&c.RetryBackoff, "retry-backoff", c.envDuration("retry-backoff", c.RetryBackoff), "first pause before retrying a failed apply; it doubles (env "+EnvName("retry-backoff")+")")
	fs.DurationVar(&c.RetryMaxBackoff, "retry-max-backoff", c.envDuration("retry-max-backoff", c.RetryMaxBackoff), "longest pause between retries of a failed apply (env "+EnvName("retry-max-backoff")+")")
	num(&c.MongoMaxBulk, "mongo-max-bulk", "most operations in one MongoDB bulk write (0: 16 on FerretDB, detected, 500 otherwise)")
	fs.DurationVar(&c.Dedup, "dedup-window", c.envDuration("dedup-window", c.Dedup), "window in which a republished event id is dropped (env "+EnvName("dedup-window")+")")
	str(&c.Replica, "replica-id", "unique id of this replica (default hostname-pid)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", c.envDuration("lease-ttl", c.LeaseTTL), "how long a silent replica keeps its partitions before others take them over (env "+EnvName("lease-ttl")+")")
	num(&c.StreamReplicas, "stream-replicas", "replicas of the JetStream stream or the Kafka topic: 1 on one node, 3 in a cluster (0: 3 when --nats-routes is set, else 1)")
	str(&c.NATSServerName, "nats-server-name", "name of the embedded nats-server, unique in its cluster (default: the replica id)")
	str(&c.NATSClusterName, "nats-cluster-name", "cluster the embedded nats-server joins when --nats-routes is set")
	num(&c.NATSClusterPort, "nats-cluster-port", "route port of the embedded nats-server in a cluster")
	str(&c.NATSRoutes, "nats-routes", "route URLs of the other cluster nodes, comma-separated (nats://host:6222,…)")
	str(&c.LogLevel, "log-level", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "text or json")
	c.apiFlags(fs)
	c.OTel.flags(fs, c)
	c.serverSecurityFlags(fs)
	c.SecurityFlags(fs)
}

// Validate names the flag of every invalid setting.
func (c Config) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" && ((c.Bus != BusKafka && c.NATSURL == "") || c.MongoURI == "") {
		bad("data-dir", "is required when NATS or MongoDB run embedded")
	}
	switch c.Bus {
	case BusJetStream:
		if c.KafkaBrokers != "" {
			bad("kafka-brokers", "needs --bus kafka")
		}
	case BusKafka:
		if c.KafkaBrokers == "" {
			bad("kafka-brokers", "is required with --bus kafka")
		}
		for _, a := range strings.Split(c.KafkaBrokers, ",") {
			if _, _, err := net.SplitHostPort(strings.TrimSpace(a)); c.KafkaBrokers != "" && err != nil {
				bad("kafka-brokers", "%q is not host:port", a)
			}
		}
		if c.NATSURL != "" || c.NATSRoutes != "" {
			bad("bus", "kafka runs without NATS: drop --nats-url and --nats-routes")
		}
		if c.KafkaTopic == "" {
			bad("kafka-topic", "is required")
		}
		if c.KafkaGroup == "" {
			bad("kafka-group", "is required")
		}
		if c.KafkaSessionTimeout < 500*time.Millisecond {
			bad("kafka-session-timeout", "%s is shorter than 500ms", c.KafkaSessionTimeout)
		}
	default:
		bad("bus", "%q is not jetstream or kafka", c.Bus)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http-addr", "%q is not host:port", c.HTTPAddr)
	}
	if c.NATSURL == "" && (c.NATSPort < -1 || c.NATSPort > 65535) {
		bad("nats-port", "%d is not a port (-1 picks a free one)", c.NATSPort)
	}
	if c.RedisAddr != "" {
		if _, _, err := net.SplitHostPort(c.RedisAddr); err != nil {
			bad("redis-addr", "%q is not host:port", c.RedisAddr)
		}
	}
	if c.RedisSentinels != "" {
		for _, a := range strings.Split(c.RedisSentinels, ",") {
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad("redis-sentinels", "%q is not host:port", a)
			}
		}
		if c.RedisAddr != "" {
			bad("redis-sentinels", "excludes --redis-addr: give one or the other")
		}
		if c.RedisMasterSet == "" {
			bad("redis-master-set", "is required with --redis-sentinels")
		}
	} else if c.RedisMasterSet != "" {
		bad("redis-master-set", "needs --redis-sentinels")
	}
	if c.RedisDB < 0 || c.RedisDB > 15 {
		bad("redis-db", "%d is out of range 0-15", c.RedisDB)
	}
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		bad("mongo-uri", "must start with mongodb:// or mongodb+srv://")
	}
	if c.MongoDB == "" {
		bad("mongo-db", "is required")
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		bad("partitions", "%d is out of range 1-1024", c.Partitions)
	}
	if c.MaxBatch < 1 || c.MaxBatch > 10000 {
		bad("max-batch", "%d is out of range 1-10000", c.MaxBatch)
	}
	if c.Linger < 0 || c.Linger > time.Second {
		bad("linger", "%s is out of range 0-1s", c.Linger)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 1000 {
		bad("max-attempts", "%d is out of range 1-1000", c.MaxAttempts)
	}
	if c.RetryBackoff <= 0 {
		bad("retry-backoff", "%s must be positive", c.RetryBackoff)
	}
	if c.RetryMaxBackoff < c.RetryBackoff {
		bad("retry-max-backoff", "%s is shorter than --retry-backoff %s", c.RetryMaxBackoff, c.RetryBackoff)
	}
	if c.MongoMaxBulk < 0 {
		bad("mongo-max-bulk", "%d must not be negative", c.MongoMaxBulk)
	}
	if c.Dedup < time.Second {
		bad("dedup-window", "%s is shorter than 1s", c.Dedup)
	}
	if c.Replica != "" && !ownership.ValidReplica(c.Replica) {
		bad("replica-id", "%q must be 1-64 characters of [A-Za-z0-9_-]", c.Replica)
	}
	if c.LeaseTTL < 500*time.Millisecond {
		bad("lease-ttl", "%s is shorter than 500ms", c.LeaseTTL)
	}
	if c.StreamReplicas < 0 || c.StreamReplicas > 5 {
		bad("stream-replicas", "%d is out of range 0-5", c.StreamReplicas)
	}
	if c.NATSRoutes != "" && c.NATSURL != "" {
		bad("nats-routes", "clusters the embedded nats-server; it cannot go with --nats-url")
	}
	if c.NATSRoutes != "" && (c.NATSClusterPort < 1 || c.NATSClusterPort > 65535) {
		bad("nats-cluster-port", "%d is not a port", c.NATSClusterPort)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "%q is not text or json", c.LogFormat)
	}
	errs = append(errs, c.validateAPI()...)
	errs = append(errs, c.OTel.validate()...)
	c.validateSecurity(bad)
	return errors.Join(errs...)
}

// ReplicaID is the replica's id: Replica, or hostname-pid when unset.
func (c Config) ReplicaID() string {
	if c.Replica != "" {
		return c.Replica
	}
	return ownership.DefaultReplica()
}

// Replicas is the stream replication to use.
func (c Config) Replicas() int {
	switch {
	case c.StreamReplicas > 0:
		return c.StreamReplicas
	case c.NATSRoutes != "":
		return 3
	default:
		return 1
	}
}

// envVars returns the functions that register a string and a whole-number
// flag on fs, each defaulting to its environment variable, then to the
// value it points at.
func (c *Config) envVars(fs *flag.FlagSet) (str func(p *string, name, usage string), num func(p *int, name, usage string)) {
	str = func(p *string, name, usage string) {
		fs.StringVar(p, name, env(name, *p), usage+" (env "+EnvName(name)+")")
	}
	num = func(p *int, name, usage string) {
		fs.IntVar(p, name, c.envInt(name, *p), usage+" (env "+EnvName(name)+")")
	}
	return str, num
}

// EnvName is the environment variable of a flag.
func EnvName(flag string) string {
	return "EVFLOW_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func env(flag, def string) string {
	if v, ok := os.LookupEnv(EnvName(flag)); ok {
		return v
	}
	return def
}

func (c *Config) envInt(flag string, def int) int {
	return envParse(c, flag, def, strconv.Atoi, "a whole number")
}

func (c *Config) envBool(flag string, def bool) bool {
	return envParse(c, flag, def, strconv.ParseBool, "true or false")
}

func (c *Config) envDuration(flag string, def time.Duration) time.Duration {
	return envParse(c, flag, def, time.ParseDuration, "a duration such as 2m")
}

// envParse reads flag's environment variable with parse; a value that does
// not parse is recorded for Validate, naming the variable and the flag.
func envParse[T any](c *Config, flag string, def T, parse func(string) (T, error), want string) T {
	s, ok := os.LookupEnv(EnvName(flag))
	if !ok {
		return def
	}
	v, err := parse(s)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s (--%s): %q is not %s", EnvName(flag), flag, s, want))
		return def
	}
	return v
}

// Redis returns the client configuration of the external Redis that c
// names, and false when c runs the embedded one.
func (c Config) Redis() (redis.ClientConfig, bool) {
	rc := redis.ClientConfig{
		DB: c.RedisDB, Username: c.RedisUsername, Password: c.RedisPassword.Reveal(),
		SentinelPassword: c.RedisSentinelPassword.Reveal(), TLS: c.RedisTLS || c.RedisCA != "", CAFile: c.RedisCA,
	}
	switch {
	case c.RedisSentinels != "":
		rc.Sentinels, rc.MasterSet = strings.Split(c.RedisSentinels, ","), c.RedisMasterSet
		return rc, true
	case c.RedisAddr != "":
		rc.Addr = c.RedisAddr
		return rc, true
	}
	return redis.ClientConfig{}, false
}
