package blob

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
)

// fakeS3 is an S3 protocol server (gofakes3, objects in memory) for one
// bucket, "ward". minio-go speaks to it over HTTP exactly as to AWS.
func fakeS3() http.Handler {
	mem := s3mem.New()
	if err := mem.CreateBucket("ward"); err != nil {
		panic(err)
	}
	return gofakes3.New(mem, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
}

func openS3(t testing.TB, endpoint string) *S3 {
	t.Helper()
	b, err := NewS3(context.Background(), S3Config{Endpoint: endpoint, Region: "us-east-1", Bucket: "ward",
		Prefix: "z3", AccessKeyID: "test", SecretAccessKey: "test", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// s3Harness runs each case against a fresh server on 127.0.0.1:0, in
// process; leftovers are incomplete multipart uploads.
var s3Harness = harness{name: "s3", open: func(t *testing.T) (Backend, func() []string) {
	srv := httptest.NewServer(fakeS3())
	t.Cleanup(srv.Close)
	b := openS3(t, srv.URL)
	return b, func() []string { return incomplete(t, b) }
}}

func incomplete(t testing.TB, b *S3) []string {
	t.Helper()
	var found []string
	for u := range b.c.ListIncompleteUploads(context.Background(), b.bucket, "", true) {
		if u.Err != nil {
			if minio.ToErrorResponse(u.Err).Code == "NoSuchUpload" {
				break // gofakes3's answer when the bucket never had one
			}
			t.Fatal(u.Err)
		}
		found = append(found, u.Key)
	}
	return found
}

func TestNewS3(t *testing.T) {
	srv := httptest.NewServer(fakeS3())
	defer srv.Close()
	for _, cfg := range []S3Config{
		{Endpoint: "127.0.0.1:9000", Bucket: "ward"},
		{Endpoint: "ftp://127.0.0.1", Bucket: "ward"},
		{Endpoint: srv.URL, Bucket: "nope", PathStyle: true, Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b"},
	} {
		if _, err := NewS3(context.Background(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestS3SweepUploads aborts the parts of an upload a crash interrupted,
// once it is old enough.
func TestS3SweepUploads(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(fakeS3())
	defer srv.Close()
	b := openS3(t, srv.URL)
	// What a Put killed after its first part leaves.
	id, err := b.c.NewMultipartUpload(ctx, b.bucket, b.prefix+"p/crashed", putOpts)
	if err != nil {
		t.Fatal(err)
	}
	part := want(0, 5<<20)
	if _, err := b.c.PutObjectPart(ctx, b.bucket, b.prefix+"p/crashed", id, 1, strings.NewReader(string(part)), int64(len(part)),
		minio.PutObjectPartOptions{DisableContentSha256: true}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.SweepUploads(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("sweep of a fresh upload: %d, %v", n, err)
	}
	if n, err := b.SweepUploads(ctx, 0); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if l := incomplete(t, b); len(l) != 0 {
		t.Fatalf("after the sweep: %v", l)
	}
	if _, err := b.Get(ctx, "p/crashed", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get: %v", err)
	}
}

// s3ServerEnv makes the test binary an S3 server for TestPutMemory.
const s3ServerEnv = "WARD_BLOB_S3_SERVER"

// s3ServerChild serves fakeS3 on loopback, prints its URL, and exits when
// its stdin closes (the parent finished or died).
func s3ServerChild() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = http.Serve(ln, fakeS3()) }()
	fmt.Printf("http://%s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// TestPutMemory checks a 64 MiB Put allocates a bounded amount, whatever
// the body's size: for S3 about one part, for files two 1 MiB chunks. The
// S3 server runs in a child process so that only the client's
// allocations are counted.
func TestPutMemory(t *testing.T) {
	if os.Getenv(s3ServerEnv) != "" {
		s3ServerChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPutMemory$")
	cmd.Env = append(os.Environ(), s3ServerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	fsb, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		b     Backend
		limit uint64
	}{
		{"fs", fsb, 4 << 20},
		{"s3", openS3(t, strings.TrimSpace(url)), partSize + 8<<20},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := c.b.Put(context.Background(), "p/big", stream(64<<20)); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: a 64 MiB Put allocated %.1f MiB", c.name, float64(alloc)/(1<<20))
		if alloc > c.limit {
			t.Errorf("%s: a 64 MiB Put allocated %d bytes, more than %d", c.name, alloc, c.limit)
		}
	}
}
