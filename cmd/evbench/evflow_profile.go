package main

import (
	"log/slog"
	"os"
	"runtime/pprof"
)

// profileEnv names the environment variable that turns on CPU profiles of
// the evflow measurements: EVBENCH_CPUPROFILE=/tmp/evb writes
// /tmp/evb-drain.pprof, /tmp/evb-live.pprof and so on, to read with
// `go tool pprof`. It is a variable rather than a flag to keep the
// command line about what is measured.
const profileEnv = "EVBENCH_CPUPROFILE"

// startProfile starts a CPU profile of measurement name when profileEnv is
// set, and returns the function that stops it (a no-op otherwise).
func startProfile(name string, log *slog.Logger) (stop func()) {
	prefix := os.Getenv(profileEnv)
	if prefix == "" {
		return func() {}
	}
	path := prefix + "-" + name + ".pprof"
	f, err := os.Create(path)
	if err != nil {
		log.Warn("no CPU profile", "measurement", name, "err", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		log.Warn("no CPU profile", "measurement", name, "err", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("CPU profile not written", "path", path, "err", err)
		}
	}
}
