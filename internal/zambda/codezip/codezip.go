// Package codezip validates and unpacks a zambda's code zip. Zips come from
// users, so everything is checked against what is actually decompressed,
// not what the headers claim: sizes, file counts, names (no absolute paths,
// no "..", no control characters), entry types (no symlinks or devices),
// and compression ratios (zip bombs). Files are written through an
// os.Root, so nothing lands outside the destination.
package codezip

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
)

// Limits bound one zip.
type Limits struct {
	MaxZipBytes      int64 // the zip itself
	MaxUnpackedBytes int64 // everything it holds, decompressed
	MaxFiles         int
	MaxRatio         int64 // decompressed / compressed, per entry above 1 MiB
}

// DefaultLimits are AWS Lambda's sizes (50 MiB zipped, 250 MiB unzipped).
func DefaultLimits() Limits {
	return Limits{MaxZipBytes: 50 << 20, MaxUnpackedBytes: 250 << 20, MaxFiles: 10000, MaxRatio: 200}
}

// Error is a zip the user must fix; its message says what and where.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func bad(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Manifest describes what was unpacked.
type Manifest struct {
	Files         int
	UnpackedBytes int64
	Entries       []string
}

// Unpack checks the zip in r (size bytes) and writes it under dst, which
// must not exist yet. On error, dst may hold part of the zip: the caller
// removes it.
func Unpack(ctx context.Context, r io.ReaderAt, size int64, dst string, lim Limits) (Manifest, error) {
	var m Manifest
	if size > lim.MaxZipBytes {
		return m, bad("the zip is %d bytes; the limit is %d MiB", size, lim.MaxZipBytes>>20)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return m, bad("the upload is not a valid zip file (%v)", err)
	}
	if len(zr.File) > lim.MaxFiles {
		return m, bad("the zip holds %d entries; the limit is %d", len(zr.File), lim.MaxFiles)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return m, fmt.Errorf("unpack: %w", err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return m, fmt.Errorf("unpack: %w", err)
	}
	defer root.Close()
	seen := map[string]bool{}
	buf := make([]byte, 64<<10)
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		name, err := cleanName(f.Name)
		if err != nil {
			return m, err
		}
		isDir := strings.HasSuffix(f.Name, "/") || f.Mode().IsDir()
		key := strings.TrimSuffix(name, "/")
		if seen[key] {
			return m, bad("the zip has %q twice", name)
		}
		seen[key] = true
		mode := f.Mode()
		switch {
		case isDir:
			if err := mkdirAll(root, key); err != nil {
				return m, err
			}
			continue
		case mode&fs.ModeSymlink != 0:
			return m, bad("%q is a symbolic link; zips may hold only files and folders", name)
		case mode&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice|fs.ModeIrregular) != 0:
			return m, bad("%q is not a regular file", name)
		}
		if f.Flags&0x1 != 0 {
			return m, bad("%q is encrypted; upload an unencrypted zip", name)
		}
		if dir := path.Dir(key); dir != "." {
			if err := mkdirAll(root, dir); err != nil {
				return m, err
			}
		}
		perm := fs.FileMode(0o644)
		if mode.Perm()&0o111 != 0 {
			perm = 0o755
		}
		n, err := extract(root, f, key, perm, lim.MaxUnpackedBytes-m.UnpackedBytes, lim.MaxRatio, buf)
		if err != nil {
			return m, err
		}
		m.UnpackedBytes += n
		m.Files++
		m.Entries = append(m.Entries, key)
	}
	return m, nil
}

// cleanName checks an entry name and returns it relative to the root.
func cleanName(name string) (string, error) {
	if name == "" || len(name) > 1024 {
		return "", bad("the zip has an entry with an empty or over-long name")
	}
	for _, r := range name {
		if r == '\\' {
			return "", bad("%q uses \\ in its path; zip paths use /", clip(name))
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "", bad("%q has a control or invalid character in its name", clip(name))
		}
	}
	if strings.HasPrefix(name, "/") || filepath.VolumeName(name) != "" {
		return "", bad("%q is an absolute path; zip entries must be relative", clip(name))
	}
	trimmed := strings.TrimSuffix(name, "/")
	for _, seg := range strings.Split(trimmed, "/") {
		if seg == ".." {
			return "", bad("%q climbs out of the zip with \"..\"", clip(name))
		}
		if seg == "" || seg == "." {
			return "", bad("%q has an empty or \".\" path segment", clip(name))
		}
	}
	return name, nil
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func mkdirAll(root *os.Root, dir string) error {
	cur := ""
	for _, seg := range strings.Split(dir, "/") {
		cur = path.Join(cur, seg)
		if err := root.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return bad("cannot create folder %q: %v", cur, err)
		}
		if fi, err := root.Lstat(cur); err != nil || !fi.IsDir() {
			return bad("%q is both a file and a folder in the zip", cur)
		}
	}
	return nil
}

// extract writes one file, counting the bytes actually decompressed.
func extract(root *os.Root, f *zip.File, name string, perm fs.FileMode, budget, maxRatio int64, buf []byte) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, bad("cannot read %q from the zip: %v", name, err)
	}
	defer rc.Close()
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, bad("cannot write %q: %v", name, err)
	}
	defer out.Close()
	var n int64
	for {
		k, rerr := rc.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > budget {
				return n, bad("the zip unpacks to more than the limit (%d MiB)", (budget+n)>>20)
			}
			// A zip bomb: far more out than in (checked once it matters).
			if n > 1<<20 && f.CompressedSize64 > 0 && n/int64(f.CompressedSize64) > maxRatio {
				return n, bad("%q expands more than %d times; this looks like a zip bomb", name, maxRatio)
			}
			if _, err := out.Write(buf[:k]); err != nil {
				return n, fmt.Errorf("unpack %s: %w", name, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, bad("%q is corrupt in the zip: %v", name, rerr)
		}
	}
	return n, out.Close()
}

// CheckHandler checks the unpacked code has what the runtime starts:
// nodejs: the handler's module file (handler "index.index" -> index.js,
// .mjs or .cjs) at the root; provided: an executable bootstrap at the root.
func CheckHandler(dir, runtime, handler string) error {
	if strings.HasPrefix(runtime, "provided") {
		fi, err := os.Stat(filepath.Join(dir, "bootstrap"))
		switch {
		case err != nil:
			return bad("the zip has no bootstrap file at its root%s; a %s function is an executable named bootstrap", found(dir, "bootstrap"), runtime)
		case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
			return bad("bootstrap is not executable: zip it with its executable bit (chmod +x bootstrap)")
		}
		return nil
	}
	if handler == "" {
		handler = "index.index"
	}
	mod := handler
	if i := strings.LastIndexByte(handler, '.'); i > 0 {
		mod = handler[:i]
	}
	for _, ext := range []string{".js", ".mjs", ".cjs"} {
		if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(mod)+ext)); err == nil && fi.Mode().IsRegular() {
			return nil
		}
	}
	return bad("the zip has no %s.js at its root%s; zip the built files themselves, not their folder", mod, found(dir, path.Base(mod)+".js"))
}

// found hints where a file of that name sits in the zip, if anywhere.
func found(dir, name string) string {
	hint := ""
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name && hint == "" {
			rel, _ := filepath.Rel(dir, p)
			hint = "; found: " + filepath.ToSlash(rel)
			return fs.SkipAll
		}
		return nil
	})
	return hint
}
