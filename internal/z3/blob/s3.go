package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config names an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...).
type S3Config struct {
	Endpoint        string // https://s3.us-east-1.amazonaws.com or http://127.0.0.1:9000
	Region          string
	Bucket          string
	AccessKeyID     string
	SecretAccessKey string
	Prefix          string // keys are stored under Prefix/ in the bucket
	PathStyle       bool   // bucket in the path (most self-hosted servers), not the host name
}

// S3 keeps blobs as objects of one bucket. An S3 PUT is atomic: readers
// see the old object, none, or the whole new one.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
}

var _ Backend = (*S3)(nil)

// partSize bounds the memory one streaming upload holds (minio-go buffers
// one part at a time when the size is unknown).
const partSize = 16 << 20

// NewS3 connects and checks the bucket exists.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("blob: S3 endpoint must be an http(s) URL, not %q", cfg.Endpoint)
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3 client: %w", err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("blob: S3 bucket %q: %w", cfg.Bucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("blob: S3 bucket %q does not exist", cfg.Bucket)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{c: c, bucket: cfg.Bucket, prefix: prefix}, nil
}

// countingHash hashes and counts what is read through it.
type countingHash struct {
	r io.Reader
	h io.Writer
	n int64
}

func (c *countingHash) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// Put implements Backend, streaming in parts.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	h := sha256.New()
	cr := &countingHash{r: ctxReader{ctx, r}, h: h}
	// A body that fits in one part goes up as one PUT of known length;
	// a larger one streams as a multipart upload, a part at a time.
	head := make([]byte, partSize)
	n, err := io.ReadFull(cr, head)
	var body io.Reader
	size := int64(-1)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		body, size = bytes.NewReader(head[:n]), int64(n)
	case err != nil:
		return Info{}, fmt.Errorf("blob put: %w", err)
	default:
		body = io.MultiReader(bytes.NewReader(head), cr)
	}
	_, err = s.c.PutObject(ctx, s.bucket, s.prefix+key, body, size, minio.PutObjectOptions{PartSize: partSize,
		ContentType: "application/octet-stream", DisableContentSha256: true})
	if err != nil {
		return Info{}, fmt.Errorf("blob put: %w", err)
	}
	return Info{Size: cr.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Get implements Backend with a ranged GET.
func (s *S3) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	opts := minio.GetObjectOptions{}
	switch {
	case n == 0:
		return io.NopCloser(strings.NewReader("")), nil
	case n > 0:
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, err
		}
	case off > 0:
		if err := opts.SetRange(off, 0); err != nil {
			return nil, err
		}
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, opts)
	if err != nil {
		return nil, fmt.Errorf("blob get: %w", err)
	}
	// GetObject is lazy: Stat surfaces a missing key now.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("blob get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("blob get: %w", err)
	}
	return obj, nil
}

// Delete implements Backend.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
		return fmt.Errorf("blob delete: %w", err)
	}
	return nil
}

// List implements Backend.
func (s *S3) List(ctx context.Context, prefix string, fn func(key string, size int64) error) error {
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("blob list: %w", obj.Err)
		}
		if err := fn(strings.TrimPrefix(obj.Key, s.prefix), obj.Size); err != nil {
			return err
		}
	}
	return nil
}
