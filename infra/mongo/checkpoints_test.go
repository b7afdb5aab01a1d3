package mongo_test

import (
	"testing"

	evmongo "github.com/evflow/evflow/infra/mongo"
)

func TestCheckpointMonotonic(t *testing.T) { eachMode(t, testCheckpointMonotonic) }

func testCheckpointMonotonic(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	ctx := ctx(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	check := func(projection string, partition int, want uint64) {
		t.Helper()
		if got, err := s.Checkpoint(ctx, projection, partition); err != nil || got != want {
			t.Errorf("Checkpoint(%s, %d) = %d, %v; want %d", projection, partition, got, err, want)
		}
	}
	save := func(projection string, partition int, pos uint64) {
		t.Helper()
		if err := s.SaveCheckpoint(ctx, projection, partition, pos); err != nil {
			t.Fatalf("SaveCheckpoint(%s, %d, %d): %v", projection, partition, pos, err)
		}
	}
	check("mongo", 3, 0)
	save("mongo", 3, 10)
	check("mongo", 3, 10)
	save("mongo", 3, 4) // backwards: ignored
	check("mongo", 3, 10)
	save("mongo", 3, 10) // same: ignored
	check("mongo", 3, 10)
	save("mongo", 3, 11)
	check("mongo", 3, 11)
	save("mongo", 4, 2)
	save("redis", 3, 7)
	check("mongo", 3, 11)
	check("mongo", 4, 2)
	check("redis", 3, 7)
}

func TestSaveCheckpointRejectsHugePosition(t *testing.T) {
	eachMode(t, testSaveCheckpointRejectsHugePosition)
}

func testSaveCheckpointRejectsHugePosition(t *testing.T, mode evmongo.Config) {
	e := startEnv(t)
	s, _ := e.store(t, inMode(mode, evmongo.Config{}))
	if err := s.SaveCheckpoint(ctx(t), "mongo", 0, 1<<63); err == nil {
		t.Error("SaveCheckpoint(1<<63) succeeded; a BSON int64 cannot hold it")
	}
}
