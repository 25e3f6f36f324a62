package main

import (
	"context"
	"fmt"
	"net/url"

	"path/filepath"

	"github.com/wardhealth/ward/internal/z3/blob"
)

// openBlobs opens Z3's byte store: files under the data directory, or the
// S3-compatible store named by --z3-backend (keys from the environment, so
// they never show in a process list).
func openBlobs(ctx context.Context, c config) (blob.Backend, error) {
	if c.Z3Backend == "" {
		return blob.NewFS(filepath.Join(c.DataDir, "z3"))
	}
	u, err := url.Parse(c.Z3Backend)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("--z3-backend must look like s3://bucket/prefix?endpoint=https://host&region=us-east-1, not %q", c.Z3Backend)
	}
	q := u.Query()
	if q.Get("endpoint") == "" {
		return nil, fmt.Errorf("--z3-backend needs ?endpoint=https://host (the S3-compatible server)")
	}
	return newS3(ctx, c, u, q)
}
