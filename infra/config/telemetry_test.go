package config_test

import (
	"strings"
	"testing"

	"github.com/evflow/evflow/infra/config"
)

func TestTracingIsOffByDefault(t *testing.T) {
	c, err := parse(t)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if c.OTel.Exporter != config.OTelNone || c.OTel.SampleRatio != 1 {
		t.Fatalf("otel %+v, want exporter none and sample ratio 1", c.OTel)
	}
}

func TestTracingFlagsAndEnvironment(t *testing.T) {
	t.Setenv("EVFLOW_OTEL_EXPORTER", "otlp")
	t.Setenv("EVFLOW_OTEL_SAMPLE_RATIO", "0.25")
	c, err := parse(t, "--otel-endpoint", "http://collector:4318")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	want := config.OTel{Exporter: config.OTelOTLP, Endpoint: "http://collector:4318", SampleRatio: 0.25}
	if c.OTel != want {
		t.Fatalf("otel %+v, want %+v", c.OTel, want)
	}
}

func TestTracingValidationNamesTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"--otel-exporter", "jaeger"}, "--otel-exporter"},
		{[]string{"--otel-endpoint", "http://c:4318"}, "--otel-endpoint"},
		{[]string{"--otel-exporter", "otlp", "--otel-endpoint", "collector:4318"}, "--otel-endpoint"},
		{[]string{"--otel-exporter", "otlp", "--otel-sample-ratio", "1.5"}, "--otel-sample-ratio"},
		{[]string{"--otel-sample-ratio", "NaN"}, "--otel-sample-ratio"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parse(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("args %v: err = %v, want one naming %s", tc.args, err, tc.flag)
			}
		})
	}
	t.Setenv("EVFLOW_OTEL_SAMPLE_RATIO", "half")
	if _, err := parse(t); err == nil || !strings.Contains(err.Error(), "EVFLOW_OTEL_SAMPLE_RATIO") {
		t.Fatalf("err = %v, want one naming EVFLOW_OTEL_SAMPLE_RATIO", err)
	}
}
