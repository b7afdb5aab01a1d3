package mongo

// Collection names. They are durable data: renaming one orphans what is
// stored under the old name. A [Config.Suffix] is appended to each of them,
// so a shadow generation lives beside the live one until it is swapped in.
const (
	// AppsCollection holds one [projections.App] document per app aggregate.
	AppsCollection = "apps"
	// DailyStatsCollection holds one launch counter per app and UTC day,
	// _id "<app>:<day>".
	DailyStatsCollection = "daily_stats"
	// CheckpointsCollection holds one position per projection and
	// partition, _id "<projection>:<partition>".
	CheckpointsCollection = "checkpoints"
	// GenerationsCollection holds one generation record per projection,
	// _id the projection's name. It has no suffix: it names the suffixes.
	GenerationsCollection = "generations"
)

// Field names of the daily_stats and checkpoints documents. The apps
// document's fields are the bson tags of [projections.App].
const (
	fieldID         = "_id"
	fieldPos        = "pos"
	fieldAppID      = "app_id"
	fieldDay        = "day"
	fieldTenant     = "tenant"
	fieldLaunches   = "launches"
	fieldProjection = "projection"
	fieldPartition  = "partition"
	fieldGrants     = "grants" // of the apps document
)
