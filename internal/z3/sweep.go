package z3

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SweepOrphans deletes the blobs no object points at that were last
// written more than grace ago, and returns how many it deleted.
//
// Put writes a blob before the row that points at it commits, and deletes
// a replaced or deleted object's blob after its commit; a crash (or a
// failed delete) between the two leaves a blob nothing serves. A blob's key
// appears in the backend only once its Put has ended (FS renames a finished
// file, S3 completes the upload), so one written grace ago whose row is
// still missing will never get one: grace only has to outlast the moment
// between the end of a Put and its commit. Only keys of Ward's own shape
// (project id / blob id) are considered, so a bucket or directory shared
// with other data keeps that data.
func (s *Service) SweepOrphans(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	var orphans []string // few: the listing is checked as it goes
	err := s.blobs.List(ctx, "", func(key string, _ int64, modified time.Time) error {
		project, ok := ownedKey(key)
		if !ok || !modified.Before(cutoff) {
			return nil
		}
		inUse, err := s.st.BlobInUse(ctx, project, key)
		if err != nil {
			return err
		}
		if !inUse {
			orphans = append(orphans, key)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("z3 sweep: %w", err)
	}
	for i, key := range orphans {
		if err := s.blobs.Delete(ctx, key); err != nil {
			return i, fmt.Errorf("z3 sweep: %w", err)
		}
		s.log.InfoContext(ctx, "z3: deleted an orphaned blob", "blob", key)
	}
	return len(orphans), nil
}

// ownedKey splits a blob key Put made (projectID + "/" + a UUID) and
// reports whether key has that shape.
func ownedKey(key string) (project string, ok bool) {
	project, id, found := strings.Cut(key, "/")
	if !found || project == "" {
		return "", false
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return "", false
	}
	return project, true
}
