// Package codezip validates and unpacks a zambda's code zip. Zips come from
// users, so they are hostile input: every entry's name, type and flags are
// checked before anything is written, sizes are enforced on the bytes
// actually decompressed (headers can lie), and the files are written
// through an os.Root, so nothing can land outside the destination.
package codezip

import (
	"archive/zip"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
)

// Limits bound one zip. A zero field takes its default.
type Limits struct {
	MaxZipBytes      int64 // the zip itself
	MaxUnpackedBytes int64 // all files, decompressed
	MaxFiles         int   // entries, files and folders together
	MaxRatio         int64 // decompressed/compressed bytes of an entry past ratioFloor
}

// DefaultLimits are AWS Lambda's sizes (50 MiB zipped, 250 MiB unzipped), a
// file count no real function reaches (Lambda has none), and a ratio well
// above what source and binaries compress to (5-20x), well below the
// ~1000x of a deflate bomb.
func DefaultLimits() Limits {
	return Limits{MaxZipBytes: 50 << 20, MaxUnpackedBytes: 250 << 20, MaxFiles: 10000, MaxRatio: 200}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxZipBytes <= 0 {
		l.MaxZipBytes = d.MaxZipBytes
	}
	if l.MaxUnpackedBytes <= 0 {
		l.MaxUnpackedBytes = d.MaxUnpackedBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	return l
}

// ratioFloor exempts small entries from MaxRatio: a 100 KiB file of
// spaces is no threat, and tiny inputs make ratios meaningless.
const ratioFloor = 1 << 20

// ErrInvalid matches every *Error (errors.Is): the zip is refused.
var ErrInvalid = errors.New("invalid code zip")

// Error is a zip the user must fix (HTTP 400/422); the message says what is
// wrong and names the entry. Any other error from Unpack is the server's.
type Error struct {
	Entry string // the offending entry's name as in the zip, "" for the zip as a whole
	Msg   string
	Err   error // the cause, if any
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func bad(entry string, cause error, format string, args ...any) *Error {
	return &Error{Entry: entry, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// Manifest describes what Unpack wrote.
type Manifest struct {
	Files         int   // regular files
	UnpackedBytes int64 // their total size
	Entries       []Entry
}

// Entry is one file or folder written, folders before what they hold.
type Entry struct {
	Name string // slash-separated, relative to the destination
	Dir  bool
	Exec bool // written 0755 (files otherwise 0644)
	Size int64
}

// item is an entry that passed the checks, with its cleaned name.
type item struct {
	f    *zip.File
	name string
	dir  bool
	exec bool
}

// Unpack checks the zip in r (size bytes) and writes it under dst, which is
// created if missing and should be empty. The layout is kept as is (as
// Lambda does): no top-level folder is stripped. Errors the user must fix
// are *Error; on any error dst may hold part of the zip and the caller
// removes it.
func Unpack(ctx context.Context, r io.ReaderAt, size int64, dst string, lim Limits) (Manifest, error) {
	lim = lim.withDefaults()
	if size < 0 {
		return Manifest{}, fmt.Errorf("codezip: negative size %d", size)
	}
	if size > lim.MaxZipBytes {
		return Manifest{}, bad("", nil, "the zip is %s; the limit is %s", mib(size), mib(lim.MaxZipBytes))
	}
	// archive/zip holds ~250 bytes per directory record it reads, and a
	// record can be 46 bytes: bound what it may read before MaxFiles can
	// be checked.
	cr := &countingReaderAt{r: r, budget: 128<<10 + max(int64(lim.MaxFiles)*512, 1<<20)}
	zr, err := zip.NewReader(cr, size)
	if err != nil {
		switch {
		case cr.over:
			return Manifest{}, bad("", err, "the zip's table of contents is too large; it holds more than %d entries (the limit)", lim.MaxFiles)
		case cr.err != nil:
			return Manifest{}, fmt.Errorf("codezip: read: %w", cr.err)
		case errors.Is(err, zip.ErrInsecurePath):
			return Manifest{}, bad("", err, "the zip has an entry with an unsafe path (absolute, with .., or with \\)")
		}
		return Manifest{}, bad("", err, "the upload is not a valid zip file (%v)", err)
	}
	cr.budget = -1
	items, err := plan(zr, size, lim)
	if err != nil {
		if cr.err != nil {
			return Manifest{}, fmt.Errorf("codezip: read: %w", cr.err)
		}
		return Manifest{}, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("codezip: %w", err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return Manifest{}, fmt.Errorf("codezip: %w", err)
	}
	defer root.Close()
	w := &writer{root: root, cr: cr, lim: lim, made: map[string]bool{}, buf: make([]byte, 64<<10)}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return w.m, err
		}
		if it.dir {
			if err := w.mkdirAll(it.name); err != nil {
				return w.m, err
			}
			continue
		}
		if dir := path.Dir(it.name); dir != "." {
			if err := w.mkdirAll(dir); err != nil {
				return w.m, err
			}
		}
		if err := w.file(ctx, it); err != nil {
			return w.m, err
		}
	}
	return w.m, nil
}

// plan checks everything the headers say, before anything is written:
// names, types, flags, methods, counts, declared sizes, overlaps.
func plan(zr *zip.Reader, size int64, lim Limits) ([]item, error) {
	if len(zr.File) > lim.MaxFiles {
		return nil, bad("", nil, "the zip holds %d entries; the limit is %d", len(zr.File), lim.MaxFiles)
	}
	items := make([]item, 0, len(zr.File))
	kinds := map[string]kind{} // every path, explicit or implied by a longer one
	var declared uint64
	for _, f := range zr.File {
		name, dirByName, err := cleanName(f.Name)
		if err != nil {
			return nil, err
		}
		mode := f.Mode()
		dir := dirByName || mode.IsDir()
		shown := clip(f.Name)
		if name == "" {
			if dir {
				continue // "./": the root itself
			}
			return nil, bad(f.Name, nil, "%q is not a file name", shown)
		}
		switch {
		case mode&fs.ModeSymlink != 0:
			return nil, bad(f.Name, nil, "%q is a symbolic link; the zip may hold only files and folders", shown)
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
			return nil, bad(f.Name, nil, "%q is a device, pipe or socket; the zip may hold only files and folders", shown)
		case f.Flags&0x41 != 0: // bit 0: encrypted, bit 6: strong encryption
			return nil, bad(f.Name, nil, "%q is encrypted; upload a zip without a password", shown)
		}
		if !dir {
			switch f.Method {
			case zip.Store, zip.Deflate:
			case 99: // WinZip AES
				return nil, bad(f.Name, nil, "%q is encrypted; upload a zip without a password", shown)
			default:
				return nil, bad(f.Name, nil, "%q uses compression method %d; only stored and deflated entries are supported (the zip tools' default)", shown, f.Method)
			}
		}
		want := kindFile
		if dir {
			want = kindDir
		}
		switch was, ok := kinds[name]; {
		case !ok || was == kindImplied && dir:
		case was == want:
			return nil, bad(f.Name, nil, "the zip has %q twice", shown)
		default:
			return nil, bad(f.Name, nil, "%q is both a file and a folder in the zip", clip(name))
		}
		kinds[name] = want
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			if kinds[p] == kindFile {
				return nil, bad(f.Name, nil, "%q is both a file and a folder in the zip", clip(p))
			}
			if _, ok := kinds[p]; ok {
				break // its parents are known too
			}
			kinds[p] = kindImplied
		}
		if len(kinds) > lim.MaxFiles {
			return nil, bad(f.Name, nil, "the zip holds more than %d files and folders (the limit)", lim.MaxFiles)
		}
		exec := false
		if !dir {
			exec = mode.Perm()&0o111 != 0
			declared += min(f.UncompressedSize64, 1<<62)
			if declared > uint64(lim.MaxUnpackedBytes) {
				return nil, bad(f.Name, nil, "the zip unpacks to more than %s (the limit); %q brings it over", mib(lim.MaxUnpackedBytes), shown)
			}
			if f.UncompressedSize64 > ratioFloor && f.UncompressedSize64/max(f.CompressedSize64, 1) > uint64(lim.MaxRatio) {
				return nil, bad(f.Name, nil, "%q would expand more than %d times; this looks like a zip bomb", shown, lim.MaxRatio)
			}
		}
		items = append(items, item{f: f, name: name, dir: dir, exec: exec})
	}
	if err := checkOverlap(items, size); err != nil {
		return nil, err
	}
	return items, nil
}

type kind uint8

const (
	kindNone    kind = iota
	kindImplied      // a folder only named in longer paths
	kindDir
	kindFile
)

// checkOverlap refuses entries whose data overlap or run past the end of
// the zip: real zips never share bytes, while "overlapping" zip bombs make
// thousands of entries out of one compressed stream.
func checkOverlap(items []item, size int64) error {
	type span struct {
		name       string
		start, end int64
	}
	var spans []span
	for _, it := range items {
		if it.dir {
			continue
		}
		off, err := it.f.DataOffset()
		if err != nil {
			return bad(it.f.Name, err, "%q is corrupt in the zip (%v)", clip(it.f.Name), err)
		}
		n := it.f.CompressedSize64
		if off < 0 || n > uint64(size) || off > size-int64(n) {
			return bad(it.f.Name, nil, "%q claims more data than the zip holds; the zip is corrupt", clip(it.f.Name))
		}
		spans = append(spans, span{it.f.Name, off, off + int64(n)})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return bad(spans[i].name, nil, "%q and %q share data in the zip; this looks like a zip bomb", clip(spans[i-1].name), clip(spans[i].name))
		}
	}
	return nil
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// countingReaderAt counts the bytes read from the zip, so the compression
// ratio uses what was really consumed; keeps the first I/O error, to tell
// a broken disk from a broken zip; and refuses reads past budget (when not
// negative).
type countingReaderAt struct {
	r      io.ReaderAt
	n      int64
	budget int64
	over   bool
	err    error
}

var (
	errBudget = errors.New("codezip: read budget exhausted")
	errOffset = errors.New("zip: offset out of range")
)

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 { // crafted offsets: the zip's fault, not the reader's
		return 0, errOffset
	}
	if c.budget >= 0 && c.n+int64(len(p)) > c.budget {
		c.over = true
		return 0, errBudget
	}
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// writer writes the planned entries under root.
type writer struct {
	root *os.Root
	cr   *countingReaderAt
	lim  Limits
	made map[string]bool
	buf  []byte
	m    Manifest
}

// mkdirAll makes dir and its parents, each 0755 whatever the umask.
func (w *writer) mkdirAll(dir string) error {
	if dir == "." || w.made[dir] {
		return nil
	}
	if err := w.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	if err := w.root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("codezip: %w", err)
	}
	if fi, err := w.root.Lstat(dir); err != nil || !fi.IsDir() {
		return bad(dir, err, "%q is both a file and a folder in the zip", clip(dir))
	}
	if err := w.root.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("codezip: %w", err)
	}
	w.made[dir] = true
	w.m.Entries = append(w.m.Entries, Entry{Name: dir, Dir: true})
	return nil
}

