package compose_test

// No Docker engine runs on the machines these tests run on, so the local stack
// is checked the way compose itself reads it: docker-compose.yml is loaded with
// the compose-spec loader (the one docker compose uses), once as `up` sees it
// and once with the kafka profile, and the loaded project is checked for what
// makes the stack come up healthy and highly available. Each replica's command
// and environment are also read by evflow's own flags (infra/config), as
// `serve` and the one-off commands read them in the container. The
// Dockerfile's build line is run as written, and its result checked to be a
// static binary.

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/evflow/evflow/infra/config"
)

const composeFile = "docker-compose.yml"

// repoRoot is the repository root: the parent of this package's directory,
// where go test runs.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatalf("repository root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// load reads docker-compose.yml with the given profiles enabled, with an empty
// environment (every ${VAR:-default} takes its default).
func load(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory("."),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("%s does not load (profiles %v): %v", composeFile, profiles, err)
	}
	return p
}

// stack is a loaded project with its services sorted into roles.
type stack struct {
	p       *types.Project
	evflow  []string // built from the repository's Dockerfile
	onNATS  []string // evflow replicas on JetStream, the default bus
	onKafka []string // evflow replicas on Kafka (--bus kafka or EVFLOW_BUS=kafka)
	nats    []string // nats image
	mongo   []string // mongod replica set members
	kafka   []string // apache/kafka image
	oneShot []string // depended on with service_completed_successfully
}

func newStack(t *testing.T, p *types.Project) *stack {
	t.Helper()
	s := &stack{p: p}
	for _, name := range sortedNames(p.Services) {
		svc := p.Services[name]
		switch {
		case svc.Build != nil:
			s.evflow = append(s.evflow, name)
			if s.bus(t, name) == config.BusKafka {
				s.onKafka = append(s.onKafka, name)
			} else {
				s.onNATS = append(s.onNATS, name)
			}
		case strings.HasPrefix(svc.Image, "nats:"):
			s.nats = append(s.nats, name)
		case strings.HasPrefix(svc.Image, "mongo:") && len(svc.Command) > 0 && svc.Command[0] == "mongod":
			s.mongo = append(s.mongo, name)
		case strings.HasPrefix(svc.Image, "apache/kafka"):
			s.kafka = append(s.kafka, name)
		}
		for dep, d := range svc.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully && !slices.Contains(s.oneShot, dep) {
				s.oneShot = append(s.oneShot, dep)
			}
		}
	}
	sort.Strings(s.oneShot)
	if len(s.onNATS) < 2 {
		t.Fatalf("want at least 2 evflow replicas on JetStream (services with a build section), found %v", s.onNATS)
	}
	if len(s.onKafka) == 1 {
		t.Fatalf("want at least 2 evflow replicas on Kafka, so that one takes over from the other, found %v", s.onKafka)
	}
	if len(s.nats) != 3 {
		t.Fatalf("want a 3-node NATS cluster (services with a nats: image), found %v", s.nats)
	}
	if len(s.mongo) != 3 {
		t.Fatalf("want a 3-member MongoDB replica set (mongo: image running mongod), found %v", s.mongo)
	}
	return s
}

func sortedNames(m types.Services) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// cmdFlags splits a command into its positional arguments and its flags, in
// the forms Go's flag package and nats-server/mongod take: -f, --f, --f=v and
// --f v (the next argument is the value unless it is a flag itself). A flag
// without a value is "true".
func cmdFlags(args []string) (pos []string, flags map[string]string) {
	flags = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(name, "="); ok {
			flags[k] = v
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			flags[name] = args[i+1]
			i++
			continue
		}
		flags[name] = "true"
	}
	return pos, flags
}

// evflowFlags are the flags of an evflow replica's `serve` command.
func (s *stack) evflowFlags(t *testing.T, name string) map[string]string {
	t.Helper()
	pos, flags := cmdFlags(s.p.Services[name].Command)
	if len(pos) == 0 || pos[0] != "serve" {
		t.Fatalf("%s: command %q does not run `serve`", name, []string(s.p.Services[name].Command))
	}
	return flags
}

