// Package z3 is Ward's object storage: buckets and objects per project,
// presigned URLs, and the bytes in a blob backend (local files by default,
// or an S3-compatible store).
//
// Metadata (size, content type, sha256, last modified) lives in the database
// with the project id in every key; the bytes live in the backend under a
// fresh blob key per upload. An upload streams into a new blob first and then
// switches the object's row to it in one transaction, so a crash mid-upload
// leaves the previous object (or none), never a partial one. A blob whose row
// was replaced or deleted is removed after the commit; one orphaned by a
// crash between the two steps is never served (no row points at it) and
// SweepOrphans deletes it later.
package z3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/z3/blob"
)

// Config is Z3's tunables.
type Config struct {
	PublicURL      string        // base of presigned URLs (Ward's public URL), no trailing slash
	URLTTL         time.Duration // lifetime of presigned URLs; default 15 minutes
	MaxObjectBytes int64         // largest object; default 5 GiB
}

// Service is Z3.
type Service struct {
	cfg   Config
	st    *store.Store
	blobs blob.Backend
	sign  signer
	now   func() time.Time
	log   *slog.Logger
	hooks map[string]func(ctx context.Context, o store.Object) error
}

// urlKeyName is the server secret holding the URL-signing key.
const urlKeyName = "z3-url-key"

// New builds the service. The URL-signing key is shared by every replica
// through the database, sealed with the master key.
func New(ctx context.Context, cfg Config, st *store.Store, sealer *seal.Sealer, blobs blob.Backend, now func() time.Time, log *slog.Logger) (*Service, error) {
	if cfg.URLTTL <= 0 {
		cfg.URLTTL = 15 * time.Minute
	}
	if cfg.MaxObjectBytes <= 0 {
		cfg.MaxObjectBytes = 5 << 30
	}
	var sealed []byte
	err := st.WithTx(ctx, func(tx *store.Tx) error {
		if err := seal.Fence(ctx, tx, sealer); err != nil {
			return err
		}
		var err error
		sealed, err = tx.ServerSecret(ctx, urlKeyName, func() ([]byte, error) {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			// Hex inside the seal, as the key was stored before it was sealed.
			return sealer.Seal(seal.ServerSecret(urlKeyName), []byte(hex.EncodeToString(b))), nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("z3: %w", err)
	}
	key, err := sealer.Open(seal.ServerSecret(urlKeyName), sealed)
	if err != nil {
		return nil, fmt.Errorf("z3: the URL key: %w", err)
	}
	k, err := hex.DecodeString(string(key))
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("z3: the stored URL key is malformed")
	}
	return &Service{cfg: cfg, st: st, blobs: blobs, sign: signer{key: k, base: strings.TrimRight(cfg.PublicURL, "/")},
		now: now, log: log, hooks: map[string]func(context.Context, store.Object) error{}}, nil
}

// OnUpload registers fn to run after every upload into the internal bucket
// (a name starting with "_", which users cannot create or name in policies):
// the zambda service receives code zips this way.
func (s *Service) OnUpload(internalBucket string, fn func(ctx context.Context, o store.Object) error) {
	s.hooks[internalBucket] = fn
}

// Internal reports whether bucket is one of Ward's own.
func Internal(bucket string) bool { return strings.HasPrefix(bucket, "_") }

func mapStore(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fault.NotFound("%s", what)
	case errors.Is(err, store.ErrConflict):
		return fault.Conflict("%s", what)
	}
	return err
}

// ListBuckets returns the project's buckets.
func (s *Service) ListBuckets(ctx context.Context, projectID string) ([]store.Bucket, error) {
	return s.st.ListBuckets(ctx, projectID)
}

// CreateBucket makes a bucket. Errors: invalid name, name taken (409).
func (s *Service) CreateBucket(ctx context.Context, projectID, name string) (store.Bucket, error) {
	if err := ValidBucket(name); err != nil {
		return store.Bucket{}, err
	}
	b := store.Bucket{ProjectID: projectID, Name: name, ID: uuid.NewString(), CreatedAt: s.now()}
	if err := s.st.CreateBucket(ctx, b); err != nil {
		return store.Bucket{}, mapStore(err, fmt.Sprintf("bucket %q already exists in this project", name))
	}
	return b, nil
}

// DeleteBucket removes an empty bucket (409 while it holds objects).
func (s *Service) DeleteBucket(ctx context.Context, projectID, name string) error {
	err := s.st.DeleteBucket(ctx, projectID, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fault.NotFound("no bucket %q", name)
	case errors.Is(err, store.ErrConflict):
		return fault.Conflict("bucket %q is not empty: delete its objects first", name)
	}
	return err
}

// Entry is one listed object or, with direct listing, one sub-folder
// (Key ends in "/").
type Entry struct {
	Key          string    `json:"key"` // bucket/path
	LastModified time.Time `json:"lastModified"`
	Size         int64     `json:"size,omitempty"`
}

// maxList bounds one listing; it is not paged in the SDK's contract.
const maxList = 10000

// List returns the objects under folder ("" for the whole bucket). direct
// gives one level: the objects directly in folder and its sub-folders.
func (s *Service) List(ctx context.Context, projectID, bucket, folder string, direct bool) ([]Entry, error) {
	if _, err := s.st.GetBucket(ctx, projectID, bucket); err != nil {
		return nil, mapStore(err, fmt.Sprintf("no bucket %q", bucket))
	}
	objs, err := s.st.ListObjects(ctx, projectID, bucket, folder, maxList+1)
	if err != nil {
		return nil, err
	}
	if len(objs) > maxList {
		return nil, fault.TooLarge("more than %d objects under %q: list a sub-folder, or use direct=true", maxList, bucket+"/"+folder)
	}
	out := make([]Entry, 0, len(objs))
	folders := map[string]int{}
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Path, folder)
		if direct {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				sub := folder + rest[:i+1]
				if at, ok := folders[sub]; ok {
					if o.UpdatedAt.After(out[at].LastModified) {
						out[at].LastModified = o.UpdatedAt
					}
					continue
				}
				folders[sub] = len(out)
				out = append(out, Entry{Key: bucket + "/" + sub, LastModified: o.UpdatedAt})
				continue
			}
		}
		out = append(out, Entry{Key: bucket + "/" + o.Path, LastModified: o.UpdatedAt, Size: o.Size})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Presign returns a URL that uploads or downloads one object without a token,
