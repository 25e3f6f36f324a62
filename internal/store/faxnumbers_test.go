package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// testFaxNumbers: one number per project (a second is a conflict), the
// same number in two projects is theirs each, removal is per project.
func testFaxNumbers(t *testing.T, s *store.Store) {
	ctx := context.Background()
	add := func(p, n string, after int) error {
		return s.AddFaxNumber(ctx, store.FaxNumber{ProjectID: p, Number: n, Provider: "local", CreatedAt: t0.Add(time.Duration(after) * time.Minute)})
	}
	if err := add("p1", "+15550000002", 1); err != nil {
		t.Fatal(err)
	}
	if err := add("p2", "+15550000002", 0); err != nil {
		t.Fatal("the same number in another project:", err)
	}
	if err := add("p1", "+15550000001", 2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second number: %v, want ErrConflict (one per project)", err)
	}
	got, err := s.FaxNumbers(ctx, "p1")
	if err != nil || len(got) != 1 || got[0].Number != "+15550000002" || got[0].Provider != "local" || !got[0].CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("p1 numbers = %+v, %v", got, err)
	}
	if err := s.RemoveFaxNumber(ctx, "p1", "+15550000001"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("remove a number the project does not have: %v, want ErrNotFound", err)
	}
	if err := s.RemoveFaxNumber(ctx, "p1", "+15550000002"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FaxNumbers(ctx, "p1"); len(got) != 0 {
		t.Fatalf("after removal = %+v", got)
	}
	if got, _ := s.FaxNumbers(ctx, "p2"); len(got) != 1 {
		t.Fatalf("p2's number went with p1's: %+v", got)
	}
	if err := add("p1", "+15550000001", 3); err != nil {
		t.Fatal("onboarding again after offboarding:", err)
	}
	if got, _ := s.FaxNumbers(ctx, "none"); got == nil || len(got) != 0 {
		t.Fatalf("no numbers = %#v, want empty", got)
	}
}
