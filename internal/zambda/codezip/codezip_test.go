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
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestUnpackLayout(t *testing.T) {
	const index = "exports.index = async () => ({statusCode: 200, body: '{}'})"
	z := makeZip(t,
		entry{name: "index.js", data: index},
		entry{name: "bootstrap", data: "#!/bin/sh\n", mode: 0o700},
		entry{name: "tool", data: "x", mode: fs.ModeSetuid | 0o777},
		entry{name: "secret.json", data: "{}", mode: 0o600},
		entry{name: "lib/", mode: fs.ModeDir | 0o700},
		entry{name: "lib/a.js", data: "a", store: true},
		entry{name: "node_modules/x/package.json", data: "{}"}, // folders implied
		entry{name: "./src//b.js", data: "b"},                  // "." and empty parts dropped
		entry{name: "./", mode: fs.ModeDir | 0o755},            // the root
	)
	dst, m, err := unpack(t, z, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		"index.js": 0o644, "bootstrap": 0o755, "tool": 0o755, "secret.json": 0o644,
		"lib": fs.ModeDir | 0o755, "lib/a.js": 0o644,
		"node_modules": fs.ModeDir | 0o755, "node_modules/x": fs.ModeDir | 0o755, "node_modules/x/package.json": 0o644,
		"src": fs.ModeDir | 0o755, "src/b.js": 0o644,
	}
	if got := tree(t, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("tree = %v\nwant %v", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "lib/a.js")); string(b) != "a" {
		t.Errorf("lib/a.js = %q", b)
	}
	wantM := Manifest{Files: 7, UnpackedBytes: int64(len(index) + 10 + 1 + 2 + 1 + 2 + 1),
		Entries: []Entry{
			{Name: "index.js", Size: int64(len(index))}, {Name: "bootstrap", Exec: true, Size: 10}, {Name: "tool", Exec: true, Size: 1},
			{Name: "secret.json", Size: 2}, {Name: "lib", Dir: true}, {Name: "lib/a.js", Size: 1},
			{Name: "node_modules", Dir: true}, {Name: "node_modules/x", Dir: true}, {Name: "node_modules/x/package.json", Size: 2},
			{Name: "src", Dir: true}, {Name: "src/b.js", Size: 1},
		}}
	if !reflect.DeepEqual(m, wantM) {
		t.Errorf("manifest = %+v\nwant %+v", m, wantM)
	}
	if again, err := scan(dst); err != nil || again.Files != m.Files || again.UnpackedBytes != m.UnpackedBytes || len(again.Entries) != len(m.Entries) {
		t.Errorf("scan = %+v, %v", again, err)
	}
}

func TestUnpackEmptyAndDefaults(t *testing.T) {
	dst, m, err := unpack(t, makeZip(t), Limits{})
	if err != nil || m.Files != 0 || len(tree(t, dst)) != 0 {
		t.Fatalf("empty zip: %+v %v", m, err)
	}
	if got := (Limits{}).withDefaults(); got != DefaultLimits() {
		t.Errorf("zero limits = %+v", got)
	}
}

