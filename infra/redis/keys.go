package redis

import "strconv"

// DefaultPrefix starts every key of the live key space. A rebuild writes
// into a shadow key space under another prefix (see [Config.Prefix]).
const DefaultPrefix = "ev"

// Hash fields, also used inside the Lua scripts. Key and field names are durable data: renaming one orphans
// everything stored under the old name.
const (
	fieldVersion = "version" // release hash: current release, "" for none
	fieldPos     = "pos"     // release and counter hashes: last applied position
	fieldCount   = "n"       // counter hash: launches counted
)

// keys names every key the store reads or writes, all under one prefix.
//
// Keys one script touches together share a Redis Cluster hash tag, so the
// script runs on one node: an app's keys are tagged with the app id, a day's
// top keys with "top:<day>". App ids cannot contain ':' (events.ValidID), so
// the two tag spaces never meet.
type keys struct {
	prefix string
}

// release is the hash holding an app's current release and its position.
func (k keys) release(app string) string { return k.app(app) + ":release" }

// launches is the hash counting an app's launches on day, with the position
// of the last launch counted.
func (k keys) launches(app, day string) string { return k.app(app) + ":launches:" + day }

// devices is the HyperLogLog of the devices that launched app on day.
func (k keys) devices(app, day string) string { return k.app(app) + ":devices:" + day }

// top is the sorted set of apps by launches on day.
func (k keys) top(day string) string { return k.prefix + ":{top:" + day + "}" }

// topGuard is the hash holding, per app (field), the position of the last
// launch counted into top(day).
func (k keys) topGuard(day string) string { return k.top(day) + ":pos" }

// checkpoints is the hash of a projection's checkpoints, one field per partition.
func (k keys) checkpoints(projection string) string { return k.prefix + ":ckpt:" + projection }

// partitionField is the checkpoint hash field of a partition.
func partitionField(partition int) string { return strconv.Itoa(partition) }

func (k keys) app(app string) string { return k.prefix + ":{" + app + "}" }
