package fhir

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wardhealth/ward/internal/fault"
)

// BinarySweeper is a BinaryStore that can list and delete contents (Z3's
// in Ward): what SweepBinaries needs.
type BinarySweeper interface {
	// ListBinaries returns the keys of the project's contents last
	// written before before.
	ListBinaries(ctx context.Context, projectID string, before time.Time) ([]string, error)
	// DeleteBinary removes one content. Errors: fault.ErrNotFound.
	DeleteBinary(ctx context.Context, projectID, key string) error
}

// SweepBinaries deletes the Binary contents in the blob store that no
// version of any Binary names, written more than grace ago, and returns
// how many it deleted.
//
// A content is put before the version that names it commits, so a write
// that fails after its put (a version conflict, a refused resource, a
// crash) leaves a content nothing names. Every version keeps its own
// content (history reads it), and Ward removes no version (no $expunge,
// no project deletion), so a named content is never deleted: once a
// version is gone by any future means, this sweep is what frees its bytes,
// with no dangling reference (a key is fresh per put, and only versions
// naming an existing key copy it, so an old key nothing names stays
// unnamed) and no orphan (a crash mid-sweep leaves work for the next one).
// grace only has to outlast a put's commit.
func (s *Service) SweepBinaries(ctx context.Context, grace time.Duration) (int, error) {
	bs, ok := s.cfg.Binaries.(BinarySweeper)
	if !ok {
		return 0, nil
	}
	projects, err := s.store.ListProjects(ctx)
	if err != nil {
		return 0, fmt.Errorf("binary sweep: %w", err)
	}
	cutoff, n := s.now().Add(-grace), 0
	for _, p := range projects {
		keys, err := bs.ListBinaries(ctx, p.ID, cutoff)
		if err != nil {
			return n, fmt.Errorf("binary sweep: %w", err)
		}
		if len(keys) == 0 {
			continue
		}
		// Listed first: a version committed after the scan names a key
		// put after the cutoff, or one a scanned version names.
		named := map[string]bool{}
		err = s.store.EachVersionContaining(ctx, p.ID, "Binary", binaryBlobURL, func(content []byte) error {
			_, _, key, _, err := binaryParts(content)
			if err != nil {
				// A version it cannot read might name any key: delete none.
				return fmt.Errorf("project %s: a stored Binary: %w", p.ID, err)
			}
			if key != "" {
				named[key] = true
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("binary sweep: %w", err)
		}
		for _, key := range keys {
			if named[key] {
				continue
			}
			if err := bs.DeleteBinary(ctx, p.ID, key); err != nil && !errors.Is(err, fault.ErrNotFound) {
				return n, fmt.Errorf("binary sweep: %w", err)
			}
			n++
		}
	}
	return n, nil
}