func TestUnpackRefuses(t *testing.T) {
	small := Limits{MaxZipBytes: 1 << 20, MaxUnpackedBytes: 4 << 20, MaxFiles: 5, MaxRatio: 200}
	zeros := bytes.Repeat([]byte{0}, 20<<20)
	bomb := deflate(t, zeros)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB, compresses well but not absurdly
	long := strings.Repeat("a", 300)
	for _, tc := range []struct {
		name  string
		zip   []byte
		lim   Limits
		entry string // the *Error's Entry
		msg   string
	}{
		{"not a zip", []byte("hello, world"), small, "", "not a valid zip file"},
		{"empty upload", nil, small, "", "not a valid zip file"},
		{"truncated", makeZip(t, entry{name: "a.js", data: "x"})[:40], small, "", "not a valid zip file"},
		{"zip too big", make([]byte, 2<<20), small, "", "the zip is 2 MiB; the limit is 1 MiB"},

		{"absolute", makeZip(t, entry{name: "/etc/passwd", data: "x"}), small, "/etc/passwd", `"/etc/passwd" is an absolute path`},
		{"drive letter", makeZip(t, entry{name: "C:/evil", data: "x"}), small, "C:/evil", "absolute path"},
		{"dotdot", makeZip(t, entry{name: "a/../../evil", data: "x"}), small, "a/../../evil", `climbs out of the folder with ".."`},
		{"dotdot first", makeZip(t, entry{name: "../evil", data: "x"}), small, "../evil", `".."`},
		{"dotdot folder", makeZip(t, entry{name: "../", mode: fs.ModeDir | 0o755}), small, "../", `".."`},
		{"backslash", makeZip(t, entry{name: `..\evil`, data: "x"}), small, `..\evil`, "has a backslash; zip paths use /"},
		{"NUL", makeZip(t, entry{name: "a\x00.js", data: "x"}), small, "a\x00.js", "control character"},
		{"control", makeZip(t, entry{name: "a\x1b[31m.js", data: "x"}), small, "a\x1b[31m.js", "control character"},
		{"C1 control", makeZip(t, entry{name: "a\u0085.js", data: "x"}), small, "a\u0085.js", "control character"},
		{"not UTF-8", makeZip(t, entry{name: "caf\xe9.js", data: "x"}), small, "caf\xe9.js", "not valid UTF-8"},
		{"long name", makeZip(t, entry{name: strings.Repeat(long+"/", 4) + "x", data: "x"}), small, strings.Repeat(long+"/", 4) + "x", "longer than 1024 bytes"},
		{"long part", makeZip(t, entry{name: long, data: "x"}), small, long, "longer than 255 bytes"},
		{"dot file", makeZip(t, entry{name: ".", data: "x"}), small, ".", "not a file name"},

		{"symlink", makeZip(t, entry{name: "link", data: "/etc/passwd", mode: fs.ModeSymlink | 0o777}), small, "link", `"link" is a symbolic link`},
		{"device", makeZip(t, entry{name: "dev", mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}), small, "dev", "device, pipe or socket"},
		{"pipe", makeZip(t, entry{name: "fifo", mode: fs.ModeNamedPipe | 0o666}), small, "fifo", "device, pipe or socket"},
		{"socket", makeZip(t, entry{name: "sock", mode: fs.ModeSocket | 0o666}), small, "sock", "device, pipe or socket"},

		{"duplicate", makeZip(t, entry{name: "a.js", data: "1"}, entry{name: "a.js", data: "2"}), small, "a.js", `the zip has "a.js" twice`},
		{"duplicate after cleaning", makeZip(t, entry{name: "a/b.js", data: "1"}, entry{name: "./a//b.js", data: "2"}), small, "./a//b.js", "twice"},
		{"duplicate folder", makeZip(t, entry{name: "a/", mode: fs.ModeDir | 0o755}, entry{name: "a/", mode: fs.ModeDir | 0o755}), small, "a/", "twice"},
		{"file then folder", makeZip(t, entry{name: "a", data: "x"}, entry{name: "a/b", data: "y"}), small, "a/b", `"a" is both a file and a folder`},
		{"folder then file", makeZip(t, entry{name: "a/b", data: "y"}, entry{name: "a", data: "x"}), small, "a", `"a" is both a file and a folder`},
		{"file and folder entry", makeZip(t, entry{name: "a", data: "x"}, entry{name: "a/", mode: fs.ModeDir | 0o755}), small, "a/", "both a file and a folder"},

		{"too many entries", makeZip(t, entry{name: "1"}, entry{name: "2"}, entry{name: "3"}, entry{name: "4"}, entry{name: "5"}, entry{name: "6"}), small, "", "the zip holds 6 entries; the limit is 5"},
		{"too many folders", makeZip(t, entry{name: "a/b/c/d/e/f.js", data: "x"}), small, "a/b/c/d/e/f.js", "more than 5 files and folders"},

		{"encrypted", rawZip(rawFile{name: "a.js", method: zip.Store, flags: 1, data: []byte("xx"), compSize: 2, size: 2}), small, "a.js", `"a.js" is encrypted`},
		{"AES", rawZip(rawFile{name: "a.js", method: 99, data: []byte("xx"), compSize: 2, size: 2}), small, "a.js", "encrypted"},
		{"bzip2", rawZip(rawFile{name: "a.js", method: 12, data: []byte("xx"), compSize: 2, size: 2}), small, "a.js", "compression method 12"},
		{"bad checksum", rawZip(rawFile{name: "a.js", method: zip.Store, crc: 1, data: []byte("xx"), compSize: 2, size: 2}), small, "a.js", "checksum does not match"},
		{"corrupt data", rawZip(rawFile{name: "a.js", method: zip.Deflate, crc: 1, data: []byte("\xff\xff\xff"), compSize: 3, size: 10}), small, "a.js", "corrupt"},
		{"claims data it lacks", rawZip(rawFile{name: "a.js", method: zip.Store, data: []byte("xx"), compSize: 5000, size: 5000}), small, "a.js", "claims more data than the zip holds"},
		{"symlink by unix mode", rawZip(rawFile{name: "l", method: zip.Store, crc: crc32.ChecksumIEEE([]byte("/")), data: []byte("/"), compSize: 1, size: 1, unixMode: 0o120777}), small, "l", "symbolic link"},

		// Sizes: what the headers say is checked first...
		{"declared too big", makeZip(t, entry{name: "big", data: string(big), store: true}, entry{name: "big2", data: string(big), store: true}), Limits{MaxZipBytes: 8 << 20, MaxUnpackedBytes: 4 << 20, MaxFiles: 5, MaxRatio: 200}, "big2", `the zip unpacks to more than 4 MiB (the limit); "big2" brings it over`},
		{"declared bomb", makeZip(t, entry{name: "zeros", data: string(zeros)}), DefaultLimits(), "zeros", `"zeros" would expand more than 200 times`},
		// ... and then what decompression really gives, whatever they say.
		{"lying size", rawZip(rawFile{name: "zeros", method: zip.Deflate, crc: crc32.ChecksumIEEE(zeros), data: bomb, compSize: uint32(len(bomb)), size: 100}), DefaultLimits(), "zeros", "holds more data than its header says"},
		{"lying compressed size", rawZip(rawFile{name: "zeros", method: zip.Deflate, crc: crc32.ChecksumIEEE(zeros), data: append(bomb, make([]byte, 1<<20)...), compSize: uint32(len(bomb) + 1<<20), size: uint32(len(zeros))}), DefaultLimits(), "zeros", `"zeros" expands more than 200 times; this looks like a zip bomb`},
		{"overlapping entries", rawZip(honest(t, "a", []byte("aaaa")), rawFile{name: "b", method: zip.Deflate, crc: crc32.ChecksumIEEE([]byte("aaaa")), compSize: uint32(len(deflate(t, []byte("aaaa")))), size: 4, share: 1}), small, "b", `"a" and "b" share data in the zip`},
		{"bloated directory", bloatedDirectory(200000), Limits{MaxZipBytes: 50 << 20, MaxFiles: 10000}, "", "table of contents is too large; it holds more than 10000 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "out")
			_, err := Unpack(context.Background(), bytes.NewReader(tc.zip), int64(len(tc.zip)), dst, tc.lim)
			var ze *Error
			if !errors.As(err, &ze) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want a *codezip.Error with %q", err, tc.msg)
			}
			if ze.Entry != tc.entry {
				t.Errorf("Entry = %q, want %q", ze.Entry, tc.entry)
			}
			if ents, _ := os.ReadDir(parent); len(ents) > 1 {
				t.Errorf("wrote beside the destination: %v", ents)
			}
			var total int64
			for name, mode := range tree(t, dst) {
				if mode.IsRegular() {
					fi, _ := os.Stat(filepath.Join(dst, name))
					total += fi.Size()
				}
			}
			if total > max(tc.lim.MaxUnpackedBytes, DefaultLimits().MaxUnpackedBytes) {
				t.Errorf("wrote %d bytes", total)
			}
		})
	}
}

