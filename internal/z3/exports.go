package z3

import (
	"context"
	"fmt"
	"io"
)

// exportBucket is the internal bucket that holds FHIR bulk export files
// (package fhir/bulk), under one folder per job.
const exportBucket = "_fhir-export"

// Exports stores bulk export output in Z3 (it is fhir/bulk's Files).
type Exports struct{ s *Service }

// Exports returns the export file store over s.
func (s *Service) Exports() Exports { return Exports{s: s} }

// PutExport stores r at path, replacing any file there.
func (e Exports) PutExport(ctx context.Context, projectID, path string, r io.Reader) error {
	if err := e.s.ensureBucket(ctx, projectID, exportBucket); err != nil {
		return err
	}
	_, err := e.s.Put(ctx, projectID, exportBucket, path, "application/fhir+ndjson", r)
	return err
}

// OpenExport returns the bytes and size of the file at path.
func (e Exports) OpenExport(ctx context.Context, projectID, path string) (io.ReadCloser, int64, error) {
	o, err := e.s.Get(ctx, projectID, exportBucket, path)
	if err != nil {
		return nil, 0, err
	}
	rc, err := o.Read(ctx, 0, -1)
	if err != nil {
		return nil, 0, fmt.Errorf("export file %s: %w", path, err)
	}
	return rc, o.Size, nil
}

// DeleteExports removes the files under folder (or the one file folder
// names, without a trailing slash).
func (e Exports) DeleteExports(ctx context.Context, projectID, folder string) error {
	_, err := e.s.DeleteFolder(ctx, projectID, exportBucket, folder, func(string) error { return nil })
	return err
}
