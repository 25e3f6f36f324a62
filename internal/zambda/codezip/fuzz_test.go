package codezip

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack: whatever the bytes, Unpack does not panic, writes nothing
// outside dst, writes only plain files (0644/0755) and folders (0755), never
// more than the limits, refuses with an *Error only (the reader cannot
// fail), and on success its manifest is what is on disk.
func FuzzUnpack(f *testing.F) {
	zeros := bytes.Repeat([]byte{0}, 3<<20)
	for _, z := range [][]byte{
		makeZip(f, entry{name: "index.js", data: "exports.index=()=>1"}, entry{name: "bootstrap", data: "#!", mode: 0o755}),
		makeZip(f, entry{name: "a/", mode: fs.ModeDir | 0o755}, entry{name: "a/b/c.js", data: "x", store: true}, entry{name: "./d//e", data: "y"}),
		makeZip(f, entry{name: "a/../b", data: "x"}),
		makeZip(f, entry{name: "link", data: "../../etc", mode: fs.ModeSymlink | 0o777}),
		makeZip(f, entry{name: "a", data: "x"}, entry{name: "a/b", data: "y"}),
		rawZip(rawFile{name: "zeros", method: zip.Deflate, crc: crc32.ChecksumIEEE(zeros), data: deflate(f, zeros), compSize: 4000, size: 10}),
		rawZip(honest(f, "a", []byte("aaaa")), rawFile{name: "b", method: zip.Deflate, compSize: 6, size: 4, share: 1}),
		bloatedDirectory(50),
		[]byte("PK\x03\x04garbage"),
	} {
		f.Add(z)
	}
	lim := Limits{MaxZipBytes: 1 << 20, MaxUnpackedBytes: 1 << 20, MaxFiles: 20, MaxRatio: 50}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkUnpack(t, b, lim)
	})
}

// FuzzUnpackNames reaches deeper than random bytes do: the fuzzer picks
// the names, Unix modes, flags and data of well-formed entries.
func FuzzUnpackNames(f *testing.F) {
	f.Add("index.js", "lib/a.js", uint32(0o100644), uint32(0o100755), uint16(0), []byte("x"))
	f.Add("a/", "a/../../b", uint32(0o40755), uint32(0), uint16(0), []byte(""))
	f.Add("x", "x/y", uint32(0o120777), uint32(0o20644), uint16(8), []byte("../.."))
	f.Add("./", ".//a", uint32(0), uint32(0o104755), uint16(1), []byte("data"))
	lim := Limits{MaxZipBytes: 1 << 20, MaxUnpackedBytes: 1 << 10, MaxFiles: 20, MaxRatio: 50}
	f.Fuzz(func(t *testing.T, name1, name2 string, mode1, mode2 uint32, flags uint16, data []byte) {
		file := func(name string, mode uint32) rawFile {
			return rawFile{name: name, method: zip.Store, flags: flags &^ 8, crc: crc32.ChecksumIEEE(data), data: data,
				compSize: uint32(len(data)), size: uint32(len(data)), unixMode: mode}
		}
		checkUnpack(t, rawZip(file(name1, mode1), file(name2, mode2)), lim)
	})
}

// checkUnpack unpacks b and checks the properties FuzzUnpack states.
func checkUnpack(t *testing.T, b []byte, lim Limits) {
	parent := t.TempDir()
	dst := filepath.Join(parent, "out")
	m, err := Unpack(context.Background(), bytes.NewReader(b), int64(len(b)), dst, lim)
	if err != nil && !errors.Is(err, ErrInvalid) {
		t.Fatalf("not an *Error: %v", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) > 1 || len(ents) == 1 && ents[0].Name() != "out" {
		t.Fatalf("wrote beside the destination: %v", ents)
	}
	var files int
	var total int64
	entries := 0
	err2 := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dst {
			return err
		}
		entries++
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch mode := fi.Mode(); {
		case mode.IsDir():
			if mode.Perm() != 0o755 {
				t.Errorf("%s is %v", p, mode)
			}
		case mode.IsRegular():
			if mode.Perm() != 0o644 && mode.Perm() != 0o755 {
				t.Errorf("%s is %v", p, mode)
			}
			files++
			total += fi.Size()
		default:
			t.Errorf("%s is %v", p, mode)
		}
		return nil
	})
	if err2 != nil && !os.IsNotExist(err2) {
		t.Fatal(err2)
	}
	if total > lim.MaxUnpackedBytes || entries > lim.MaxFiles {
		t.Fatalf("wrote %d bytes in %d entries, past the limits", total, entries)
	}
	if err == nil && (files != m.Files || total != m.UnpackedBytes || entries != len(m.Entries)) {
		t.Fatalf("manifest %d files, %d bytes, %d entries; disk %d, %d, %d", m.Files, m.UnpackedBytes, len(m.Entries), files, total, entries)
	}
}
