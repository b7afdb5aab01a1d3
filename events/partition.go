package events

import "hash/fnv"

// DefaultPartitions is the number of partitions a stream is split into
// unless configured otherwise.
const DefaultPartitions = 16

// Partition maps an aggregate id to one of n partitions with FNV-1a, so
// every producer and every backend agrees on it. Changing n re-maps
// aggregates: it is fixed for the life of a stream.
func Partition(aggregateID string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(aggregateID))
	return int(h.Sum32() % uint32(n))
}
