package main

import (
	"context"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/z3/blob"
)

// newS3 opens the S3-compatible backend; keys come from the environment.
func newS3(ctx context.Context, c config, u *url.URL, q url.Values) (blob.Backend, error) {
	return blob.NewS3(ctx, blob.S3Config{
		Endpoint:        q.Get("endpoint"),
		Region:          q.Get("region"),
		Bucket:          u.Host,
		Prefix:          strings.Trim(u.Path, "/"),
		PathStyle:       q.Get("path-style") == "true",
		AccessKeyID:     c.Z3AccessKey,
		SecretAccessKey: c.Z3SecretKey,
	})
}
