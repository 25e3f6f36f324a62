package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// harness is one backend under test.
type harness struct {
	name string
	// open returns a fresh, empty backend, and a function listing what
	// Puts left outside the keyspace (temporary files, incomplete multipart
	// uploads): after a failed Put it must list nothing.
	open func(t *testing.T) (Backend, func() []string)
}

func harnesses() []harness { return []harness{fsHarness, s3Harness} }

// TestBackends runs the one conformance suite on every backend, each case
// on a fresh one.
func TestBackends(t *testing.T) {
	for _, h := range harnesses() {
		t.Run(h.name, func(t *testing.T) {
			for _, c := range suite {
				t.Run(c.name, func(t *testing.T) {
					b, leftovers := h.open(t)
					c.run(t, b, leftovers)
				})
			}
		})
	}
}

var suite = []struct {
	name string
	run  func(t *testing.T, b Backend, leftovers func() []string)
}{
	{"empty", roundTrip(0)},
	{"1 byte", roundTrip(1)},
	{"64 KiB", roundTrip(headSize)},
	{"5 MiB", roundTrip(5 << 20)},
	{"16 MiB exactly one part", roundTrip(partSize)},
	{"64 MiB streamed", roundTrip(64 << 20)},
	{"ranges", testRanges},
	{"ranges of an empty blob", testEmptyRanges},
	{"missing key", testMissing},
	{"delete is idempotent", testDelete},
	{"list by prefix", testList},
	{"cancelled at once", cancelledPut(1)},
	{"cancelled in the first part", cancelledPut(1 << 20)},
	{"cancelled in the second part", cancelledPut(partSize + 4<<20)},
	{"reader fails", testReaderError},
	{"invalid keys", testInvalidKeys},
	{"concurrent puts", testConcurrent},
}

// gen is the stream of bytes [off, end) of an endless pseudo-random
// sequence, generated as it is read and never held: byte x depends only on
// x, so any range can be regenerated to compare with, and a shifted range
// never matches by accident.
type gen struct{ off, end int64 }

func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.end-g.off)]
	for i := 0; i < len(p); {
		x := g.off + int64(i)
		w := mix(uint64(x / 8))
		if x%8 == 0 && len(p)-i >= 8 {
			binary.LittleEndian.PutUint64(p[i:], w)
			i += 8
			continue
		}
		p[i] = byte(w >> (8 * (x % 8)))
		i++
	}
	g.off += int64(len(p))
	return len(p), nil
}

// mix is splitmix64's finaliser.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func stream(n int64) io.Reader { return &gen{0, n} }

// want is bytes [off, off+n) of the stream.
func want(off, n int64) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(&gen{off, off + n}, b)
	return b
}

