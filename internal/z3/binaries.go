package z3

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
)

// binaryBucket is the internal bucket that holds the contents of large FHIR
// Binary resources, one object per Binary version.
const binaryBucket = "_fhir-binary"

// Binaries stores FHIR Binary contents in Z3 (it is the FHIR service's
// BinaryStore): each put is a new object under a fresh name, within the
// object size limit.
type Binaries struct{ s *Service }

// Binaries returns the Binary content store over s.
func (s *Service) Binaries() Binaries { return Binaries{s: s} }

// PutBinary streams r into a new object of the project and returns its
// name.
func (b Binaries) PutBinary(ctx context.Context, projectID, contentType string, r io.Reader) (string, error) {
	if err := b.s.ensureBucket(ctx, projectID, binaryBucket); err != nil {
		return "", err
	}
	key := uuid.NewString()
	if _, err := b.s.Put(ctx, projectID, binaryBucket, key, contentType, r); err != nil {
		return "", err
	}
	return key, nil
}

// OpenBinary returns the bytes and size of the object key.
func (b Binaries) OpenBinary(ctx context.Context, projectID, key string) (io.ReadCloser, int64, error) {
	o, err := b.s.Get(ctx, projectID, binaryBucket, key)
	if err != nil {
		return nil, 0, err
	}
	rc, err := o.Read(ctx, 0, -1)
	if err != nil {
		return nil, 0, fmt.Errorf("binary %s: %w", key, err)
	}
	return rc, o.Size, nil
}

// ListBinaries returns the project's Binary contents last written before
// before, by key.
func (b Binaries) ListBinaries(ctx context.Context, projectID string, before time.Time) ([]string, error) {
	objs, err := b.s.st.ListObjects(ctx, projectID, binaryBucket, "", 0)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, o := range objs {
		if o.UpdatedAt.Before(before) {
			keys = append(keys, o.Path)
		}
	}
	return keys, nil
}

// DeleteBinary removes the content key (its row now, its blob after the
// commit; a blob left by a crash is SweepOrphans'). Errors:
// fault.ErrNotFound.
func (b Binaries) DeleteBinary(ctx context.Context, projectID, key string) error {
	return b.s.Delete(ctx, projectID, binaryBucket, key)
}
