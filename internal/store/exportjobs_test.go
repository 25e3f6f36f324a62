package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func TestExportJobLeases(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			t0 := time.UnixMilli(1_800_000_000_000).UTC()
			lease := 30 * time.Second
			job := store.ExportJob{ProjectID: "p1", ID: "j1", Principal: []byte(`{}`), Request: "r", Params: []byte(`{}`),
				TransactionTime: t0, CreatedAt: t0, Cursor: []byte(`{}`)}
			if err := st.CreateExportJob(ctx, job); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateExportJob(ctx, job); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("second create with the same id: %v, want ErrConflict", err)
			}
			if _, err := st.GetExportJob(ctx, "p2", "j1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("another project's job: %v, want ErrNotFound", err)
			}

			a, err := st.ClaimExportJob(ctx, "A", t0, lease)
			if err != nil || a.ID != "j1" || a.LeaseOwner != "A" {
				t.Fatalf("claim A: %+v %v", a, err)
			}
			if _, err := st.ClaimExportJob(ctx, "B", t0.Add(lease-time.Millisecond), lease); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("claim B under A's lease: %v, want ErrNotFound", err)
			}
			if err := st.CheckpointExportJob(ctx, "p1", "j1", "B", t0, lease, store.Checkpoint{Cursor: []byte(`{"x":1}`)}); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("checkpoint by a non-holder: %v, want ErrConflict", err)
			}
			f0 := &store.ExportFile{Seq: 0, Type: "Patient", Path: "j1/0-A", Count: 3}
			if err := st.CheckpointExportJob(ctx, "p1", "j1", "A", t0.Add(time.Second), lease, store.Checkpoint{Cursor: []byte(`{"files":1}`), Written: 3, File: f0}); err != nil {
				t.Fatal(err)
			}
			// The checkpoint renewed the lease from t0+1s.
			if _, err := st.ClaimExportJob(ctx, "B", t0.Add(lease), lease); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("claim B under A's renewed lease: %v, want ErrNotFound", err)
			}
			// A stalls past its lease: B takes the job over at A's checkpoint.
			bj, err := st.ClaimExportJob(ctx, "B", t0.Add(lease+2*time.Second), lease)
			if err != nil || string(bj.Cursor) != `{"files":1}` || bj.Written != 3 {
				t.Fatalf("claim B after A's lease: %+v %v", bj, err)
			}
			f1 := &store.ExportFile{Seq: 1, Type: "Patient", Path: "j1/1-A", Count: 2}
			if err := st.CheckpointExportJob(ctx, "p1", "j1", "A", t0.Add(lease+3*time.Second), lease, store.Checkpoint{Written: 5, File: f1}); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("checkpoint by A after losing the lease: %v, want ErrConflict", err)
			}
			if files, err := st.ExportFiles(ctx, "p1", "j1"); err != nil || len(files) != 1 || files[0] != *f0 {
				t.Fatalf("files after A's lost checkpoint: %+v %v (its file must not be recorded)", files, err)
			}
			if err := st.FinishExportJob(ctx, "p1", "j1", "A", t0, store.ExportDone, 0, ""); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("finish by A: %v, want ErrConflict", err)
			}
			if err := st.ReleaseExportJob(ctx, "p1", "j1", "B"); err != nil {
				t.Fatal(err)
			}
			// Released: claimable at once, by anyone.
			cj, err := st.ClaimExportJob(ctx, "C", t0.Add(lease+4*time.Second), lease)
			if err != nil || cj.LeaseOwner != "C" {
				t.Fatalf("claim after release: %+v %v", cj, err)
			}
			if err := st.FinishExportJob(ctx, "p1", "j1", "C", t0.Add(lease+5*time.Second), store.ExportDone, 0, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ClaimExportJob(ctx, "D", t0.Add(time.Hour), lease); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("claim of a finished job: %v, want ErrNotFound", err)
			}
			done, err := st.GetExportJob(ctx, "p1", "j1")
			if err != nil || done.Status != store.ExportDone || done.LeaseOwner != "" {
				t.Fatalf("finished job: %+v %v", done, err)
			}
			if _, err := st.DeleteExportJob(ctx, "p2", "j1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("delete from another project: %v, want ErrNotFound", err)
			}
			files, err := st.DeleteExportJob(ctx, "p1", "j1")
			if err != nil || len(files) != 1 {
				t.Fatalf("delete: %+v %v", files, err)
			}
			if _, err := st.GetExportJob(ctx, "p1", "j1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleted job: %v", err)
			}
			if err := st.CheckpointExportJob(ctx, "p1", "j1", "C", t0, lease, store.Checkpoint{}); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("checkpoint of a deleted job: %v, want ErrConflict", err)
			}
		})
	}
}

