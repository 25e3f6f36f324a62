package blob

import (
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
	"sync"
	"syscall"
	"time"
)

// FS keeps blobs as files under a root directory, one file per key. Put
// writes a temporary file next to the final one, fsyncs it, renames it into
// place and fsyncs the directory, so a crash leaves either no blob or the
// whole one (plus, at worst, a temporary file SweepTemp removes).
//
// An FS must not be copied after first use.
type FS struct {
	root string
	// chunks recycles the copy buffers: a Put holds two at a time.
	chunks sync.Pool
}

var _ Backend = (*FS)(nil)

const (
	// chunk is the unit of reading, hashing and writing: large enough that
	// syscalls cost nothing next to the copy.
	chunk = 1 << 20
	// writebackEvery asks the kernel to start writing a Put's pages to disk
	// every so many bytes (Linux), so the final fsync waits for the tail
	// instead of the whole file.
	writebackEvery = 8 << 20
)

// NewFS uses (and creates) root.
func NewFS(root string) (*FS, error) {
	root = filepath.Clean(root)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	f := &FS{root: root}
	f.chunks.New = func() any { b := make([]byte, chunk); return &b }
	return f, nil
}

func (f *FS) path(key string) string { return filepath.Join(f.root, filepath.FromSlash(key)) }

// Put implements Backend. A full disk (ENOSPC, EDQUOT) is ErrDiskFull, and
// the partial file is removed, giving its space back.
func (f *FS) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	info, err := f.put(ctx, key, r)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return Info{}, fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return info, err
}

func (f *FS) put(ctx context.Context, key string, r io.Reader) (Info, error) {
	dst := f.path(key)
	dir := filepath.Dir(dst)
	file, err := f.createTemp(dir)
	if err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = file.Close()
			_ = os.Remove(file.Name())
		}
	}()
	info, err := f.copyHashed(ctx, file, r)
	if err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	// The bytes must be on disk before the name can be, or a power cut
	// could leave the key pointing at a hole.
	if err := file.Sync(); err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	if err := file.Close(); err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	if err := os.Rename(file.Name(), dst); err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	committed = true
	// The rename itself is durable once the directory is.
	if err := syncDir(dir); err != nil {
		return Info{}, fmt.Errorf("blob put %s: %w", key, err)
	}
	return info, nil
}

// createTemp creates a temporary file in dir, creating dir first if this
// is the first blob there (the common case skips the mkdir calls).
func (f *FS) createTemp(dir string) (*os.File, error) {
	name := filepath.Join(dir, tmpPrefix+rand.Text())
	file, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err := f.mkdirs(dir); err != nil {
			return nil, err
		}
		file, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	return file, err
}