// bus is the event log replica name runs on: its --bus, else its EVFLOW_BUS,
// else the default.
func (s *stack) bus(t *testing.T, name string) string {
	t.Helper()
	if b := s.evflowFlags(t, name)["bus"]; b != "" {
		return b
	}
	if b := s.p.Services[name].Environment[config.EnvName("bus")]; b != nil && *b != "" {
		return *b
	}
	return config.Default().Bus
}

// busNodes are the services the event log of replica name runs on.
func (s *stack) busNodes(name string) []string {
	if slices.Contains(s.onKafka, name) {
		return s.kafka
	}
	return s.nats
}

// readConfig is the configuration evflow builds from the EVFLOW_* variables
// of service name (and only those: every other one is unset for the rest of
// the test) and args, with the flags of `serve`.
func (s *stack) readConfig(t *testing.T, name string, args []string) config.Config {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "EVFLOW_") {
			t.Setenv(k, "") // restored when the test ends
			os.Unsetenv(k)
		}
	}
	for k, v := range s.p.Services[name].Environment {
		if v != nil && strings.HasPrefix(k, "EVFLOW_") {
			t.Setenv(k, *v)
		}
	}
	cfg := config.Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("%s: evflow does not take %q: %v", name, args, err)
	}
	if fs.NArg() > 0 {
		t.Fatalf("%s: unexpected argument %q after the flags", name, fs.Arg(0))
	}
	return cfg
}

// serveConfig is the configuration `serve` runs with in replica name.
func (s *stack) serveConfig(t *testing.T, name string) config.Config {
	t.Helper()
	s.evflowFlags(t, name) // it runs serve
	return s.readConfig(t, name, s.p.Services[name].Command[1:])
}

// requireFlag is the value of flag f of service name, failing when it is unset.
func requireFlag(t *testing.T, name string, flags map[string]string, f string) string {
	t.Helper()
	v, ok := flags[f]
	if !ok || v == "" {
		t.Fatalf("%s: no --%s in its command (flags: %v)", name, f, flags)
	}
	return v
}

func splitList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func script(svc types.ServiceConfig) string {
	return strings.Join(append(append([]string{}, svc.Entrypoint...), svc.Command...), " ")
}