// Replicas claiming at once: each job goes to exactly one claimant.
func TestExportJobClaimRace(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			now := time.Now()
			const jobs, claimants = 3, 8
			for i := range jobs {
				j := store.ExportJob{ProjectID: "p", ID: fmt.Sprint("j", i), Principal: []byte(`{}`), Params: []byte(`{}`),
					TransactionTime: now, CreatedAt: now.Add(time.Duration(i) * time.Millisecond)}
				if err := st.CreateExportJob(ctx, j); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			got := map[string][]string{}
			var wg sync.WaitGroup
			for c := range claimants {
				wg.Add(1)
				go func() {
					defer wg.Done()
					owner := fmt.Sprint("c", c)
					for {
						j, err := st.ClaimExportJob(ctx, owner, now, time.Minute)
						if errors.Is(err, store.ErrNotFound) {
							return
						}
						if errors.Is(err, store.ErrConflict) {
							continue // a lost race on PostgreSQL: claim again
						}
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						got[j.ID] = append(got[j.ID], owner)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(got) != jobs {
				t.Fatalf("claimed %d jobs of %d: %v", len(got), jobs, got)
			}
			for id, owners := range got {
				if len(owners) != 1 {
					t.Errorf("job %s claimed by %v, want one claimant", id, owners)
				}
			}
		})
	}
}

// A principal's jobs list newest first, in pages, with their total, and
// never another project's or another owner's.
func TestListExportJobs(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			t0 := time.UnixMilli(1_800_000_000_000).UTC()
			for i, j := range []struct{ project, owner string }{{"p1", "a"}, {"p1", "a"}, {"p2", "a"}, {"p1", "b"}, {"p1", "a"}} {
				at := t0.Add(time.Duration(i) * time.Second)
				if err := st.CreateExportJob(ctx, store.ExportJob{ProjectID: j.project, ID: fmt.Sprintf("j%d", i), Principal: []byte(`{}`), Owner: j.owner,
					Request: "r", Params: []byte(`{}`), TransactionTime: at, CreatedAt: at, Cursor: []byte(`{}`)}); err != nil {
					t.Fatal(err)
				}
			}
			ids := func(owner string, limit, offset int) string {
				t.Helper()
				got, total, err := st.ListExportJobs(ctx, "p1", owner, limit, offset)
				if err != nil {
					t.Fatal(err)
				}
				out := fmt.Sprint(total)
				for _, j := range got {
					if j.ProjectID != "p1" || j.Status != store.ExportRunning {
						t.Errorf("job %+v", j)
					}
					out += " " + j.ID
				}
				return out
			}
			for _, tc := range []struct {
				owner         string
				limit, offset int
				want          string
			}{{"a", 10, 0, "3 j4 j1 j0"}, {"a", 2, 0, "3 j4 j1"}, {"a", 2, 2, "3 j0"}, {"a", 2, 5, "3"}, {"b", 10, 0, "1 j3"}, {"c", 10, 0, "0"}} {
				if got := ids(tc.owner, tc.limit, tc.offset); got != tc.want {
					t.Errorf("owner %s, limit %d, offset %d: %s, want %s", tc.owner, tc.limit, tc.offset, got, tc.want)
				}
			}
		})
	}
}
