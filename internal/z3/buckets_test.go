package z3

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/z3/blob"
)

// blobBackends are the byte stores Oystehr-style names must work on: local
// files (where a case-insensitive filesystem could merge "X" and "x" if a
// name ever became a path) and S3 (gofakes3 on loopback).
func blobBackends(t *testing.T) map[string]blob.Backend {
	fs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mem := s3mem.New()
	if err := mem.CreateBucket("ward"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(mem, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	s3, err := blob.NewS3(context.Background(), blob.S3Config{Endpoint: srv.URL, Region: "us-east-1", Bucket: "ward",
		Prefix: "z3", AccessKeyID: "test", SecretAccessKey: "test", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]blob.Backend{"files": fs, "s3": s3}
}

// Oystehr's bucket names (long, with capitals) work end to end, and names
// that differ only in case are distinct buckets whose objects never share
// bytes: the name is a database key, never part of a file path or S3 key.
func TestOystehrBucketNames(t *testing.T) {
	const project = "0b6f5a4e-2d36-4c1f-9a59-0b8f1c1e2a10"
	names := []string{
		project + "-TelemedRecordings",
		project + "-telemedrecordings",
		project + "-TELEMEDRECORDINGS",
		project + "-invoiceable-patients-reports",
	}
	blobKey := regexp.MustCompile(`^` + project + `/[0-9a-f-]{36}$`)
	for _, b := range storetest.Backends() {
		for bname, blobs := range blobBackends(t) {
			t.Run(b.Name+"/"+bname, func(t *testing.T) {
				ctx := context.Background()
				st := storetest.Open(t, b)
				svc, err := New(ctx, Config{PublicURL: "http://ward.test"}, st, sealtest.Setup(t, st), blobs, time.Now,
					slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				keys := map[string]string{} // blob key -> bucket
				for _, name := range names {
					if _, err := svc.CreateBucket(ctx, project, name); err != nil {
						t.Fatalf("create %s: %v", name, err)
					}
					o, err := svc.Put(ctx, project, name, "2026/a.txt", "text/plain", strings.NewReader("in "+name))
					if err != nil {
						t.Fatalf("put into %s: %v", name, err)
					}
					if !blobKey.MatchString(o.BlobKey) || keys[o.BlobKey] != "" {
						t.Fatalf("blob key %q of %s: want a fresh <project>/<uuid>", o.BlobKey, name)
					}
					keys[o.BlobKey] = name
				}
				if _, err := svc.CreateBucket(ctx, project, names[0]); err == nil {
					t.Error("the same name twice was accepted")
				}
				listed, err := svc.ListBuckets(ctx, project)
				if err != nil || len(listed) != len(names) {
					t.Fatalf("ListBuckets = %v, %v; want %d buckets", listed, err, len(names))
				}
				for _, name := range names {
					o, err := svc.Get(ctx, project, name, "2026/a.txt")
					if err != nil {
						t.Fatal(err)
					}
					rc, err := o.Read(ctx, 0, -1)
					if err != nil {
						t.Fatal(err)
					}
					got, _ := io.ReadAll(rc)
					rc.Close()
					if string(got) != "in "+name {
						t.Errorf("%s/2026/a.txt = %q", name, got)
					}
					list, err := svc.List(ctx, project, name, "", false)
					if err != nil || len(list) != 1 || list[0].Key != name+"/2026/a.txt" {
						t.Errorf("List(%s) = %v, %v", name, list, err)
					}
					if err := svc.Delete(ctx, project, name, "2026/a.txt"); err != nil {
						t.Fatal(err)
					}
					if err := svc.DeleteBucket(ctx, project, name); err != nil {
						t.Fatal(err)
					}
				}
				if err := blobs.List(ctx, project+"/", func(k string, _ int64, _ time.Time) error {
					t.Errorf("blob %s (of %s) outlived its object", k, keys[k])
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