// TestComposeDefaultStartsNoKafka: a plain `up` starts everything the
// JetStream replicas use and neither Kafka nor the replicas on it, which are
// only started with --profile kafka.
func TestComposeDefaultStartsNoKafka(t *testing.T) {
	def := load(t)
	withKafka := load(t, "kafka")
	var kafka []string
	for _, name := range sortedNames(withKafka.Services) {
		if slices.Contains(withKafka.Services[name].Profiles, "kafka") {
			kafka = append(kafka, name)
		}
	}
	if len(kafka) == 0 {
		t.Fatalf("no service under the kafka profile (want Kafka in KRaft mode there)")
	}
	for _, name := range kafka {
		if _, ok := def.Services[name]; ok {
			t.Errorf("%s runs without --profile kafka: the default stack must not start Kafka", name)
		}
	}
	for _, name := range sortedNames(withKafka.Services) {
		if _, ok := def.Services[name]; !ok && !slices.Contains(kafka, name) {
			t.Errorf("%s is disabled by default but not under the kafka profile", name)
		}
	}
	s := newStack(t, withKafka)
	if len(s.kafka) == 0 || len(s.onKafka) == 0 {
		t.Fatalf("with --profile kafka: Kafka nodes %v, evflow replicas on Kafka %v; want both", s.kafka, s.onKafka)
	}
	for _, name := range s.kafka {
		env := withKafka.Services[name].Environment
		if roles := env["KAFKA_PROCESS_ROLES"]; roles == nil || !strings.Contains(*roles, "controller") {
			t.Errorf("%s: KAFKA_PROCESS_ROLES must include controller (KRaft mode, no ZooKeeper)", name)
		}
	}
	// Kafka and the replicas on it are in that profile alone (another one
	// would start them with it); the JetStream replicas are in none.
	for _, name := range append(slices.Clone(s.kafka), s.onKafka...) {
		if got := []string(withKafka.Services[name].Profiles); !slices.Equal(got, []string{"kafka"}) {
			t.Errorf("%s has profiles %v, want [kafka]", name, got)
		}
	}
	for _, name := range s.onNATS {
		if got := withKafka.Services[name].Profiles; len(got) > 0 {
			t.Errorf("%s runs on JetStream but has profiles %v: the default stack must start it", name, got)
		}
	}
	d := newStack(t, def) // the default stack has its replicas, NATS cluster and replica set
	if len(d.onKafka) > 0 || len(d.kafka) > 0 {
		t.Errorf("the default stack runs evflow on Kafka %v and Kafka nodes %v, want none", d.onKafka, d.kafka)
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	for _, name := range sortedNames(p.Services) {
		svc := p.Services[name]
		if slices.Contains(s.oneShot, name) {
			if svc.Restart != "" && svc.Restart != types.RestartPolicyNo {
				t.Errorf("%s is a one-shot (depended on with %s) but has restart %q", name, types.ServiceConditionCompletedSuccessfully, svc.Restart)
			}
			for _, other := range sortedNames(p.Services) {
				if d, ok := p.Services[other].DependsOn[name]; ok && d.Condition != types.ServiceConditionCompletedSuccessfully {
					t.Errorf("%s depends on one-shot %s with %q: want %s (a one-shot is never healthy)", other, name, d.Condition, types.ServiceConditionCompletedSuccessfully)
				}
			}
			continue
		}
		hc := svc.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
			t.Errorf("%s has no healthcheck (every long-running service needs one: evflow and `up --wait` wait on them)", name)
			continue
		}
		if hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL" {
			t.Errorf("%s: healthcheck test %q must start with CMD or CMD-SHELL", name, []string(hc.Test))
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
			t.Errorf("%s: healthcheck without interval, timeout and retries", name)
		}
	}
	for _, name := range s.evflow {
		hc := p.Services[name].HealthCheck
		if hc == nil || len(hc.Test) < 2 {
			continue // reported above
		}
		// The image is distroless: no shell, so exec form running the binary.
		if hc.Test[0] != "CMD" || hc.Test[1] != "/evflow" {
			t.Errorf("%s: healthcheck %q must be exec form running /evflow (the image has no shell)", name, []string(hc.Test))
		}
		_, hf := cmdFlags(hc.Test[2:])
		_, port, _ := net.SplitHostPort(requireFlag(t, name, s.evflowFlags(t, name), "http-addr"))
		if u, err := url.Parse(hf["addr"]); err != nil || u.Port() != port {
			t.Errorf("%s: healthcheck asks %q, but the API listens on port %s", name, hf["addr"], port)
		}
	}
}

func TestComposeEvflowDependsOnInfrastructure(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	// The stores: everything the default stack runs besides evflow and its
	// bus. Every replica uses them, and the nodes of its own bus.
	var stores []string
	for _, name := range sortedNames(load(t).Services) {
		if !slices.Contains(s.evflow, name) && !slices.Contains(s.nats, name) {
			stores = append(stores, name)
		}
	}
	for _, name := range s.evflow {
		deps := p.Services[name].DependsOn
		infras := append(slices.Clone(stores), s.busNodes(name)...)
		for _, infra := range infras {
			want := types.ServiceConditionHealthy
			if slices.Contains(s.oneShot, infra) {
				want = types.ServiceConditionCompletedSuccessfully
			}
			d, ok := deps[infra]
			switch {
			case !ok:
				t.Errorf("%s does not depend on %s (want condition %s)", name, infra, want)
			case d.Condition != want:
				t.Errorf("%s depends on %s with %q, want %s", name, infra, d.Condition, want)
			}
		}
		for dep := range deps {
			if !slices.Contains(infras, dep) {
				t.Errorf("%s depends on %s, which it does not use (its infrastructure: %v)", name, dep, infras)
			}
		}
	}
	// Every dependency anywhere waits for a state, not a mere start.
	for _, name := range sortedNames(p.Services) {
		for dep, d := range p.Services[name].DependsOn {
			if d.Condition != types.ServiceConditionHealthy && d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s depends on %s with %q: want %s or %s", name, dep, d.Condition, types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully)
			}
		}
	}
}