// Refusals based on names and headers come before anything is written.
func TestUnpackChecksBeforeWriting(t *testing.T) {
	z := makeZip(t, entry{name: "index.js", data: "x"}, entry{name: "a/../../evil", data: "x"})
	dst, _, err := unpack(t, z, DefaultLimits())
	if err == nil {
		t.Fatal("accepted")
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("dst was created: %v", err)
	}
}

// A table of contents of 46-byte records costs archive/zip ~250 bytes
// each: the read budget keeps a 9 MiB upload from costing hundreds.
func TestBloatedDirectoryMemory(t *testing.T) {
	z := bloatedDirectory(200000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Unpack(context.Background(), bytes.NewReader(z), int64(len(z)), filepath.Join(t.TempDir(), "out"), DefaultLimits())
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("accepted")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
		t.Errorf("allocated %d MiB", n>>20)
	}
	// A real table of contents of 10,000 files with long names fits the
	// budget: Unpack gets past it, to the (tiny) size limit.
	var entries []entry
	for i := range 10000 {
		entries = append(entries, entry{name: "node_modules/" + strings.Repeat("p", 150) + "/" + strings.Repeat("f", 100) + "/" + itoa(i) + ".js", data: "xx"})
	}
	z = makeZip(t, entries...)
	lim := DefaultLimits()
	lim.MaxFiles, lim.MaxUnpackedBytes = 10010, 1
	if _, _, err := unpack(t, z, lim); err == nil || !strings.Contains(err.Error(), "unpacks to more than") {
		t.Fatalf("10,000 files: %v", err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

type failingReader struct{}

func (failingReader) ReadAt(p []byte, off int64) (int, error) { return 0, errors.New("disk on fire") }

func TestUnpackServerErrors(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out")
	_, err := Unpack(context.Background(), failingReader{}, 1000, dst, DefaultLimits())
	if err == nil || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("failing reader: %v, want a server error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	z := makeZip(t, entry{name: "a", data: "x"})
	if _, err := Unpack(ctx, bytes.NewReader(z), int64(len(z)), dst, DefaultLimits()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// A destination that cannot be created is the server's problem.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := Unpack(context.Background(), bytes.NewReader(z), int64(len(z)), filepath.Join(file, "out"), DefaultLimits()); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("bad destination: %v", err)
	}
}
