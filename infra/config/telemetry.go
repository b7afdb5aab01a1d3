package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
)

// Tracing exporters of [OTel].
const (
	OTelNone   = "none"
	OTelOTLP   = "otlp"
	OTelStdout = "stdout"
)

// OTel configures OpenTelemetry tracing (--otel-*); off by default.
type OTel struct {
	// Exporter is OTelNone (no tracing, no cost), OTelOTLP (OTLP/HTTP to
	// Endpoint) or OTelStdout (spans as JSON on standard output).
	Exporter string
	// Endpoint is the OTLP/HTTP endpoint URL, such as
	// http://collector:4318 (traces are posted to /v1/traces when it has
	// no path); empty: the OTEL_EXPORTER_OTLP_* environment variables,
	// else https://localhost:4318.
	Endpoint string
	// SampleRatio is the share of traces started by this replica that
	// are recorded, 0 to 1; traces started by a caller follow its decision.
	SampleRatio float64
}

// DefaultOTel is tracing off, recording every trace once turned on.
func DefaultOTel() OTel { return OTel{Exporter: OTelNone, SampleRatio: 1} }

// flags registers the --otel-* flags on fs.
func (o *OTel) flags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&o.Exporter, "otel-exporter", env("otel-exporter", o.Exporter), "tracing: none, otlp (OTLP/HTTP to --otel-endpoint) or stdout (env "+EnvName("otel-exporter")+")")
	fs.StringVar(&o.Endpoint, "otel-endpoint", env("otel-endpoint", o.Endpoint), "OTLP/HTTP endpoint URL of the traces, such as http://collector:4318 (default: OTEL_EXPORTER_OTLP_ENDPOINT, else https://localhost:4318) (env "+EnvName("otel-endpoint")+")")
	fs.Float64Var(&o.SampleRatio, "otel-sample-ratio", envParse(c, "otel-sample-ratio", o.SampleRatio, func(s string) (float64, error) {
		return strconv.ParseFloat(s, 64)
	}, "a number from 0 to 1"), "share of the traces started here that are recorded, 0 to 1 (env "+EnvName("otel-sample-ratio")+")")
}

// validate names the flag of every invalid setting.
func (o OTel) validate() []error {
	var errs []error
	switch o.Exporter {
	case OTelNone, OTelOTLP, OTelStdout:
	default:
		errs = append(errs, fmt.Errorf("--otel-exporter: %q is not none, otlp or stdout", o.Exporter))
	}
	if o.Endpoint != "" && o.Exporter != OTelOTLP {
		errs = append(errs, errors.New("--otel-endpoint: needs --otel-exporter otlp"))
	}
	if u, err := url.Parse(o.Endpoint); o.Endpoint != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		errs = append(errs, fmt.Errorf("--otel-endpoint: %q is not an http:// or https:// URL with a host", o.Endpoint))
	}
	if !(o.SampleRatio >= 0 && o.SampleRatio <= 1) { // NaN too
		errs = append(errs, fmt.Errorf("--otel-sample-ratio: %v is out of range 0-1", o.SampleRatio))
	}
	return errs
}
