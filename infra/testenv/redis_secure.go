package testenv

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
)

// RedisOptions secure the redis-servers [StartRedisWith] and
// [StartRedisSentinelWith] start. The zero value is an open server.
type RedisOptions struct {
	// Password is required of every client: the default user's
	// (requirepass), or Username's when set.
	Password string
	// Username, when set, is an ACL user with every right and Password,
	// and the default user is off.
	Username string
	// TLS, when set, makes the server serve TLS alone on its address, with
	// a certificate this CA issued for loopback, and replicate over TLS.
	// Clients need no certificate.
	TLS *CA
	// SentinelPassword is the Sentinel's own password (its requirepass),
	// with [StartRedisSentinelWith].
	SentinelPassword string
}

// StartRedisWith is [StartRedis] with the server secured by opts. Restart
// keeps them.
func StartRedisWith(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: redis-server not found on PATH: install it with `apt-get install redis-server` " +
			"(the README's test command, `task test` / .ci/run, does this)")
	}
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), t: t}
	r.args = opts.args(t, r.Addr)
	r.start(bin)
	t.Cleanup(r.Stop)
	return r
}

// args are the redis-server arguments of opts for a server at addr.
func (o RedisOptions) args(t testing.TB, addr string) []string {
	t.Helper()
	var args []string
	switch {
	case o.Username != "":
		args = append(args, "--user", "default", "off", "--user", o.Username, "on", ">"+o.Password, "~*", "&*", "+@all",
			"--masteruser", o.Username, "--masterauth", o.Password)
	case o.Password != "":
		args = append(args, "--requirepass", o.Password, "--masterauth", o.Password)
	}
	if o.TLS != nil {
		_, port, _ := net.SplitHostPort(addr)
		cert := o.TLS.Server()
		args = append(args, "--port", "0", "--tls-port", port, "--tls-cert-file", cert.CertFile, "--tls-key-file", cert.KeyFile,
			"--tls-ca-cert-file", o.TLS.CertFile, "--tls-auth-clients", "no", "--tls-replication", "yes")
	}
	return args
}