func sum(t testing.TB, r io.Reader) (string, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func keys(t *testing.T, b Backend, prefix string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	if err := b.List(context.Background(), prefix, func(k string, size int64, modified time.Time) error {
		// A blob's time is when its Put ended: just now in these tests
		// (the sweep of orphans relies on it).
		if age := time.Since(modified); age < -time.Minute || age > time.Minute {
			t.Errorf("list %q: %s modified %v, %v ago", prefix, k, modified, age)
		}
		got[k] = size
		return nil
	}); err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return got
}

func put(t *testing.T, b Backend, key string, n int64) Info {
	t.Helper()
	info, err := b.Put(context.Background(), key, stream(n))
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func get(t *testing.T, b Backend, key string, off, n int64) []byte {
	t.Helper()
	rc, err := b.Get(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("get %s [%d,+%d): %v", key, off, n, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("get %s [%d,+%d): %v", key, off, n, err)
	}
	return got
}

// roundTrip stores n streamed bytes and reads them back.
func roundTrip(n int64) func(*testing.T, Backend, func() []string) {
	return func(t *testing.T, b Backend, leftovers func() []string) {
		ctx := context.Background()
		wantSum, _ := sum(t, stream(n))
		info := put(t, b, "p1/obj", n)
		if info != (Info{Size: n, SHA256: wantSum}) {
			t.Fatalf("put: %+v, want size %d sha %s", info, n, wantSum)
		}
		rc, err := b.Get(ctx, "p1/obj", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		gotSum, got := sum(t, rc)
		rc.Close()
		if got != n || gotSum != wantSum {
			t.Fatalf("get: %d bytes, sha %s; want %d, %s", got, gotSum, n, wantSum)
		}
		if l := keys(t, b, "p1/"); !sameKeys(l, map[string]int64{"p1/obj": n}) {
			t.Fatalf("list: %v", l)
		}
		if l := leftovers(); len(l) != 0 {
			t.Fatalf("a successful Put left %v", l)
		}
	}
}

func sameKeys(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testRanges(t *testing.T, b Backend, _ func() []string) {
	// Larger than a part, so S3 ranges cross a part boundary.
	const size = partSize + 4<<20 + 3
	put(t, b, "p1/r", size)
	for _, r := range []struct {
		name       string
		off, n     int64
		start, end int64 // what comes back
	}{
		{"first byte", 0, 1, 0, 1},
		{"middle", 1000, 4096, 1000, 5096},
		{"across parts", partSize - 10, 20, partSize - 10, partSize + 10},
		{"last byte", size - 1, 1, size - 1, size},
		{"to end", size - 5, -1, size - 5, size},
		{"middle to end", 10 << 20, -1, 10 << 20, size},
		{"whole", 0, -1, 0, size},
		{"exactly all", 0, size, 0, size},
		{"nothing", 5, 0, 5, 5},
		{"past the end", size - 2, 10, size - 2, size},
		{"at the end", size, -1, size, size},
		{"beyond the end", size + 10, 5, size, size},
	} {
		got := get(t, b, "p1/r", r.off, r.n)
		if w := want(r.start, r.end-r.start); !bytes.Equal(got, w) {
			t.Errorf("%s [%d,+%d): %d bytes, want %d", r.name, r.off, r.n, len(got), len(w))
		}
	}
	if _, err := b.Get(context.Background(), "p1/r", -1, 1); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("negative offset: %v", err)
	}
}

func testEmptyRanges(t *testing.T, b Backend, _ func() []string) {
	put(t, b, "p1/e", 0)
	for _, r := range [][2]int64{{0, -1}, {0, 1}, {0, 0}, {3, -1}} {
		if got := get(t, b, "p1/e", r[0], r[1]); len(got) != 0 {
			t.Errorf("range %v of an empty blob: %d bytes", r, len(got))
		}
	}
}

func testMissing(t *testing.T, b Backend, _ func() []string) {
	put(t, b, "p1/x", 10)
	// "p1" and "p1/x/y" are paths through a blob on the filesystem.
	for _, key := range []string{"p1/missing", "p2/missing", "p1", "p1/x/y"} {
		for _, r := range [][2]int64{{0, -1}, {0, 10}, {5, -1}, {0, 0}} {
			if rc, err := b.Get(context.Background(), key, r[0], r[1]); !errors.Is(err, ErrNotFound) {
				if rc != nil {
					rc.Close()
				}
				t.Errorf("get %s %v: %v, want ErrNotFound", key, r, err)
			}
		}
	}
}

func testDelete(t *testing.T, b Backend, _ func() []string) {
	ctx := context.Background()
	put(t, b, "p1/d", 100)
	put(t, b, "p1/kept", 100)
	for i := range 2 {
		if err := b.Delete(ctx, "p1/d"); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	if err := b.Delete(ctx, "p9/never"); err != nil {
		t.Fatalf("delete of a key never stored: %v", err)
	}
	if _, err := b.Get(ctx, "p1/d", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if l := keys(t, b, ""); !sameKeys(l, map[string]int64{"p1/kept": 100}) {
		t.Fatalf("list after delete: %v", l)
	}
}

func testList(t *testing.T, b Backend, _ func() []string) {
	all := map[string]int64{"p1/a": 1, "p1/b": 2, "p1/sub/c": 3, "p10/x": 4, "p2/a": 5}
	for k, n := range all {
		put(t, b, k, n)
	}
	pick := func(ks ...string) map[string]int64 {
		m := map[string]int64{}
		for _, k := range ks {
			m[k] = all[k]
		}
		return m
	}
	for _, c := range []struct {
		prefix string
		want   map[string]int64
	}{
		{"", all},
		{"p1/", pick("p1/a", "p1/b", "p1/sub/c")},
		{"p1", pick("p1/a", "p1/b", "p1/sub/c", "p10/x")},
		{"p1/s", pick("p1/sub/c")},
		{"p1/sub/", pick("p1/sub/c")},
		{"p1/a", pick("p1/a")},
		{"p3/", pick()},
		{"p1/a/", pick()},
	} {
		if got := keys(t, b, c.prefix); !sameKeys(got, c.want) {
			t.Errorf("list %q: %v, want %v", c.prefix, got, c.want)
		}
	}
	// An error from fn stops the listing and comes back.
	stop := errors.New("stop")
	calls := 0
	err := b.List(context.Background(), "", func(string, int64, time.Time) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("list stopped by fn: %v after %d calls", err, calls)
	}
}

// cancelAt cancels a context once n bytes have gone through, and carries
// on giving bytes: only the backend's own check can stop the Put.
type cancelAt struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAt) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// cancelledPut cancels a 40 MiB Put after at bytes: no blob, no leftovers.
func cancelledPut(at int64) func(*testing.T, Backend, func() []string) {
	return func(t *testing.T, b Backend, leftovers func() []string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := b.Put(ctx, "p1/cancelled", &cancelAt{r: stream(40 << 20), n: at, cancel: cancel})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled put: %v", err)
		}
		assertAbsent(t, b, "p1/cancelled", leftovers)
	}
}

func assertAbsent(t *testing.T, b Backend, key string, leftovers func() []string) {
	t.Helper()
	if _, err := b.Get(context.Background(), key, 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed put left %s: %v", key, err)
	}
	if l := keys(t, b, ""); len(l) != 0 {
		t.Fatalf("a failed put left keys %v", l)
	}
	if l := leftovers(); len(l) != 0 {
		t.Fatalf("a failed put left %v", l)
	}
}

var errBoom = errors.New("boom")

// failAfter gives n bytes of the stream, then an error (a client gone).
type failAfter struct{ g gen }

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.g.Read(p)
	if err == io.EOF {
		return n, errBoom
	}
	return n, err
}

func testReaderError(t *testing.T, b Backend, leftovers func() []string) {
	for _, n := range []int64{0, 3 << 20, partSize + 1} {
		_, err := b.Put(context.Background(), "p1/failed", &failAfter{gen{0, n}})
		if !errors.Is(err, errBoom) {
			t.Fatalf("put from a reader failing after %d bytes: %v", n, err)
		}
		assertAbsent(t, b, "p1/failed", leftovers)
	}
}

func testInvalidKeys(t *testing.T, b Backend, _ func() []string) {
	ctx := context.Background()
	bad := []string{"", "/abs", "../x", "a/../b", "a/..", "./a", "a//b", "a/", "a\\b", "a b", "a\x00b", "é",
		"p/" + tmpPrefix + "x", strings.Repeat("k", maxSegment+1),
		strings.Repeat("k/", maxKey/2) + "k"}
	for _, k := range bad {
		if _, err := b.Put(ctx, k, strings.NewReader("x")); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("put %q: %v", k, err)
		}
		if _, err := b.Get(ctx, k, 0, -1); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("get %q: %v", k, err)
		}
		if err := b.Delete(ctx, k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("delete %q: %v", k, err)
		}
	}
	for _, p := range []string{"/", "/x", "../", "a//", "a/../"} {
		if err := b.List(ctx, p, func(string, int64, time.Time) error { return nil }); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("list %q: %v", p, err)
		}
	}
	good := []string{"p/a.b-c_d~e", "a/b/c/d", "p/" + strings.Repeat("k", maxSegment),
		strings.Repeat("k/", maxKey/2-1) + "kk"} // 512 bytes
	for _, k := range good {
		put(t, b, k, 3)
	}
	if got := len(keys(t, b, "")); got != len(good) {
		t.Fatalf("%d of %d valid keys stored", got, len(good))
	}
}

// testConcurrent puts into one new prefix from many goroutines (on the
// filesystem they race to create its directory).
func testConcurrent(t *testing.T, b Backend, _ func() []string) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	infos := make([]Info, n)
	for i := range n {
		wg.Go(func() {
			infos[i], errs[i] = b.Put(context.Background(), fmt.Sprintf("c/k%d", i), stream(int64(1<<20+i)))
		})
	}
	wg.Wait()
	for i := range n {
		wantSum, _ := sum(t, stream(int64(1<<20+i)))
		if errs[i] != nil || infos[i].SHA256 != wantSum {
			t.Fatalf("put #%d: %+v %v", i, infos[i], errs[i])
		}
	}
	if l := keys(t, b, "c/"); len(l) != n {
		t.Fatalf("list: %v", l)
	}
}
