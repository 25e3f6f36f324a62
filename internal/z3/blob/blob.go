// Package blob stores Z3's bytes: opaque blobs by key, on the local
// filesystem or an S3-compatible store. Metadata lives in the database; a
// blob is written once under a fresh key and never overwritten in place.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Backend stores opaque byte blobs by key. Keys are chosen by the caller: ASCII,
// '/'-separated, no "..", at most 512 bytes (e.g. "<projectID>/<blobID>"); every
// Put uses a fresh key, so backends never overwrite in place.
type Backend interface {
	// Put streams r into key. It is atomic: after a crash (kill -9) at any point,
	// key either does not exist or holds all of r. It returns the size and the
	// hex SHA-256 of what was stored. It must not buffer the whole body in memory.
	Put(ctx context.Context, key string, r io.Reader) (Info, error)
	// Get returns n bytes of key starting at off (n < 0: to the end).
	// A missing key gives an error matching ErrNotFound.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every key with the prefix (for garbage collection of orphans).
	List(ctx context.Context, prefix string, fn func(key string, size int64) error) error
}

// Info describes a stored blob.
type Info struct {
	Size   int64
	SHA256 string
}

// ErrNotFound: no blob has the key.
var ErrNotFound = errors.New("blob: not found")

const maxKey = 512

// checkKey rejects keys that could escape the backend's namespace.
func checkKey(key string) error {
	if key == "" || len(key) > maxKey || strings.HasPrefix(key, "/") {
		return fmt.Errorf("blob: invalid key %q", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, tmpPrefix) {
			return fmt.Errorf("blob: invalid key %q", key)
		}
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e || c == '\\' {
			return fmt.Errorf("blob: invalid key %q", key)
		}
	}
	return nil
}
