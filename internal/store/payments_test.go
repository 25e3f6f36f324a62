package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// testPayments: of concurrent claims of one key exactly one wins and all
// see the same row; updates keep what they do not name; a stale pending
// charge is taken over once; the latest charge of an encounter and the
// charge of a provider id are found, in their project only; local cards
// keep one default.
func testPayments(t *testing.T, s *store.Store) {
	ctx := context.Background()
	c := store.Charge{ProjectID: "p1", Key: "k1", EncounterID: "e1", Provider: "stripe", Status: store.ChargePending,
		Amount: 1250, Currency: "usd", CreatedAt: t0, UpdatedAt: t0}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, claimed, err := s.ClaimCharge(ctx, c)
			if err != nil {
				t.Error(err)
				return
			}
			if claimed {
				wins.Add(1)
			}
			if got.Key != "k1" || got.Amount != 1250 || got.Status != store.ChargePending {
				t.Errorf("claim returned %+v", got)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d claims won, want 1", wins.Load())
	}
	// Another project's key of the same name is its own.
	if _, claimed, err := s.ClaimCharge(ctx, store.Charge{ProjectID: "p2", Key: "k1", EncounterID: "e1", Provider: "local",
		Status: store.ChargePending, Currency: "usd", CreatedAt: t0, UpdatedAt: t0}); err != nil || !claimed {
		t.Fatalf("other project's claim = %v, %v", claimed, err)
	}
	// Stale take-over: not before the deadline, once after it.
	if ok, err := s.TakeOverCharge(ctx, "p1", "k1", t0, t0.Add(time.Minute)); err != nil || ok {
		t.Fatalf("take over of a fresh charge = %v, %v", ok, err)
	}
	later := t0.Add(time.Hour)
	if ok, err := s.TakeOverCharge(ctx, "p1", "k1", t0.Add(time.Second), later); err != nil || !ok {
		t.Fatalf("take over of a stale charge = %v, %v", ok, err)
	}
	if ok, _ := s.TakeOverCharge(ctx, "p1", "k1", t0.Add(time.Second), later); ok {
		t.Fatal("a second take-over won too")
	}
	if err := s.UpdateCharge(ctx, store.Charge{ProjectID: "p1", Key: "k1", IntentID: "pi_1", ReconciliationID: "r1", UpdatedAt: later}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateCharge(ctx, store.Charge{ProjectID: "p1", Key: "k1", Status: "succeeded", Card: `{"brand":"visa"}`, UpdatedAt: later}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCharge(ctx, "p1", "k1")
	if err != nil || got.Status != "succeeded" || got.IntentID != "pi_1" || got.ReconciliationID != "r1" || got.Card != `{"brand":"visa"}` {
		t.Fatalf("after updates: %+v, %v", got, err)
	}
	if err := s.UpdateCharge(ctx, store.Charge{ProjectID: "p1", Key: "nope", Status: "failed"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing charge: %v", err)
	}
	if _, _, err := s.ClaimCharge(ctx, store.Charge{ProjectID: "p1", Key: "k2", EncounterID: "e1", Provider: "stripe", Status: "failed",
		Currency: "usd", CreatedAt: t0.Add(time.Minute), UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// One live charge per encounter: another key is refused while k1 has
	// not failed, and the answer is k1.
	k3 := store.Charge{ProjectID: "p1", Key: "k3", EncounterID: "e1", Provider: "stripe", Status: store.ChargePending,
		Currency: "usd", CreatedAt: t0.Add(time.Minute), UpdatedAt: t0}
	if got, claimed, err := s.ClaimCharge(ctx, k3); err != nil || claimed || got.Key != "k1" {
		t.Fatalf("second live charge of e1: %+v, %v, %v; want k1, not claimed", got, claimed, err)
	}
	if l, err := s.LatestCharge(ctx, "p1", "e1"); err != nil || l.Key != "k2" {
		t.Fatalf("latest = %+v, %v", l, err)
	}
	if _, err := s.LatestCharge(ctx, "p3", "e1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("latest in another project: %v", err)
	}
	if b, err := s.ChargeByIntent(ctx, "p1", "pi_1"); err != nil || b.Key != "k1" {
		t.Fatalf("by intent = %+v, %v", b, err)
	}
	for _, tc := range []struct{ project, intent string }{{"p2", "pi_1"}, {"p1", ""}} {
		if _, err := s.ChargeByIntent(ctx, tc.project, tc.intent); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("by intent %q in %s: %v", tc.intent, tc.project, err)
		}
	}

	if err := s.UpdateCharge(ctx, store.Charge{ProjectID: "p1", Key: "k1", Status: "failed", UpdatedAt: later}); err != nil {
		t.Fatal(err)
	}
	if got, claimed, err := s.ClaimCharge(ctx, k3); err != nil || !claimed || got.Key != "k3" {
		t.Fatalf("after k1 failed: %+v, %v, %v; want k3 claimed", got, claimed, err)
	}

	// Local cards.
	for i, id := range []string{"pm_a", "pm_b"} {
		if err := s.AddLocalMethod(ctx, store.LocalMethod{ProjectID: "p1", CustomerID: "cus", ID: id, Brand: "visa", LastFour: "4242",
			ExpMonth: 12, ExpYear: 2030, CreatedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	defaults := func() []string {
		t.Helper()
		ms, err := s.LocalMethods(ctx, "p1", "cus")
		if err != nil {
			t.Fatal(err)
		}
		var d []string
		for _, m := range ms {
			if m.Default {
				d = append(d, m.ID)
			}
		}
		return d
	}
	if d := defaults(); len(d) != 1 || d[0] != "pm_a" {
		t.Fatalf("defaults = %v, want the first card", d)
	}
	if err := s.SetLocalDefault(ctx, "p1", "cus", "pm_b"); err != nil {
		t.Fatal(err)
	}
	if d := defaults(); len(d) != 1 || d[0] != "pm_b" {
		t.Fatalf("defaults = %v, want pm_b", d)
	}
	for _, tc := range []struct{ project, customer, id string }{{"p1", "cus", "pm_x"}, {"p2", "cus", "pm_a"}, {"p1", "other", "pm_a"}} {
		if err := s.SetLocalDefault(ctx, tc.project, tc.customer, tc.id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("set default %v: %v", tc, err)
		}
		if err := s.DeleteLocalMethod(ctx, tc.project, tc.customer, tc.id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete %v: %v", tc, err)
		}
	}
	if d := defaults(); len(d) != 1 || d[0] != "pm_b" {
		t.Fatalf("defaults after refused calls = %v", d)
	}
	if err := s.DeleteLocalMethod(ctx, "p1", "cus", "pm_b"); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.LocalMethods(ctx, "p1", "cus"); len(ms) != 1 || ms[0].ID != "pm_a" {
		t.Fatalf("after delete: %+v", ms)
	}
}
