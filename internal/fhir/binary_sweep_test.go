package fhir

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/iam/iamtest"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/z3/blob"
)

// Binary contents in Z3 stay while any version names them (updates and
// deletes keep history readable); a content no version names (a write
// that failed after its upload) is deleted by SweepBinaries once older
// than the grace, row and blob.
func TestSweepBinaries(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			var offset atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			st := storetest.Open(t, b)
			authz := iam.New(st, "http://x/invite/", time.Now, iam.Deps{})
			admin := iamtest.Project(t, authz, st, "test")
			blobs, err := blob.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			zs, err := z3.New(ctx, z3.Config{PublicURL: "http://ward.test"}, st, sealtest.Setup(t, st), blobs, now, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			svc := New(st, authz, Config{Binaries: zs.Binaries(), InlineBinaryBytes: 16}, now)
			keys := func() []string {
				t.Helper()
				objs, err := st.ListObjects(ctx, admin.ProjectID, "_fhir-binary", "", 0)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, o := range objs {
					out = append(out, o.Path)
				}
				return out
			}
			content := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 100) }
			put := func(id string, i int, ifMatch string) (Resource, error) {
				r, _, err := svc.PutBinary(ctx, admin, id, BinaryUpload{ContentType: "application/octet-stream", Body: bytes.NewReader(content(i)), IfMatch: ifMatch})
				return r, err
			}
			readVersion := func(id, vid string, i int) {
				t.Helper()
				res, err := svc.VRead(ctx, admin, "Binary", id, vid)
				if err != nil {
					t.Fatalf("vread %s/%s: %v", id, vid, err)
				}
				bc, err := svc.OpenBinary(ctx, admin.ProjectID, res)
				if err != nil {
					t.Fatalf("open %s/%s: %v", id, vid, err)
				}
				defer bc.Body.Close()
				if got, _ := io.ReadAll(bc.Body); !bytes.Equal(got, content(i)) {
					t.Fatalf("%s/%s holds %.20q", id, vid, got)
				}
			}
			sweep := func(grace time.Duration, want int) {
				t.Helper()
				if n, err := svc.SweepBinaries(ctx, grace); err != nil || n != want {
					t.Fatalf("sweep (grace %v): %d %v, want %d", grace, n, err, want)
				}
			}

			r, err := put("", 0, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := put(r.ID, 1, ""); err != nil {
				t.Fatal(err)
			}
			if err := svc.Delete(ctx, admin, "Binary", r.ID); err != nil {
				t.Fatal(err)
			}
			named := keys()
			if len(named) != 2 {
				t.Fatalf("%d contents after a create and an update, want 2", len(named))
			}
			// A write that fails after its upload: a stale If-Match.
			if _, err := put(r.ID, 2, `W/"1"`); !errors.Is(err, fault.ErrPrecondition) && !errors.Is(err, fault.ErrConflict) {
				t.Fatalf("stale If-Match: %v", err)
			}
			all := keys()
			orphan := slices.DeleteFunc(slices.Clone(all), func(k string) bool { return slices.Contains(named, k) })
			if len(all) != 3 || len(orphan) != 1 {
				t.Fatalf("contents after a failed write: %v (named %v)", all, named)
			}

			sweep(time.Hour, 0) // all younger than the grace
			offset.Store(int64(2 * time.Hour))
			sweep(time.Hour, 1)
			if got := keys(); !slices.Equal(got, named) {
				t.Fatalf("contents after the sweep: %v, want the named %v", got, named)
			}
			if _, _, err := zs.Binaries().OpenBinary(ctx, admin.ProjectID, orphan[0]); !errors.Is(err, fault.ErrNotFound) {
				t.Errorf("the orphan's content after the sweep: %v", err)
			}
			// History still reads every version's bytes, the deleted
			// Binary's included.
			readVersion(r.ID, "1", 0)
			readVersion(r.ID, "2", 1)
			sweep(0, 0)
			var n int
			err = st.EachVersionContaining(ctx, admin.ProjectID, "Binary", binaryBlobURL, func(c []byte) error {
				if strings.Contains(string(c), binaryBlobURL) {
					n++
				}
				return nil
			})
			// The delete's version keeps the last content, so names it too.
			if err != nil || n != 3 {
				t.Errorf("versions naming a content: %d %v, want 3", n, err)
			}
		})
	}
}
