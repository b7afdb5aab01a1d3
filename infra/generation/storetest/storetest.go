// Package storetest checks that a generation.Store keeps records as the
// contract says; each store's tests run it against a real server.
package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/evflow/evflow/infra/generation"
)

// Records checks Create, Load, Save and Update on projection's record in
// s, which must have none yet.
func Records(t *testing.T, ctx context.Context, s generation.Store, projection string) {
	t.Helper()
	lost := generation.Record{Live: "_g1", Target: map[int]uint64{0: 7, 3: 9}, Previous: generation.Original}
	got, err := s.Create(ctx, projection, lost)
	if err != nil || !reflect.DeepEqual(got, lost) {
		t.Fatalf("Create = %+v, %v; want %+v", got, err, lost)
	}
	if got, found, err := s.Load(ctx, projection); err != nil || !found || !reflect.DeepEqual(got, lost) {
		t.Fatalf("Load = %+v, %v, %v; want %+v", got, found, err, lost)
	}

	ready := generation.Record{Live: "_g1", Ready: true}
	stale := generation.Record{Live: "_g1", Ready: true} // not what is stored: ready differs
	if ok, err := s.Update(ctx, projection, stale, generation.Record{Live: "_g9", Ready: true}); err != nil || ok {
		t.Fatalf("Update from a stale record = %v, %v; want false", ok, err)
	}
	if ok, err := s.Update(ctx, projection, lost, ready); err != nil || !ok {
		t.Fatalf("Update from the stored record = %v, %v; want true", ok, err)
	}
	if got, _, err := s.Load(ctx, projection); err != nil || !reflect.DeepEqual(got, ready) {
		t.Fatalf("after Update, Load = %+v, %v; want %+v (no field of the old record kept)", got, err, ready)
	}
	// A replay starting: the replica's late update, made from the record
	// it saw before, must not erase it.
	building := generation.Record{Live: "_g1", Ready: true, Building: "_g2", From: "beginning"}
	if ok, err := s.Update(ctx, projection, ready, building); err != nil || !ok {
		t.Fatalf("Update to building = %v, %v; want true", ok, err)
	}
	if ok, err := s.Update(ctx, projection, ready, ready); err != nil || ok {
		t.Fatalf("Update from the record before the replay started = %v, %v; want false", ok, err)
	}
	if got, _, _ := s.Load(ctx, projection); !reflect.DeepEqual(got, building) {
		t.Fatalf("Load = %+v; want %+v", got, building)
	}
	if ok, err := s.Update(ctx, "no-record-"+projection, generation.Record{}, ready); err != nil || ok {
		t.Fatalf("Update of a missing record = %v, %v; want false", ok, err)
	}
}
