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
	"time"
)

// Backend stores opaque byte blobs by key. Keys are chosen by the caller: ASCII,
// '/'-separated, no "..", at most 512 bytes (e.g. "<projectID>/<blobID>"); every
// Put uses a fresh key, so backends never overwrite in place.
//
// Every method rejects a key (or List prefix) that breaks these rules with
// an error matching ErrInvalidKey.
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
	// List calls fn for every key with the prefix, its size and when it was
	// last written (for garbage collection of orphans: a key appears only
	// once its Put is complete, so a recent time means a Put just ended).
	List(ctx context.Context, prefix string, fn func(key string, size int64, modified time.Time) error) error
}

// Info describes a stored blob.
type Info struct {
	Size   int64
	SHA256 string
}

// ErrNotFound: no blob has the key.
var ErrNotFound = errors.New("blob: not found")

// ErrDiskFull: the blob was not stored because the disk (or the user's
// quota) is full; nothing of it is left behind.
var ErrDiskFull = errors.New("blob: disk full")

// ErrInvalidKey: the key could escape the backend's namespace or is not one
// Ward makes. Keys come from Ward, so this is a bug, never a user error.
var ErrInvalidKey = errors.New("blob: invalid key")

// Get past the end of a blob gives fewer bytes (none at or after the end),
// as reading a file does; a negative offset is an error.
var errNegativeOffset = errors.New("blob: negative offset")

const (
	maxKey = 512
	// maxSegment is the longest file name most filesystems take (NAME_MAX);
	// enforced on every backend so keys stay portable between them.
	maxSegment = 255
)

// tmpPrefix marks a file still being written; a crash leaves it behind and
// SweepTemp removes it. No key segment may start with it, so a temporary
// file can never be mistaken for a blob (on any backend, to keep keys
// portable between them).
const tmpPrefix = ".tmp-"

// checkKey rejects keys that could escape the backend's namespace: on the
// filesystem a key is a path, so "..", absolute paths, odd bytes and
// over-long names matter.
func checkKey(key string) error {
	if key == "" || len(key) > maxKey {
		return fmt.Errorf("%w %q", ErrInvalidKey, key)
	}
	for i := 0; i < len(key); i++ {
		// Printable ASCII without '\' (a separator on Windows).
		if c := key[i]; c < 0x21 || c > 0x7e || c == '\\' {
			return fmt.Errorf("%w %q", ErrInvalidKey, key)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		// An empty segment also catches a leading '/' (absolute) and "a//b".
		if seg == "" || seg == "." || seg == ".." || len(seg) > maxSegment || strings.HasPrefix(seg, tmpPrefix) {
			return fmt.Errorf("%w %q", ErrInvalidKey, key)
		}
	}
	return nil
}

// checkPrefix accepts "" and anything a key could start with: a valid key,
// optionally followed by '/'.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("%w: list prefix %q", ErrInvalidKey, prefix)
	}
	return nil
}

// ctxReader stops a copy when the context ends (a client gone mid-upload):
// the blob is then abandoned, never committed.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readFull is io.ReadFull that also reports whether r ended: a short read
// at the end of the body is not an error here.
func readFull(r io.Reader, buf []byte) (n int, eof bool, err error) {
	n, err = io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return n, true, nil
	}
	return n, false, err
}
