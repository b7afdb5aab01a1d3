package mongo

import (
	"errors"
	"fmt"
	"regexp"
)

// Defaults of [Config].
const (
	// DefaultMaxBulk is the bulk size cap for a real MongoDB.
	DefaultMaxBulk = 500
	// FerretMaxBulk is the bulk size cap to use against FerretDB, which
	// stalls on large bulk updates (DESIGN.md, "Test stand") and holds a
	// connection of its 100-connection SQLite pool per operation of a
	// bulk update (see [FerretConfig]).
	FerretMaxBulk = 16
)

// suffixPattern is what a collection name suffix may look like.
var suffixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{0,32}$`)

// Config configures a [Store]. The zero value is valid and means the live
// collections with bulks of up to [DefaultMaxBulk] operations.
type Config struct {
	// MaxBulk caps the operations sent in one bulk write; larger sets are
	// split into several bulks. Default [DefaultMaxBulk]; set
	// [FerretMaxBulk] against FerretDB.
	MaxBulk int
	// Suffix is appended verbatim to every collection name (apps,
	// daily_stats, checkpoints), for example "_g2" for a generation being
	// rebuilt in shadow collections. Default "": the live collections.
	// At most 32 characters of [A-Za-z0-9_-].
	Suffix string
	// Serialize makes the store's writes run one at a time. Set it against
	// FerretDB: it applies an update as a read, then a write, outside a
	// transaction, so two concurrent conditional updates of one document
	// can both pass the position filter (MongoDB applies them atomically).
	// Within a replica a document belongs to one partition's worker anyway;
	// this also covers writers that share a store. Default false.
	Serialize bool
	// KeyOnly filters every read and write on _id alone, for FerretDB,
	// which uses its primary key for such a filter only and scans the
	// whole collection for any other. A write's position condition is then
	// checked against the document read just before it, which is exact
	// only while the store's writes are serialized: KeyOnly requires
	// Serialize. Across processes (two replicas briefly writing one
	// partition during a hand-over) it is not exact, and neither is
	// FerretDB's own conditional update, a read then a write. Without
	// KeyOnly the condition is in the write's filter, atomic on MongoDB.
	// Default false.
	KeyOnly bool
}

// setDefaults fills in the zero fields.
func (c *Config) setDefaults() {
	if c.MaxBulk == 0 {
		c.MaxBulk = DefaultMaxBulk
	}
}

// Validate reports every field that is out of range, joined.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBulk < 0 {
		errs = append(errs, fmt.Errorf("mongo config: MaxBulk %d: must be positive (0 for the default %d)", c.MaxBulk, DefaultMaxBulk))
	}
	if !suffixPattern.MatchString(c.Suffix) {
		errs = append(errs, fmt.Errorf("mongo config: Suffix %q: must be at most 32 characters of [A-Za-z0-9_-]", c.Suffix))
	}
	if c.KeyOnly && !c.Serialize {
		errs = append(errs, errors.New("mongo config: KeyOnly requires Serialize (its position checks are a read, then a write)"))
	}
	return errors.Join(errs...)
}