// valid for the configured lifetime. The bucket must exist.
func (s *Service) Presign(ctx context.Context, projectID, bucket, path string, action Action) (string, time.Time, error) {
	if action != Upload && action != Download {
		return "", time.Time{}, fault.Invalid(`action must be "upload" or "download", not %q`, clip(string(action)))
	}
	if path == "" || strings.HasSuffix(path, "/") {
		return "", time.Time{}, fault.Invalid("a presigned URL names one object, not a folder: add a file name to %q", bucket+"/"+path)
	}
	if err := s.ensureBucket(ctx, projectID, bucket); err != nil {
		return "", time.Time{}, err
	}
	t := Target{ProjectID: projectID, Bucket: bucket, Path: path, Action: action, Expires: s.now().Add(s.cfg.URLTTL).Truncate(time.Second)}
	return s.sign.url(t), t.Expires, nil
}

// ensureBucket checks the bucket exists; Ward's internal buckets are made on
// first use.
func (s *Service) ensureBucket(ctx context.Context, projectID, bucket string) error {
	_, err := s.st.GetBucket(ctx, projectID, bucket)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if !Internal(bucket) {
		return fault.NotFound("no bucket %q", bucket)
	}
	err = s.st.CreateBucket(ctx, store.Bucket{ProjectID: projectID, Name: bucket, ID: uuid.NewString(), CreatedAt: s.now()})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	return nil
}

// Verify checks a presigned request for want (Upload for PUT, Download for
// GET and HEAD).
func (s *Service) Verify(projectID, bucket, path string, query map[string][]string, want Action) (Target, error) {
	return s.sign.verify(projectID, bucket, path, query, want, s.now())
}

