package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

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

// S3 keeps blobs as objects of one bucket. An S3 PUT, and the completion of
// a multipart upload, is atomic: the object appears whole or not at all.
// An upload a crash interrupts leaves invisible parts, which the bucket's
// lifecycle rule (AbortIncompleteMultipartUpload) or SweepUploads removes.
//
// An S3 must not be copied after first use.
type S3 struct {
	c      minio.Core
	bucket string
	prefix string
	// signParts: over plain HTTP each part is signed with its SHA-256, so
	// the server checks its integrity; over HTTPS, TLS does.
	signParts bool
	// parts recycles the part buffers: a large Put holds exactly one.
	parts sync.Pool
}

var _ Backend = (*S3)(nil)

const (
	// partSize bounds the memory an upload holds (one part, since S3 needs
	// each part's length before sending it) and the largest object:
	// maxParts of 16 MiB is 156 GiB.
	partSize = 16 << 20
	maxParts = 10000 // S3's limit
	// headSize is read first: a body that ends within it needs no part
	// buffer, so small objects cost small memory.
	headSize = 64 << 10
	// abortTimeout bounds the cleanup of a failed multipart upload, which
	// runs even when the caller's context is gone.
	abortTimeout = 30 * time.Second
)

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
	c, err := minio.NewCore(u.Host, &minio.Options{
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
	s := &S3{c: *c, bucket: cfg.Bucket, prefix: prefix, signParts: u.Scheme == "http"}
	s.parts.New = func() any { b := make([]byte, partSize); return &b }
	return s, nil
}

// putOpts: the payload hash is ours to give (putOne, putParts), never
// minio-go's streaming signature, which re-hashes every 64 KiB chunk.
var putOpts = minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true}

// Put implements Backend. A body of up to one part goes up as one PUT; a
// larger one as a multipart upload, one part in memory at a time. Either
// way the SHA-256 is computed as the body streams through.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	h := sha256.New()
	src := io.TeeReader(ctxReader{ctx, r}, h)
	head := make([]byte, headSize)
	n, eof, err := readFull(src, head)
	if err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	if eof {
		return s.putOne(ctx, key, head[:n], h.Sum(nil))
	}
	bp := s.parts.Get().(*[]byte)
	defer s.parts.Put(bp)
	part := *bp
	copy(part, head)
	m, eof, err := readFull(src, part[n:])
	if err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	if eof {
		return s.putOne(ctx, key, part[:n+m], h.Sum(nil))
	}
	return s.putParts(ctx, key, src, part, h)
}

// putOne stores body with a single PUT, signed with its SHA-256 (known
// already, so the server's integrity check is free).
func (s *S3) putOne(ctx context.Context, key string, body, sum []byte) (Info, error) {
	hexSum := hex.EncodeToString(sum)
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(body), int64(len(body)), "", hexSum, putOpts)
	if err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	return Info{Size: int64(len(body)), SHA256: hexSum}, nil
}

// putParts uploads part (full) and the rest of src as a multipart upload,
// reusing part for every part. Nothing is visible until the completion;
// on any error the upload is aborted so its parts are not billed forever.
func (s *S3) putParts(ctx context.Context, key string, src io.Reader, part []byte, h hash.Hash) (info Info, err error) {
	name := s.prefix + key
	id, err := s.c.NewMultipartUpload(ctx, s.bucket, name, putOpts)
	if err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
			defer cancel()
			_ = s.c.AbortMultipartUpload(actx, s.bucket, name, id)
		}
	}()
	var done []minio.CompletePart
	size := int64(0)
	n, eof := len(part), false
	for {
		opts := minio.PutObjectPartOptions{DisableContentSha256: true}
		if s.signParts {
			sum := sha256.Sum256(part[:n])
			opts.Sha256Hex = hex.EncodeToString(sum[:])
		}
		p, err := s.c.PutObjectPart(ctx, s.bucket, name, id, len(done)+1, bytes.NewReader(part[:n]), int64(n), opts)
		if err != nil {
			return Info{}, fmt.Errorf("blob put %s: part %d: %w", key, len(done)+1, err)
		}
		done = append(done, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
		size += int64(n)
		if eof {
			break
		}
		if n, eof, err = readFull(src, part); err != nil {
			return Info{}, fmt.Errorf("blob put %s: %w", key, err)
		}
		if n == 0 {
			break // the body ended on a part boundary; S3 takes no empty part
		}
		if len(done) == maxParts {
			return Info{}, fmt.Errorf("blob put %s: larger than %d parts of %d bytes", key, maxParts, partSize)
		}
	}
	if _, err := s.c.CompleteMultipartUpload(ctx, s.bucket, name, id, done, putOpts); err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	return Info{Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Get implements Backend with a ranged GET.
func (s *S3) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("blob get %s: %w", key, errNegativeOffset)
	}
	opts := minio.GetObjectOptions{}
	switch {
	case n == 0:
		// No empty Range in HTTP: check the object exists, send nothing.
		if _, err := s.c.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{}); err != nil {
			return nil, s.getErr(key, err)
		}
		return io.NopCloser(strings.NewReader("")), nil
	case n > 0:
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, fmt.Errorf("blob get %s: %w", key, err)
		}
	case off > 0:
		if err := opts.SetRange(off, 0); err != nil {
			return nil, fmt.Errorf("blob get %s: %w", key, err)
		}
	}
	body, _, _, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, opts)
	if err != nil {
		// S3 answers 416 to a range starting at or past the end; a file
		// read there gives nothing, and so does this.
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.getErr(key, err)
	}
	if n > 0 {
		// A server that ignored the Range would send too much.
		return readCloser{io.LimitReader(body, n), body}, nil
	}
	return body, nil
}

func (s *S3) getErr(key string, err error) error {
	resp := minio.ToErrorResponse(err)
	// A HEAD has no body to carry the code: a 404 without one is the key.
	if resp.Code == "NoSuchKey" || (resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket") {
		return fmt.Errorf("blob get %s: %w", key, ErrNotFound)
	}
	return fmt.Errorf("blob get %s: %w", key, err)
}

// Delete implements Backend.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
		return fmt.Errorf("blob delete %s: %w", key, err)
	}
	return nil
}

// List implements Backend.
func (s *S3) List(ctx context.Context, prefix string, fn func(key string, size int64, modified time.Time) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	// Cancelling stops the listing goroutine when fn returns early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.c.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("blob list %q: %w", prefix, obj.Err)
		}
		key, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok {
			continue
		}
		if err := fn(key, obj.Size, obj.LastModified); err != nil {
			return err
		}
	}
	return nil
}

// SweepUploads aborts multipart uploads under the prefix started more than
// olderThan ago: what Puts interrupted by a crash left (their parts are
// invisible but stored). For buckets without a lifecycle rule doing the
// same. It returns how many it aborted.
func (s *S3) SweepUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	n := 0
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for u := range s.c.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if u.Err != nil {
			if minio.ToErrorResponse(u.Err).Code == "NoSuchUpload" {
				break // what some servers (gofakes3) answer when there are none
			}
			return n, fmt.Errorf("blob sweep: %w", u.Err)
		}
		if u.Initiated.After(cutoff) {
			continue
		}
		if err := s.c.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID); err != nil &&
			minio.ToErrorResponse(err).Code != "NoSuchUpload" {
			return n, fmt.Errorf("blob sweep %s: %w", u.Key, err)
		}
		n++
	}
	return n, nil
}