func TestComposeEvflowFlags(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	ids := map[string]string{}
	// Every replica, whatever its bus, uses the same replica set and Sentinels.
	shared := []string{"mongo-uri", "redis-sentinels", "redis-master-set"}
	required := map[string][]string{config.BusJetStream: {"nats-url"}, config.BusKafka: {"bus", "kafka-brokers"}}
	first := map[string]string{}      // shared flag -> first replica's value
	firstOnBus := map[string]string{} // bus -> its first replica
	for _, name := range s.evflow {
		flags := s.evflowFlags(t, name)
		bus := s.bus(t, name)
		for _, f := range append(append(shared, "replica-id", "http-addr", "stream-replicas"), required[bus]...) {
			requireFlag(t, name, flags, f)
		}
		if got := flags["stream-replicas"]; bus == config.BusJetStream && got != strconv.Itoa(len(s.nats)) {
			t.Errorf("%s: --stream-replicas %s, want %d (one per NATS node)", name, got, len(s.nats))
		}
		if flags["redis-addr"] != "" {
			t.Errorf("%s: --redis-addr is set; with Sentinels it must not be", name)
		}
		id := flags["replica-id"]
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`).MatchString(id) {
			t.Errorf("%s: --replica-id %q is not 1-64 characters of [A-Za-z0-9_-]", name, id)
		}
		if other, dup := ids[id]; dup {
			t.Errorf("%s and %s have the same --replica-id %q", other, name, id)
		}
		ids[id] = name
		for _, f := range shared {
			if _, ok := first[f]; !ok {
				first[f] = flags[f]
			} else if flags[f] != first[f] {
				t.Errorf("%s: --%s %q differs from %s's %q", name, f, flags[f], s.evflow[0], first[f])
			}
		}
		// The replicas of one bus are interchangeable: the same flags but
		// their id and address, the same environment.
		if other, ok := firstOnBus[bus]; !ok {
			firstOnBus[bus] = name
		} else {
			mine, theirs := maps.Clone(flags), s.evflowFlags(t, other)
			for _, m := range []map[string]string{mine, theirs} {
				delete(m, "replica-id")
				delete(m, "http-addr")
			}
			if !maps.Equal(mine, theirs) {
				t.Errorf("%s and %s both run on %s but with different flags: %v and %v", other, name, bus, theirs, mine)
			}
			if !maps.EqualFunc(p.Services[name].Environment, p.Services[other].Environment, func(a, b *string) bool {
				return (a == nil) == (b == nil) && (a == nil || *a == *b)
			}) {
				t.Errorf("%s and %s both run on %s but with different environments", other, name, bus)
			}
		}
		// The EVFLOW_* variables (for one-off commands such as replay) say
		// what the flags say.
		for k, v := range p.Services[name].Environment {
			if !strings.HasPrefix(k, "EVFLOW_") || v == nil {
				continue
			}
			f := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "EVFLOW_")), "_", "-")
			if fv, ok := flags[f]; ok && fv != *v {
				t.Errorf("%s: %s=%q but --%s %q", name, k, *v, f, fv)
			}
		}
		// Its API is reachable from the host.
		_, port, err := net.SplitHostPort(flags["http-addr"])
		if err != nil {
			t.Errorf("%s: --http-addr %q: %v", name, flags["http-addr"], err)
			continue
		}
		published := false
		for _, pc := range p.Services[name].Ports {
			if strconv.Itoa(int(pc.Target)) == port && pc.Published != "" {
				published = true
				if pc.HostIP != "127.0.0.1" {
					t.Errorf("%s: its API is published on %q, want 127.0.0.1 only", name, pc.HostIP)
				}
			}
		}
		if !published {
			t.Errorf("%s: its API port %s is not published on the host", name, port)
		}
	}
}

func TestComposeMongoReplicaSet(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	var members []string
	var set string
	for _, m := range s.mongo {
		_, flags := cmdFlags(p.Services[m].Command[1:])
		rs := requireFlag(t, m, flags, "replSet")
		if set == "" {
			set = rs
		} else if rs != set {
			t.Errorf("%s: --replSet %s, others %s", m, rs, set)
		}
		port := "27017"
		if v := flags["port"]; v != "" {
			port = v
		}
		members = append(members, net.JoinHostPort(m, port))
	}
	for _, name := range s.evflow {
		uri := requireFlag(t, name, s.evflowFlags(t, name), "mongo-uri")
		rest, ok := strings.CutPrefix(uri, "mongodb://")
		if !ok {
			t.Fatalf("%s: --mongo-uri %q does not start with mongodb://", name, uri)
		}
		hostPart, tail, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(hostPart, "@"); at >= 0 {
			hostPart = hostPart[at+1:]
		}
		hosts := splitList(hostPart)
		for i, h := range hosts {
			if _, _, err := net.SplitHostPort(h); err != nil {
				hosts[i] = net.JoinHostPort(h, "27017")
			}
		}
		sort.Strings(hosts)
		if !slices.Equal(hosts, members) {
			t.Errorf("%s: --mongo-uri names %v, want every replica set member %v", name, hosts, members)
		}
		_, query, _ := strings.Cut(tail, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Fatalf("%s: --mongo-uri %q: %v", name, uri, err)
		}
		if got := q.Get("replicaSet"); got != set {
			t.Errorf("%s: --mongo-uri has replicaSet=%q, the members run --replSet %s", name, got, set)
		}
	}
	// A one-shot initiates the set with the same name and members.
	var initiator string
	for _, o := range s.oneShot {
		if strings.Contains(script(p.Services[o]), "rs.initiate") {
			initiator = o
		}
	}
	if initiator == "" {
		t.Fatalf("no one-shot service runs rs.initiate (one-shots: %v)", s.oneShot)
	}
	sc := script(p.Services[initiator])
	if !strings.Contains(sc, `_id: "`+set+`"`) {
		t.Errorf("%s: rs.initiate does not name the set %q", initiator, set)
	}
	for _, m := range members {
		if !strings.Contains(sc, `"`+m+`"`) {
			t.Errorf("%s: rs.initiate does not list member %s", initiator, m)
		}
	}
	for _, m := range s.mongo {
		if d, ok := p.Services[initiator].DependsOn[m]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s does not wait for %s to be healthy", initiator, m)
		}
	}
}

func TestComposeNATSCluster(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	type node struct{ clusterPort, clientPort, cluster, serverName string }
	nodes := map[string]node{}
	for _, n := range s.nats {
		_, flags := cmdFlags(p.Services[n].Command)
		if flags["js"] != "true" && flags["jetstream"] != "true" {
			t.Errorf("%s: JetStream is not enabled (-js / --jetstream)", n)
		}
		cl := flags["cluster"]
		if cl == "" {
			cl = flags["cluster_listen"]
		}
		u, err := url.Parse(cl)
		if err != nil || u.Port() == "" {
			t.Errorf("%s: --cluster %q is not a listen URL with a port", n, cl)
			continue
		}
		client := "4222"
		if v := flags["port"]; v != "" {
			client = v
		} else if v := flags["p"]; v != "" {
			client = v
		}
		name := flags["name"]
		if name == "" {
			name = flags["server_name"]
		}
		nodes[n] = node{clusterPort: u.Port(), clientPort: client, cluster: flags["cluster_name"], serverName: name}
		hp := flags["http_port"]
		if hp == "" {
			hp = flags["m"]
		}
		if hc := p.Services[n].HealthCheck; hp == "" || hc == nil || !strings.Contains(strings.Join(hc.Test, " "), ":"+hp+"/healthz") {
			t.Errorf("%s: the healthcheck must ask /healthz on the monitoring port (--http_port %q)", n, hp)
		}
	}
	names := map[string]bool{}
	for _, n := range s.nats {
		me := nodes[n]
		if me.cluster == "" || me.cluster != nodes[s.nats[0]].cluster {
			t.Errorf("%s: --cluster_name %q, want one name for all nodes", n, me.cluster)
		}
		if me.serverName == "" || names[me.serverName] {
			t.Errorf("%s: server name %q is empty or not unique", n, me.serverName)
		}
		names[me.serverName] = true
		_, flags := cmdFlags(p.Services[n].Command)
		var routes []string
		for _, r := range splitList(flags["routes"]) {
			u, err := url.Parse(r)
			if err != nil {
				t.Errorf("%s: route %q: %v", n, r, err)
				continue
			}
			other, ok := nodes[u.Hostname()]
			if !ok {
				t.Errorf("%s: route %q names no NATS node (nodes: %v)", n, r, s.nats)
				continue
			}
			if u.Port() != other.clusterPort {
				t.Errorf("%s: route %q, but %s's cluster port is %s", n, r, u.Hostname(), other.clusterPort)
			}
			routes = append(routes, u.Hostname())
		}
		sort.Strings(routes)
		var want []string
		for _, o := range s.nats {
			if o != n {
				want = append(want, o)
			}
		}
		if !slices.Equal(routes, want) {
			t.Errorf("%s routes to %v, want the other nodes %v", n, routes, want)
		}
	}
	for _, name := range s.onNATS {
		var hosts []string
		for _, raw := range splitList(requireFlag(t, name, s.evflowFlags(t, name), "nats-url")) {
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("%s: --nats-url entry %q: %v", name, raw, err)
				continue
			}
			nd, ok := nodes[u.Hostname()]
			if !ok {
				t.Errorf("%s: --nats-url entry %q names no NATS node", name, raw)
				continue
			}
			if u.Port() != nd.clientPort {
				t.Errorf("%s: --nats-url entry %q, but %s's client port is %s", name, raw, u.Hostname(), nd.clientPort)
			}
			hosts = append(hosts, u.Hostname())
		}
		sort.Strings(hosts)
		if !slices.Equal(hosts, s.nats) {
			t.Errorf("%s: --nats-url lists %v, want all three nodes %v", name, hosts, s.nats)
		}
	}
}

var (
	sentinelMonitor = regexp.MustCompile(`sentinel monitor (\S+) (\S+) (\d+) (\d+)`)
	sentinelPort    = regexp.MustCompile(`'port (\d+)'`)
	replicaOf       = regexp.MustCompile(`replicaof (\S+) (\d+)`)
)

func TestComposeRedisSentinel(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	for _, name := range s.evflow {
		flags := s.evflowFlags(t, name)
		set := requireFlag(t, name, flags, "redis-master-set")
		sentinels := splitList(requireFlag(t, name, flags, "redis-sentinels"))
		if len(sentinels) < 3 {
			t.Errorf("%s: --redis-sentinels lists %d Sentinels, want 3 (a quorum survives one loss)", name, len(sentinels))
		}
		var primary, primaryPort string
		for _, hp := range sentinels {
			host, port, err := net.SplitHostPort(hp)
			if err != nil {
				t.Errorf("%s: --redis-sentinels entry %q: %v", name, hp, err)
				continue
			}
			svc, ok := p.Services[host]
			if !ok {
				t.Errorf("%s: --redis-sentinels names %s, which is no service", name, host)
				continue
			}
			sc := script(svc)
			if !strings.Contains(sc, "--sentinel") && !strings.Contains(sc, "redis-sentinel") {
				t.Errorf("%s: service %s does not run Redis Sentinel", name, host)
			}
			if m := sentinelPort.FindStringSubmatch(sc); m == nil || m[1] != port {
				t.Errorf("%s: Sentinel %s does not listen on port %s (its config: %v)", name, host, port, m)
			}
			m := sentinelMonitor.FindStringSubmatch(sc)
			if m == nil {
				t.Errorf("%s: Sentinel %s has no `sentinel monitor` line", name, host)
				continue
			}
			if m[1] != set {
				t.Errorf("%s: Sentinel %s monitors master set %q, evflow asks for %q", name, host, m[1], set)
			}
			if quorum, _ := strconv.Atoi(m[4]); quorum <= len(sentinels)/2 || quorum > len(sentinels) {
				t.Errorf("%s: Sentinel %s has quorum %d for %d Sentinels: want a majority", name, host, quorum, len(sentinels))
			}
			if primary == "" {
				primary, primaryPort = m[2], m[3]
			} else if m[2] != primary || m[3] != primaryPort {
				t.Errorf("%s: Sentinel %s monitors %s:%s, another one %s:%s", name, host, m[2], m[3], primary, primaryPort)
			}
			if hc := svc.HealthCheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), set) {
				t.Errorf("%s: Sentinel %s's healthcheck does not ask about master set %q", name, host, set)
			}
		}
		if primary == "" {
			continue
		}
		if _, ok := p.Services[primary]; !ok {
			t.Errorf("the Sentinels monitor %s, which is no service", primary)
			continue
		}
		var replicas []string
		for _, other := range sortedNames(p.Services) {
			if m := replicaOf.FindStringSubmatch(script(p.Services[other])); m != nil && m[1] == primary && m[2] == primaryPort {
				replicas = append(replicas, other)
			}
		}
		if len(replicas) == 0 {
			t.Errorf("no Redis service replicates %s:%s (want a primary and a replica)", primary, primaryPort)
		}
	}
}

func TestComposeHostPortsAndVolumes(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	used := map[string]string{} // protocol/port -> service
	for _, name := range sortedNames(p.Services) {
		for _, pc := range p.Services[name].Ports {
			if pc.Published == "" {
				continue
			}
			proto := pc.Protocol
			if proto == "" {
				proto = "tcp"
			}
			lo, hi := pc.Published, pc.Published
			if a, b, ok := strings.Cut(pc.Published, "-"); ok {
				lo, hi = a, b
			}
			from, err1 := strconv.Atoi(lo)
			to, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				t.Errorf("%s: published port %q is not a number or range", name, pc.Published)
				continue
			}
			for port := from; port <= to; port++ {
				key := fmt.Sprintf("%s/%d", proto, port)
				if other, dup := used[key]; dup {
					t.Errorf("host port %s is published by both %s and %s", key, other, name)
				}
				used[key] = name
			}
		}
	}
	// Data lives in named volumes, one per service.
	owner := map[string]string{}
	for _, name := range sortedNames(p.Services) {
		if slices.Contains(s.evflow, name) || slices.Contains(s.oneShot, name) {
			continue
		}
		named := 0
		for _, v := range p.Services[name].Volumes {
			if v.Type != types.VolumeTypeVolume || v.Source == "" {
				continue
			}
			if _, ok := p.Volumes[v.Source]; !ok {
				t.Errorf("%s mounts volume %s, which is not declared", name, v.Source)
			}
			if other, dup := owner[v.Source]; dup {
				t.Errorf("volume %s is mounted by both %s and %s", v.Source, other, name)
			}
			owner[v.Source] = name
			named++
		}
		if named == 0 {
			t.Errorf("%s keeps its data in no named volume", name)
		}
	}
}

// TestComposeBuildsRepositoryDockerfile: the replicas run the image built from
// the repository root's Dockerfile.
func TestComposeBuildsRepositoryDockerfile(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	root := repoRoot(t)
	for _, name := range s.evflow {
		if img, want := p.Services[name].Image, p.Services[s.evflow[0]].Image; img != want {
			t.Errorf("%s runs image %q, %s %q: want one image for every replica", name, img, s.evflow[0], want)
		}
		b := p.Services[name].Build
		if filepath.Clean(b.Context) != root {
			t.Errorf("%s builds from %s, want the repository root %s", name, b.Context, root)
		}
		df := b.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(b.Context, df)
		}
		if df != filepath.Join(root, "Dockerfile") {
			t.Errorf("%s builds with %s, want %s", name, df, filepath.Join(root, "Dockerfile"))
		}
	}
}

// TestComposeEvflowServeConfig reads each replica's command and environment
// with evflow's own flags: `serve` accepts them, and a one-off command run in
// the service (`docker compose run --rm evflow1 replay ...`), which has only
// the environment, finds the same event log and stores.
func TestComposeEvflowServeConfig(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	for _, name := range s.evflow {
		t.Run(name, func(t *testing.T) {
			serve := s.serveConfig(t, name)
			if err := serve.Validate(); err != nil {
				t.Errorf("serve refuses its command and environment:\n%v", err)
			}
			oneOff := s.readConfig(t, name, nil)
			// What `replay` and `publish` read (cmd/evflow/replay.go busFlags).
			for _, c := range []struct {
				flag       string
				serve, env any
			}{
				{"bus", serve.Bus, oneOff.Bus},
				{"nats-url", serve.NATSURL, oneOff.NATSURL},
				{"kafka-brokers", serve.KafkaBrokers, oneOff.KafkaBrokers},
				{"kafka-topic", serve.KafkaTopic, oneOff.KafkaTopic},
				{"mongo-uri", serve.MongoURI, oneOff.MongoURI},
				{"mongo-db", serve.MongoDB, oneOff.MongoDB},
				{"redis-addr", serve.RedisAddr, oneOff.RedisAddr},
				{"redis-sentinels", serve.RedisSentinels, oneOff.RedisSentinels},
				{"redis-master-set", serve.RedisMasterSet, oneOff.RedisMasterSet},
				{"redis-db", serve.RedisDB, oneOff.RedisDB},
			} {
				if c.serve != c.env {
					t.Errorf("serve runs with --%s %v, but a one-off command finds %s giving %v", c.flag, c.serve, config.EnvName(c.flag), c.env)
				}
			}
		})
	}
}

// topicMinInsync is the min.insync.replicas evflow sets on the event topic it
// creates with a replication factor above 1 (infra/bus/kafka EnsureTopic).
const topicMinInsync = 2

// TestComposeKafkaReplicas: the replicas on Kafka reach every broker, replicate
// the topic over them, and keep their projections apart from the JetStream
// replicas'.
func TestComposeKafkaReplicas(t *testing.T) {
	p := load(t, "kafka")
	s := newStack(t, p)
	if len(s.kafka) < 3 {
		t.Fatalf("want a Kafka cluster of at least 3 nodes under --profile kafka, found %v", s.kafka)
	}
	if len(s.onKafka) < 2 {
		t.Fatalf("want at least 2 evflow replicas on Kafka under --profile kafka, found %v", s.onKafka)
	}
	// Each node's advertised listener for the compose network: the one the
	// brokers talk to each other on, by its service name.
	var listeners []string
	for _, n := range s.kafka {
		env := p.Services[n].Environment
		name := "INTERNAL"
		if v := env["KAFKA_INTER_BROKER_LISTENER_NAME"]; v != nil && *v != "" {
			name = *v
		}
		adv := env["KAFKA_ADVERTISED_LISTENERS"]
		if adv == nil {
			t.Errorf("%s: no KAFKA_ADVERTISED_LISTENERS", n)
			continue
		}
		found := ""
		for _, l := range splitList(*adv) {
			if rest, ok := strings.CutPrefix(l, name+"://"); ok {
				found = rest
			}
		}
		host, _, err := net.SplitHostPort(found)
		switch {
		case err != nil:
			t.Errorf("%s: KAFKA_ADVERTISED_LISTENERS %q has no %s://host:port", n, *adv, name)
			continue
		case host != n:
			t.Errorf("%s advertises %s://%s: want its service name, which resolves in the compose network", n, name, found)
		}
		listeners = append(listeners, found)
	}
	sort.Strings(listeners)

	jetstream := make([]config.Config, len(s.onNATS))
	for i, name := range s.onNATS {
		jetstream[i] = s.serveConfig(t, name)
	}
	for _, name := range s.onKafka {
		flags := s.evflowFlags(t, name)
		if b := flags["bus"]; b != config.BusKafka {
			t.Errorf("%s: --bus %q, want %s in its command", name, b, config.BusKafka)
		}
		for _, f := range []string{"nats-url", "nats-routes"} {
			if _, ok := flags[f]; ok {
				t.Errorf("%s: --%s is set; with --bus kafka serve refuses it", name, f)
			}
			if v := p.Services[name].Environment[config.EnvName(f)]; v != nil {
				t.Errorf("%s: %s is set; with --bus kafka serve refuses it", name, config.EnvName(f))
			}
		}
		brokers := splitList(requireFlag(t, name, flags, "kafka-brokers"))
		sort.Strings(brokers)
		if !slices.Equal(brokers, listeners) {
			t.Errorf("%s: --kafka-brokers %v, want every node's internal listener %v", name, brokers, listeners)
		}
		// The topic's replication factor: at most one copy per node (Kafka
		// refuses more), and more than min.insync.replicas, or one node
		// down would stop every write (acks=all).
		n, err := strconv.Atoi(requireFlag(t, name, flags, "stream-replicas"))
		if err != nil || n > len(s.kafka) || n <= topicMinInsync {
			t.Errorf("%s: --stream-replicas %q, want more than the topic's min.insync.replicas %d and at most the %d Kafka nodes",
				name, flags["stream-replicas"], topicMinInsync, len(s.kafka))
		}
		// Projections, fence, deduplication window and dead letters of their own.
		cfg := s.serveConfig(t, name)
		for i, jc := range jetstream {
			js := s.onNATS[i]
			if cfg.MongoDB == jc.MongoDB {
				t.Errorf("%s and %s (on JetStream) share MongoDB database %q: want one per bus", name, js, cfg.MongoDB)
			}
			if cfg.RedisDB == jc.RedisDB {
				t.Errorf("%s and %s (on JetStream) share Redis logical database %d: want one per bus", name, js, cfg.RedisDB)
			}
		}
	}
}
