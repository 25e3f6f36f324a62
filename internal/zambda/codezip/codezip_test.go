package codezip

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name string
	data string
	mode os.FileMode
	raw  bool // store, no compression
}

func makeZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.raw {
			h.Method = zip.Store
		}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.data))
	}
	zw.Close()
	return buf.Bytes()
}

func unpack(t testing.TB, b []byte, lim Limits) (string, Manifest, error) {
	dst := filepath.Join(t.TempDir(), "out")
	m, err := Unpack(context.Background(), bytes.NewReader(b), int64(len(b)), dst, lim)
	return dst, m, err
}

func TestUnpack(t *testing.T) {
	small := DefaultLimits()
	small.MaxUnpackedBytes, small.MaxFiles = 10<<20, 5
	for _, tc := range []struct {
		name    string
		zip     []byte
		lim     Limits
		problem string
	}{
		{"ok", makeZip(t, entry{name: "index.js", data: "exports.index=()=>1"}, entry{name: "lib/", mode: os.ModeDir | 0o755}, entry{name: "lib/a.js", data: "x"}), small, ""},
		{"not a zip", []byte("hello"), small, "not a valid zip"},
		{"absolute", makeZip(t, entry{name: "/etc/passwd", data: "x"}), small, "absolute path"},
		{"dotdot", makeZip(t, entry{name: "a/../../evil", data: "x"}), small, `".."`},
		{"backslash", makeZip(t, entry{name: `..\evil`, data: "x"}), small, `uses \`},
		{"control", makeZip(t, entry{name: "a\x01b", data: "x"}), small, "control"},
		{"symlink", makeZip(t, entry{name: "link", data: "/etc/passwd", mode: os.ModeSymlink | 0o777}), small, "symbolic link"},
		{"duplicate", makeZip(t, entry{name: "a.js", data: "1"}, entry{name: "a.js", data: "2"}), small, "twice"},
		{"too many", makeZip(t, entry{name: "1"}, entry{name: "2"}, entry{name: "3"}, entry{name: "4"}, entry{name: "5"}, entry{name: "6"}), small, "entries"},
		{"bomb", makeZip(t, entry{name: "zeros", data: strings.Repeat("\x00", 20<<20)}), DefaultLimits(), "zip bomb"},
		{"too big unpacked", makeZip(t, entry{name: "big", data: strings.Repeat("ab", 6<<20), raw: true}), small, "more than the limit"},
		{"file and folder", makeZip(t, entry{name: "a", data: "x"}, entry{name: "a/b", data: "y"}), small, "both a file and a folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, m, err := unpack(t, tc.zip, tc.lim)
			if tc.problem == "" {
				if err != nil || m.Files != 2 {
					t.Fatalf("unpack: %+v %v", m, err)
				}
				if b, _ := os.ReadFile(filepath.Join(dst, "lib/a.js")); string(b) != "x" {
					t.Fatal("lib/a.js not written")
				}
				return
			}
			var ze *Error
			if !errors.As(err, &ze) || !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("err = %v, want a codezip.Error with %q", err, tc.problem)
			}
		})
	}
}

func TestCheckHandler(t *testing.T) {
	dir, _, err := unpack(t, makeZip(t, entry{name: "src/index.js", data: "x"}, entry{name: "bootstrap", data: "#!/bin/sh", mode: 0o644}), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHandler(dir, "nodejs20.x", "index.index"); err == nil || !strings.Contains(err.Error(), "found: src/index.js") {
		t.Errorf("node: %v", err)
	}
	if err := CheckHandler(dir, "provided.al2023", ""); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("provided: %v", err)
	}
	ok, _, _ := unpack(t, makeZip(t, entry{name: "index.mjs", data: "x"}, entry{name: "bootstrap", data: "x", mode: 0o755}), DefaultLimits())
	if err := CheckHandler(ok, "nodejs22.x", "index.index"); err != nil {
		t.Errorf("index.mjs: %v", err)
	}
	if err := CheckHandler(ok, "provided", ""); err != nil {
		t.Errorf("executable bootstrap: %v", err)
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(makeZip(f, entry{name: "index.js", data: "exports.index=()=>1"}))
	f.Add(makeZip(f, entry{name: "a/../b", data: "x"}))
	f.Add([]byte("PK\x03\x04garbage"))
	lim := Limits{MaxZipBytes: 1 << 20, MaxUnpackedBytes: 1 << 20, MaxFiles: 50, MaxRatio: 100}
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "out")
		m, err := Unpack(context.Background(), bytes.NewReader(b), int64(len(b)), dst, lim)
		if err == nil && m.UnpackedBytes > lim.MaxUnpackedBytes {
			t.Fatalf("unpacked %d bytes past the limit", m.UnpackedBytes)
		}
		// Nothing may appear beside dst.
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if e.Name() != "out" {
				t.Fatalf("wrote %q outside the destination", e.Name())
			}
		}
	})
}
