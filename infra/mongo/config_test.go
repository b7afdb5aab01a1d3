package mongo_test

import (
	"strings"
	"testing"

	evmongo "github.com/evflow/evflow/infra/mongo"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  evmongo.Config
		want []string // substrings of the error; none: valid
	}{
		{name: "zero", cfg: evmongo.Config{}},
		{name: "ferret", cfg: evmongo.Config{MaxBulk: evmongo.FerretMaxBulk, Suffix: "_g2"}},
		{name: "negative bulk", cfg: evmongo.Config{MaxBulk: -1}, want: []string{"MaxBulk"}},
		{name: "bad suffix", cfg: evmongo.Config{Suffix: "a.b"}, want: []string{"Suffix"}},
		{name: "long suffix", cfg: evmongo.Config{Suffix: strings.Repeat("x", 33)}, want: []string{"Suffix"}},
		{name: "both", cfg: evmongo.Config{MaxBulk: -5, Suffix: "$"}, want: []string{"MaxBulk", "Suffix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to name %s", err, w)
				}
			}
		})
	}
}
