package codezip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// entry is one file of a zip built with archive/zip.
type entry struct {
	name  string
	data  string
	mode  fs.FileMode // 0: archive/zip's default (no mode, FAT creator)
	store bool        // no compression
}

func makeZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.store {
			h.Method = zip.Store
		}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(data)
	fw.Close()
	return buf.Bytes()
}

// rawFile is a zip entry written byte by byte, so it can lie: sizes, CRC,
// flags and method are written as given, and share makes its central
// record point at an earlier entry's data (an overlapping zip bomb).
type rawFile struct {
	name          string
	method, flags uint16
	crc           uint32
	data          []byte // as stored (compressed or not)
	compSize      uint32 // as claimed
	size          uint32 // as claimed
	unixMode      uint32 // with the file type bits; 0: none
	share         int    // 1-based index of the entry whose data this reuses; 0: own
}

// honest fills in the claims from plain content, deflated.
func honest(t testing.TB, name string, content []byte) rawFile {
	c := deflate(t, content)
	return rawFile{name: name, method: zip.Deflate, crc: crc32.ChecksumIEEE(content), data: c, compSize: uint32(len(c)), size: uint32(len(content))}
}

func rawZip(files ...rawFile) []byte {
	var out bytes.Buffer
	le := binary.LittleEndian
	offsets := make([]uint32, len(files))
	for i, f := range files {
		if f.share > 0 {
			offsets[i] = offsets[f.share-1]
			continue
		}
		offsets[i] = uint32(out.Len())
		h := make([]byte, 30)
		le.PutUint32(h[0:], 0x04034b50)
		le.PutUint16(h[4:], 20)
		le.PutUint16(h[6:], f.flags)
		le.PutUint16(h[8:], f.method)
		le.PutUint32(h[14:], f.crc)
		le.PutUint32(h[18:], f.compSize)
		le.PutUint32(h[22:], f.size)
		le.PutUint16(h[26:], uint16(len(f.name)))
		out.Write(h)
		out.WriteString(f.name)
		out.Write(f.data)
	}
	dirStart := out.Len()
	for i, f := range files {
		h := make([]byte, 46)
		le.PutUint32(h[0:], 0x02014b50)
		creator := uint16(0) // FAT
		if f.unixMode != 0 {
			creator = 3 << 8
		}
		le.PutUint16(h[4:], creator|20)
		le.PutUint16(h[6:], 20)
		le.PutUint16(h[8:], f.flags)
		le.PutUint16(h[10:], f.method)
		le.PutUint32(h[16:], f.crc)
		le.PutUint32(h[20:], f.compSize)
		le.PutUint32(h[24:], f.size)
		le.PutUint16(h[28:], uint16(len(f.name)))
		le.PutUint32(h[38:], f.unixMode<<16)
		le.PutUint32(h[42:], offsets[i])
		out.Write(h)
		out.WriteString(f.name)
	}
	writeEnd(&out, len(files), out.Len()-dirStart, dirStart)
	return out.Bytes()
}

func writeEnd(out *bytes.Buffer, records, dirSize, dirStart int) {
	le := binary.LittleEndian
	e := make([]byte, 22)
	le.PutUint32(e[0:], 0x06054b50)
	le.PutUint16(e[8:], uint16(records))
	le.PutUint16(e[10:], uint16(records))
	le.PutUint32(e[12:], uint32(dirSize))
	le.PutUint32(e[16:], uint32(dirStart))
	out.Write(e)
}

// bloatedDirectory is a zip whose table of contents lists n nameless
// 46-byte records and nothing else: cheap to upload, costly to parse.
func bloatedDirectory(n int) []byte {
	var out bytes.Buffer
	rec := make([]byte, 46)
	binary.LittleEndian.PutUint32(rec, 0x02014b50)
	for range n {
		out.Write(rec)
	}
	writeEnd(&out, n, out.Len(), 0)
	return out.Bytes()
}

func unpack(t testing.TB, b []byte, lim Limits) (string, Manifest, error) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out")
	m, err := Unpack(context.Background(), bytes.NewReader(b), int64(len(b)), dst, lim)
	return dst, m, err
}

// tree lists dst as name -> mode, and fails on anything but plain files
// and folders.
func tree(t testing.TB, dst string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dst {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			t.Fatalf("%s is %v", p, fi.Mode())
		}
		rel, _ := filepath.Rel(dst, p)
		out[filepath.ToSlash(rel)] = fi.Mode()
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}
