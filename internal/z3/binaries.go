package z3

import (
	"context"
	"fmt"
	"io"

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
