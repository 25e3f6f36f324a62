package blob

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tmpPrefix marks a file still being written; a crash leaves it behind and
// SweepTemp removes it. Keys may not use it.
const tmpPrefix = ".tmp-"

// FS keeps blobs as files under a root directory. Put writes a temporary
// file, fsyncs it, renames it into place and fsyncs the directory, so a
// crash leaves either no blob or the whole one.
type FS struct{ root string }

var _ Backend = (*FS)(nil)

// NewFS uses (and creates) root.
func NewFS(root string) (*FS, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return &FS{root: root}, nil
}

func (f *FS) path(key string) string { return filepath.Join(f.root, filepath.FromSlash(key)) }

// ctxReader stops a copy when the context ends (a client gone mid-upload).
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

// Put implements Backend.
func (f *FS) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	dst := f.path(key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Info{}, fmt.Errorf("blob put: %w", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	tmp := filepath.Join(dir, tmpPrefix+hex.EncodeToString(b))
	file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Info{}, fmt.Errorf("blob put: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			file.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	// A large buffer: fewer syscalls on big objects (the copy runs at disk speed).
	w := bufio.NewWriterSize(io.MultiWriter(file, h), 1<<20)
	n, err := io.CopyBuffer(w, ctxReader{ctx, r}, make([]byte, 1<<20))
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob put: %w", err)
	}
	if err := file.Sync(); err != nil {
		return Info{}, fmt.Errorf("blob put: %w", err)
	}
	if err := file.Close(); err != nil {
		return Info{}, fmt.Errorf("blob put: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Info{}, fmt.Errorf("blob put: %w", err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return Info{}, fmt.Errorf("blob put: %w", err)
	}
	return Info{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type section struct {
	io.Reader
	f *os.File
}

func (s section) Close() error { return s.f.Close() }

// Get implements Backend.
func (f *FS) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	file, err := os.Open(f.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob get: %w", err)
	}
	if off > 0 {
		if _, err := file.Seek(off, io.SeekStart); err != nil {
			file.Close()
			return nil, fmt.Errorf("blob get: %w", err)
		}
	}
	var r io.Reader = file
	if n >= 0 {
		r = io.LimitReader(file, n)
	}
	return section{Reader: r, f: file}, nil
}

// Delete implements Backend.
func (f *FS) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := os.Remove(f.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob delete: %w", err)
	}
	return nil
}

// List implements Backend; temporary files are not blobs.
func (f *FS) List(ctx context.Context, prefix string, fn func(key string, size int64) error) error {
	return filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		rel, err := filepath.Rel(f.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		return fn(key, info.Size())
	})
}

// SweepTemp removes temporary files older than olderThan: uploads a crash
// interrupted.
func (f *FS) SweepTemp(olderThan time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-olderThan)
	err := filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().Before(cutoff) {
			if os.Remove(p) == nil {
				n++
			}
		}
		return nil
	})
	return n, err
}
