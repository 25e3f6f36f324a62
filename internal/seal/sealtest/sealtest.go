// Package sealtest gives tests a master key set up on their store.
package sealtest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// Setup makes a fresh master key the key of st (as a first start does)
// and returns its sealer.
func Setup(t testing.TB, st *store.Store) *seal.Sealer {
	t.Helper()
	s, err := seal.New(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := seal.Setup(context.Background(), st, s, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("seal setup: %v", err)
	}
	return s
}
