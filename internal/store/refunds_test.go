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

// testRefunds: refunds need a succeeded charge; concurrent claims never
// add up to more than was charged; a retried key returns its row (even
// once nothing is left); "the rest" (Amount 0) takes what is left; a
// failed refund frees its amount; another project's charge is not found.
func testRefunds(t *testing.T, s *store.Store) {
	ctx := context.Background()
	charge := store.Charge{ProjectID: "p1", Key: "c1", EncounterID: "e1", Provider: "local", Status: store.ChargePending,
		Amount: 1000, Currency: "usd", CreatedAt: t0, UpdatedAt: t0}
	if _, _, err := s.ClaimCharge(ctx, charge); err != nil {
		t.Fatal(err)
	}
	refund := func(key string, amount int64) store.Refund {
		return store.Refund{ProjectID: "p1", Key: key, ChargeKey: "c1", EncounterID: "e1", Provider: "local",
			Status: store.ChargePending, Amount: amount, CreatedAt: t0, UpdatedAt: t0}
	}
	if _, _, err := s.ClaimRefund(ctx, refund("r0", 100)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("refund of a pending charge: %v, want ErrConflict", err)
	}
	if err := s.UpdateCharge(ctx, store.Charge{ProjectID: "p1", Key: "c1", Status: "succeeded", UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClaimRefund(ctx, store.Refund{ProjectID: "p2", Key: "r0", ChargeKey: "c1", Amount: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refund of another project's charge: %v, want ErrNotFound", err)
	}
	// Eight concurrent refunds of 300 of 1000: three fit.
	var wins, over atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, claimed, err := s.ClaimRefund(ctx, refund(string(rune('a'+i)), 300))
			switch {
			case errors.Is(err, store.ErrRefundLimit):
				over.Add(1)
			case err != nil:
				t.Error(err)
			case claimed:
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 3 || over.Load() != 5 {
		t.Fatalf("%d refunds won, %d over the limit; want 3 and 5", wins.Load(), over.Load())
	}
	// Retrying a winner's key returns it, though nothing more fits.
	var winner store.Refund
	for i := range 8 {
		if f, err := s.GetRefund(ctx, "p1", string(rune('a'+i))); err == nil {
			winner = f
			break
		}
	}
	got, claimed, err := s.ClaimRefund(ctx, refund(winner.Key, 300))
	if err != nil || claimed || got.Key != winner.Key || got.Amount != 300 || got.Currency != "usd" {
		t.Fatalf("retried refund = %+v, %v, %v", got, claimed, err)
	}
	// The rest is 100; a failed refund frees its 300.
	if err := s.UpdateRefund(ctx, store.Refund{ProjectID: "p1", Key: winner.Key, Status: "failed", RefundID: "re_1", UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	rest, claimed, err := s.ClaimRefund(ctx, refund("rest", 0))
	if err != nil || !claimed || rest.Amount != 400 {
		t.Fatalf("refund of the rest = %+v, %v, %v; want 400", rest, claimed, err)
	}
	if _, _, err := s.ClaimRefund(ctx, refund("more", 0)); !errors.Is(err, store.ErrRefundLimit) {
		t.Fatalf("refund of nothing left: %v", err)
	}
	// A released pending refund frees its amount too.
	if err := s.ReleaseRefund(ctx, "p1", "rest"); err != nil {
		t.Fatal(err)
	}
	if _, claimed, err := s.ClaimRefund(ctx, refund("rest2", 400)); err != nil || !claimed {
		t.Fatalf("after release: %v, %v", claimed, err)
	}
	if f, err := s.RefundByProviderID(ctx, "p1", "re_1"); err != nil || f.Key != winner.Key {
		t.Fatalf("by provider id: %+v, %v", f, err)
	}
	if _, err := s.RefundByProviderID(ctx, "p2", "re_1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project's refund id: %v", err)
	}
	// Take-over: once, and only when stale.
	if ok, _ := s.TakeOverRefund(ctx, "p1", "rest2", t0, t0.Add(time.Hour)); ok {
		t.Fatal("took over a fresh refund")
	}
	if ok, err := s.TakeOverRefund(ctx, "p1", "rest2", t0.Add(time.Second), t0.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("take over = %v, %v", ok, err)
	}
	if err := s.UpdateRefund(ctx, store.Refund{ProjectID: "p1", Key: "nope", Status: "failed"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing refund: %v", err)
	}
}
