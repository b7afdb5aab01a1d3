// Package natsd runs an embedded nats-server with JetStream, the default
// broker of evflow's zero-setup mode and of its tests.
//
// A single node needs only a store directory:
//
//	s, err := natsd.Start(natsd.Config{Dir: dir, Port: -1})
//
// A cluster is a set of nodes with the same [ClusterConfig.Name], each with
// its own [Config.Name] and store directory, and routes to the others'
// cluster ports. Give every node a fixed route port (JetStream needs
// configured routes, and peers must know where to dial); the same route list
// may be given to every node, since a route to the node itself is ignored:
//
//	routes := []string{"nats://127.0.0.1:6222", "nats://127.0.0.1:6223", "nats://127.0.0.1:6224"}
//	for i := range 3 {
//		s, err := natsd.Start(natsd.Config{
//			Dir:  filepath.Join(base, strconv.Itoa(i)),
//			Port: -1,
//			Name: "n" + strconv.Itoa(i),
//			Cluster: natsd.ClusterConfig{Name: "evflow", Port: 6222 + i, Routes: routes},
//		})
//		...
//	}
//
// Clients may be made to authenticate, with a password or an nkey, and to
// connect with TLS, verifying client certificates too when a CA is given:
//
//	s, err := natsd.Start(natsd.Config{Dir: dir, Port: -1,
//		Auth: natsd.Auth{User: "evflow", Password: pw},
//		TLS:  natsd.TLS{CertFile: "server.pem", KeyFile: "server-key.pem"},
//	})
//
// Routes between cluster nodes are not covered by Auth and TLS.
//
// Start returns once a node accepts client and route connections; the
// JetStream meta group elects its leader some time later, after a quorum of
// nodes found each other (testenv.StartNATSCluster waits for it).
package natsd

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults of [Config].
const (
	DefaultHost         = "127.0.0.1"
	DefaultReadyTimeout = 10 * time.Second
)

// Config configures an embedded server.
type Config struct {
	// Dir is the JetStream store directory (file storage). Required; in a
	// cluster every node needs its own.
	Dir string
	// Host and Port to listen on for clients; Host defaults to
	// [DefaultHost]; Port -1 picks a free port, 0 means the NATS default
	// (4222).
	Host string
	Port int
	// Name is the server name. Required in a cluster, where it must be
	// unique and stable: a node's JetStream peer identity derives from it, so
	// a node restarted on the same Dir under another name is a stranger.
	Name string
	// Cluster joins a cluster when Cluster.Name is set.
	Cluster ClusterConfig
	// Auth, when set, makes clients authenticate (see [Auth]).
	Auth Auth
	// TLS, when set, makes clients connect with TLS (see [TLS]).
	TLS TLS
}

// ClusterConfig configures clustering of an embedded server.
type ClusterConfig struct {
	// Name of the cluster, the same on every node. Setting it turns
	// clustering on.
	Name string
	// Host and Port to listen on for routes. Host defaults to [Config.Host].
	// Port is required in a cluster; -1 picks a free port, which the other
	// nodes can only learn once this node has dialled them, so nodes that
	// list each other in Routes need fixed ports.
	Host string
	Port int
	// Routes are the route URLs of the other nodes' cluster ports, such as
	// nats://127.0.0.1:6222 (a bare host:port means nats://host:port). At
	// least one is required: JetStream does not run clustered without
	// configured routes. A route to this node itself is ignored, so every
	// node may be given the same list.
	Routes []string
}

// Start starts a server and waits until it accepts connections (client
// connections and, in a cluster, routes). It returns an error naming every
// invalid field of cfg, or why the server did not become ready.
func Start(cfg Config) (*server.Server, error) {
	cfg.setDefaults()
	routes, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		NoSigs:     true,
		NoLog:      true,
	}
	if err := cfg.secure(opts); err != nil {
		return nil, err
	}
	if cfg.Cluster.Name != "" {
		opts.Cluster = server.ClusterOpts{Name: cfg.Cluster.Name, Host: cfg.Cluster.Host, Port: cfg.Cluster.Port}
		opts.Routes = routes
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsd: new server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(DefaultReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("natsd: server %q not ready after %s (is a port taken?)", cfg.Name, DefaultReadyTimeout)
	}
	return s, nil
}

func (c *Config) setDefaults() {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Cluster.Name != "" && c.Cluster.Host == "" {
		c.Cluster.Host = c.Host
	}
}

// validate checks c and returns its parsed routes.
func (c *Config) validate() ([]*url.URL, error) {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	errs = append(errs, c.Auth.validate()...)
	errs = append(errs, c.TLS.validate()...)
	var routes []*url.URL
	if c.Cluster.Name != "" {
		if c.Name == "" {
			errs = append(errs, errors.New("Name is required in a cluster (a node's identity)"))
		}
		if c.Cluster.Port == 0 {
			errs = append(errs, errors.New("Cluster.Port is required in a cluster (-1 picks a free port)"))
		}
		if len(c.Cluster.Routes) == 0 {
			errs = append(errs, errors.New("Cluster.Routes needs at least one route (JetStream does not run clustered without)"))
		}
		for _, r := range c.Cluster.Routes {
			u, err := routeURL(r)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			routes = append(routes, u)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("natsd: %w", err)
	}
	return routes, nil
}

// routeURL parses a route, nats://host:port or host:port.
func routeURL(r string) (*url.URL, error) {
	s := strings.TrimSpace(r)
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("Cluster.Routes: %q: %w", r, err)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("Cluster.Routes: %q: want nats://host:port", r)
	}
	return u, nil
}