// Put streams body into the object at bucket/path of the project, replacing
// any previous object only once every byte is stored.
func (s *Service) Put(ctx context.Context, projectID, bucket, path, contentType string, body io.Reader) (store.Object, error) {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	key := projectID + "/" + uuid.NewString()
	lim := &limitReader{r: body, left: s.cfg.MaxObjectBytes}
	info, err := s.blobs.Put(ctx, key, lim)
	if err != nil {
		_ = s.blobs.Delete(context.WithoutCancel(ctx), key)
		if lim.over {
			return store.Object{}, fault.TooLarge("the object is larger than the limit of %d bytes", s.cfg.MaxObjectBytes)
		}
		if errors.Is(err, blob.ErrDiskFull) {
			return store.Object{}, fault.Wrap(fault.ErrDiskFull, err, "disk full: the object was not stored; the server needs more free space")
		}
		return store.Object{}, fmt.Errorf("z3 put: %w", err)
	}
	o := store.Object{ProjectID: projectID, Bucket: bucket, Path: path, BlobKey: key, Size: info.Size,
		ContentType: contentType, SHA256: info.SHA256, UpdatedAt: s.now()}
	replaced, err := s.st.PutObject(ctx, o)
	if err != nil {
		_ = s.blobs.Delete(context.WithoutCancel(ctx), key)
		return store.Object{}, mapStore(err, fmt.Sprintf("no bucket %q", bucket))
	}
	if replaced != "" {
		s.dropBlobs(ctx, []string{replaced})
	}
	if hook := s.hooks[bucket]; hook != nil {
		if err := hook(ctx, o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Object is an object's metadata and a way to read its bytes.
type Object struct {
	store.Object
	blobs blob.Backend
}

// Read returns n bytes from off (n < 0: to the end).
func (o Object) Read(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	rc, err := o.blobs.Get(ctx, o.BlobKey, off, n)
	if err != nil {
		return nil, fmt.Errorf("z3 read %s/%s: %w", o.Bucket, o.Path, err)
	}
	return rc, nil
}

// Get returns the object at bucket/path.
func (s *Service) Get(ctx context.Context, projectID, bucket, path string) (Object, error) {
	o, err := s.st.GetObject(ctx, projectID, bucket, path)
	if err != nil {
		return Object{}, mapStore(err, fmt.Sprintf("no object %q", bucket+"/"+path))
	}
	return Object{Object: o, blobs: s.blobs}, nil
}

// Delete removes one object (404 if there is none).
func (s *Service) Delete(ctx context.Context, projectID, bucket, path string) error {
	keys, err := s.st.DeleteObjects(ctx, projectID, bucket, []string{path})
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fault.NotFound("no object %q", bucket+"/"+path)
	}
	s.dropBlobs(ctx, keys)
	return nil
}

// DeleteFolder removes every object under folder (ending in "/", or "" for
// the whole bucket). allow is asked about each object first; if it refuses
// any, nothing is deleted.
func (s *Service) DeleteFolder(ctx context.Context, projectID, bucket, folder string, allow func(path string) error) (int, error) {
	objs, err := s.st.ListObjects(ctx, projectID, bucket, folder, 0)
	if err != nil {
		return 0, err
	}
	paths := make([]string, 0, len(objs))
	for _, o := range objs {
		if err := allow(o.Path); err != nil {
			return 0, err
		}
		paths = append(paths, o.Path)
	}
	keys, err := s.st.DeleteObjects(ctx, projectID, bucket, paths)
	if err != nil {
		return 0, err
	}
	s.dropBlobs(ctx, keys)
	return len(keys), nil
}

// dropBlobs deletes blobs no row points at any more. A failure only leaves
// an orphan, which nothing serves, so it is logged and not returned.
func (s *Service) dropBlobs(ctx context.Context, keys []string) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range keys {
		if err := s.blobs.Delete(ctx, k); err != nil {
			s.log.WarnContext(ctx, "z3: could not delete a replaced blob", "blob", k, "err", err)
		}
	}
}

// limitReader fails a read once more than left bytes came through.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

var errTooLarge = errors.New("z3: object too large")

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.over = true
		return 0, errTooLarge
	}
	return n, err
}
