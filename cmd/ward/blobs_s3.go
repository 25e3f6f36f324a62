package main

import (
	"context"
	"errors"
	"net/url"

	"github.com/wardhealth/ward/internal/z3/blob"
)

// newS3 opens the S3-compatible backend.
func newS3(ctx context.Context, u *url.URL, q url.Values) (blob.Backend, error) {
	return nil, errors.New("the S3 backend is not in this build yet: leave --z3-backend empty")
}
