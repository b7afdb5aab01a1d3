package mongo

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// IsFerretDB reports whether db is served by FerretDB rather than MongoDB:
// FerretDB names its own version in the buildInfo answer. Callers use it to
// pick [FerretConfig], which FerretDB needs to stay exact and live.
func IsFerretDB(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("mongo: buildInfo: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	return ferret, nil
}

// FerretConfig adapts cfg to FerretDB: writes serialized (its conditional
// updates are a read then a write, not atomic), filters on _id alone (it
// scans the collection for any other filter, see [Config.KeyOnly]) and
// bulks capped at [FerretMaxBulk] unless cfg sets a cap. FerretDB holds one SQLite
// connection per operation of a bulk update until the whole bulk ends, out
// of a pool of 100, and deadlocks when concurrent bulks exhaust it; one
// bulk at a time per replica, of at most FerretMaxBulk operations, keeps
// several replicas well inside that pool.
func FerretConfig(cfg Config) Config {
	cfg.Serialize, cfg.KeyOnly = true, true
	if cfg.MaxBulk == 0 {
		cfg.MaxBulk = FerretMaxBulk
	}
	return cfg
}