// mkdirs creates dir and any missing parents below the root, fsyncing the
// parent of each one it creates so the new entries survive a power cut.
// Concurrent Puts may race to create the same directory: both succeed.
func (f *FS) mkdirs(dir string) error {
	rel, err := filepath.Rel(f.root, dir)
	if err != nil {
		return err
	}
	parent := f.root
	for seg := range strings.SplitSeq(rel, string(filepath.Separator)) {
		p := filepath.Join(parent, seg)
		switch err := os.Mkdir(p, 0o700); {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrExist):
			return err
		}
		parent = p
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// copyHashed writes r to w and returns its size and SHA-256. Hashing runs
// on a second goroutine, one chunk at a time alongside the write of the same
// chunk, so a large Put costs about max(hash, write) per chunk instead of
// their sum: SHA-256 (about 1 GB/s with SHA-NI) is as slow as copying into
// the page cache. A body that fits in one chunk is hashed inline.
func (f *FS) copyHashed(ctx context.Context, w *os.File, r io.Reader) (Info, error) {
	src := ctxReader{ctx, r}
	h := sha256.New()
	var bufs [2]*[]byte
	defer func() {
		for _, b := range bufs {
			if b != nil {
				f.chunks.Put(b)
			}
		}
	}()
	var (
		toHash  chan []byte   // nil until the body outgrows one chunk
		hashed  chan struct{} // one token per chunk hashed
		pending bool          // the hasher holds a chunk
	)
	// Runs before the buffers go back to the pool: the hasher must be done
	// with them, whichever way this function returns.
	defer func() {
		if toHash != nil {
			if pending {
				<-hashed
			}
			close(toHash)
		}
	}()
	var size, synced int64
	for i := 0; ; i ^= 1 {
		if bufs[i] == nil {
			bufs[i] = f.chunks.Get().(*[]byte)
		}
		// bufs[i] is free: the hasher finished it before taking bufs[i^1].
		n, eof, err := readFull(src, *bufs[i])
		if err != nil {
			return Info{}, err
		}
		b := (*bufs[i])[:n]
		if toHash == nil && !eof {
			toHash, hashed = make(chan []byte), make(chan struct{}, 1)
			go func() {
				for b := range toHash {
					h.Write(b)
					hashed <- struct{}{}
				}
			}()
		}
		if toHash == nil {
			h.Write(b)
		} else {
			if pending {
				<-hashed
			}
			toHash <- b
			pending = true
		}
		if _, err := w.Write(b); err != nil {
			return Info{}, err
		}
		size += int64(n)
		if size-synced >= writebackEvery {
			startWriteback(w, synced, size-synced)
			synced = size
		}
		if eof {
			break
		}
	}
	if pending {
		<-hashed
		pending = false
	}
	return Info{Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// readCloser reads a section of a file and closes the file.
type readCloser struct {
	io.Reader
	io.Closer
}

// Get implements Backend.
func (f *FS) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("blob get %s: %w", key, errNegativeOffset)
	}
	file, err := os.Open(f.path(key))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("blob get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob get %s: %w", key, err)
	}
	// A directory (key "p" while "p/x" exists) is not a blob.
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		file.Close()
		if err == nil {
			err = ErrNotFound
		}
		return nil, fmt.Errorf("blob get %s: %w", key, err)
	}
	if off > 0 {
		if _, err := file.Seek(off, io.SeekStart); err != nil {
			file.Close()
			return nil, fmt.Errorf("blob get %s: %w", key, err)
		}
	}
	if n < 0 {
		// The file itself: copies from it can use sendfile/copy_file_range.
		return file, nil
	}
	return readCloser{io.LimitReader(file, n), file}, nil
}

// Delete implements Backend. Directories stay: a concurrent Put may be
// about to create a file in one.
func (f *FS) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := os.Remove(f.path(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("blob delete %s: %w", key, err)
	}
	return nil
}

// List implements Backend. It walks only the directory the prefix names
// (keys are paths), and never reports temporary files.
func (f *FS) List(ctx context.Context, prefix string, fn func(key string, size int64, modified time.Time) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	start := f.root
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		start = f.path(prefix[:i])
	}
	var fnErr error // the caller's, returned as is
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // the prefix's directory does not exist, or vanished
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			return nil
		}
		rel, err := filepath.Rel(f.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Descend only where keys with the prefix can be.
			if dk := key + "/"; !strings.HasPrefix(dk, prefix) && !strings.HasPrefix(prefix, dk) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) ||
			!strings.HasPrefix(key, prefix) || checkKey(key) != nil {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since the directory was read
		}
		if err != nil {
			return err
		}
		if err := fn(key, info.Size(), info.ModTime()); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("blob list %q: %w", prefix, err)
	}
	return nil
}

// SweepTemp removes temporary files not written to for olderThan: uploads
// a crash interrupted. A live upload rewrites its file's mtime with every
// chunk, so any olderThan well above a stalled client's timeout is safe to
// run next to live uploads; 0 removes every temporary file (use only when
// no Put is running, as at startup). It returns how many it removed.
func (f *FS) SweepTemp(olderThan time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-olderThan)
	err := filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.ModTime().After(cutoff) {
			return nil // gone already, or still being written
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("blob sweep: %w", err)
	}
	return n, nil
}