// file writes one file, counting the bytes decompressed: it stops at the
// unpacked limit and at MaxRatio, whatever the headers claimed.
func (w *writer) file(ctx context.Context, it item) error {
	shown := clip(it.f.Name)
	start := w.cr.n
	rc, err := it.f.Open()
	if err != nil {
		return w.readErr(it, false, err)
	}
	defer rc.Close()
	perm := fs.FileMode(0o644)
	if it.exec {
		perm = 0o755
	}
	out, err := w.root.OpenFile(it.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return bad(it.f.Name, err, "the zip has %q twice", shown)
		}
		return fmt.Errorf("codezip: %w", err)
	}
	defer out.Close()
	if err := out.Chmod(perm); err != nil { // the umask may have narrowed it
		return fmt.Errorf("codezip: %w", err)
	}
	budget := w.lim.MaxUnpackedBytes - w.m.UnpackedBytes
	var n int64
	for {
		k, rerr := rc.Read(w.buf)
		if k > 0 {
			n += int64(k)
			if n > budget {
				return bad(it.f.Name, nil, "the zip unpacks to more than %s (the limit); %q brings it over", mib(w.lim.MaxUnpackedBytes), shown)
			}
			if in := max(w.cr.n-start, 1); n > ratioFloor && n/in > w.lim.MaxRatio {
				return bad(it.f.Name, nil, "%q expands more than %d times; this looks like a zip bomb", shown, w.lim.MaxRatio)
			}
			if _, err := out.Write(w.buf[:k]); err != nil {
				return fmt.Errorf("codezip: write %s: %w", it.name, err)
			}
			if n%(1<<20) < int64(k) {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return w.readErr(it, true, rerr)
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("codezip: write %s: %w", it.name, err)
	}
	w.m.Files++
	w.m.UnpackedBytes += n
	w.m.Entries = append(w.m.Entries, Entry{Name: it.name, Exec: it.exec, Size: n})
	return nil
}

// readErr tells a broken zip (the user's) from a failing reader (ours).
func (w *writer) readErr(it item, reading bool, err error) error {
	if w.cr.err != nil {
		return fmt.Errorf("codezip: read %s: %w", it.name, w.cr.err)
	}
	shown := clip(it.f.Name)
	switch {
	case errors.Is(err, zip.ErrChecksum):
		return bad(it.f.Name, err, "%q is damaged: its checksum does not match", shown)
	case errors.Is(err, zip.ErrFormat) && reading: // archive/zip: past the declared size
		return bad(it.f.Name, err, "%q holds more data than its header says; the zip is corrupt or crafted", shown)
	case errors.Is(err, zip.ErrAlgorithm):
		return bad(it.f.Name, err, "%q uses an unsupported compression method", shown)
	}
	return bad(it.f.Name, err, "%q is corrupt in the zip (%v)", shown, err)
}
