package main

import (
	"context"
	"net/url"
	"os"
	"strings"

	"github.com/wardhealth/ward/internal/z3/blob"
)

// newS3 opens the S3-compatible backend; keys come from the environment.
func newS3(ctx context.Context, u *url.URL, q url.Values) (blob.Backend, error) {
	return blob.NewS3(ctx, blob.S3Config{
		Endpoint:        q.Get("endpoint"),
		Region:          q.Get("region"),
		Bucket:          u.Host,
		Prefix:          strings.Trim(u.Path, "/"),
		PathStyle:       q.Get("path-style") == "true",
		AccessKeyID:     os.Getenv("WARD_Z3_S3_ACCESS_KEY"),
		SecretAccessKey: os.Getenv("WARD_Z3_S3_SECRET_KEY"),
	})
}
