package z3

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/z3/blob"
)

// A blob whose object row never committed is deleted once it is older than
// the grace period; blobs objects point at, young orphans and keys of other
// shapes stay.
func TestSweepOrphans(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			blobs, err := blob.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			later := time.Duration(0) // how far the service's clock is ahead
			svc, err := New(ctx, Config{PublicURL: "http://ward.test"}, st, sealtest.Setup(t, st), blobs, func() time.Time { return time.Now().Add(later) },
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			const project = "0b6f5a4e-2d36-4c1f-9a59-0b8f1c1e2a10"
			if _, err := svc.CreateBucket(ctx, project, "docs"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Put(ctx, project, "docs", "a.txt", "text/plain", strings.NewReader("first")); err != nil {
				t.Fatal(err)
			}
			kept, err := svc.Put(ctx, project, "docs", "a.txt", "text/plain", strings.NewReader("second"))
			if err != nil {
				t.Fatal(err)
			}
			// What a crash between a Put's blob and its row leaves, and
			// keys Ward never makes (a bucket shared with other data).
			orphan := project + "/" + uuid.NewString()
			for _, k := range []string{orphan, "notes/readme.txt", project + "/not-a-uuid"} {
				if _, err := blobs.Put(ctx, k, strings.NewReader("x")); err != nil {
					t.Fatal(err)
				}
			}
			all := func() []string {
				var ks []string
				if err := blobs.List(ctx, "", func(k string, _ int64, _ time.Time) error { ks = append(ks, k); return nil }); err != nil {
					t.Fatal(err)
				}
				sort.Strings(ks)
				return ks
			}
			before := all()

			if n, err := svc.SweepOrphans(ctx, time.Hour); err != nil || n != 0 {
				t.Fatalf("sweep of young blobs: %d, %v", n, err)
			}
			if got := all(); strings.Join(got, " ") != strings.Join(before, " ") {
				t.Fatalf("a young orphan was swept: %v, was %v", got, before)
			}

			later = 2 * time.Hour
			if n, err := svc.SweepOrphans(ctx, time.Hour); err != nil || n != 1 {
				t.Fatalf("sweep: %d, %v", n, err)
			}
			want := []string{kept.BlobKey, "notes/readme.txt", project + "/not-a-uuid"}
			sort.Strings(want)
			if got := all(); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("after the sweep: %v, want %v", got, want)
			}
			o, err := svc.Get(ctx, project, "docs", "a.txt")
			if err != nil {
				t.Fatal(err)
			}
			rc, err := o.Read(ctx, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(rc)
			rc.Close()
			if string(body) != "second" {
				t.Fatalf("object after the sweep: %q", body)
			}
			if n, err := svc.SweepOrphans(ctx, time.Hour); err != nil || n != 0 {
				t.Fatalf("second sweep: %d, %v", n, err)
			}
		})
	}
}
