package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/policy/policytest"
	"github.com/wardhealth/ward/internal/replica"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// cacheReplicas opens n stores on one database, each running a replica
// watcher (on PostgreSQL: a listener with a lease, so its resource cache
// serves reads), and waits until every lease holds. On SQLite n is 1:
// one process serves the file.
func cacheReplicas(t *testing.T, backend, dsn string, n int) []*store.Store {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if backend == "sqlite" {
		n = 1
	}
	var out []*store.Store
	done := make(chan struct{}, n)
	t.Cleanup(func() {
		cancel()
		for range out {
			<-done
		}
	})
	for range n {
		st, err := store.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		v, err := st.ChangeVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		noop := func(context.Context) error { return nil }
		w := replica.New(st, v, replica.Apply{Revoked: func(string, time.Time) {}, Project: func(string) {}, Keys: noop, All: noop},
			replica.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		go func() { w.Run(ctx); done <- struct{}{} }()
		out = append(out, st)
	}
	if backend == "postgres" {
		waitUntil(t, "every replica's lease", func() bool {
			for _, st := range out {
				if !st.CacheLeased() {
					return false
				}
			}
			return true
		})
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestResourceCacheWritePaths: a resource read (and cached) on replica 2
// and written on replica 1 by each write path is read at its new version
// (or as deleted) by the very next read on replica 2, which was served
// from the cache before the write.
func TestResourceCacheWritePaths(t *testing.T) {
	ctx := context.Background()
	p := auth.Principal{ProjectID: "p1", Kind: auth.KindDeveloper, ID: "d"}
	patient := func(family string) []byte {
		return []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}],"identifier":[{"system":"urn:t","value":"` + family + `"}]}`)
	}
	type write func(t *testing.T, f *fhir.Service, id string)
	cases := []struct {
		name    string
		write   write
		deleted bool
	}{
		{"PUT", func(t *testing.T, f *fhir.Service, id string) {
			body := `{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Put"}]}`
			if _, _, err := f.Update(ctx, p, "Patient", id, []byte(body), ""); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"PATCH", func(t *testing.T, f *fhir.Service, id string) {
			if _, err := f.Patch(ctx, p, "Patient", id, []byte(`[{"op":"replace","path":"/name/0/family","value":"Patched"}]`), ""); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"DELETE", func(t *testing.T, f *fhir.Service, id string) {
			if err := f.Delete(ctx, p, "Patient", id); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"transaction", func(t *testing.T, f *fhir.Service, id string) {
			body := `{"resourceType":"Patient","id":"` + id + `","name":[{"family":"InTransaction"}]}`
			if err := f.SystemPutAll(ctx, p.ProjectID, []fhir.SystemPut{{Type: "Patient", ID: id, Body: []byte(body), IfVersion: 1},
				{Type: "Patient", ID: id + "-other", Body: []byte(`{"resourceType":"Patient"}`)}}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"conditional update", func(t *testing.T, f *fhir.Service, id string) {
			body := `{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Conditional"}],"identifier":[{"system":"urn:t","value":"` + id + `"}]}`
			if _, _, err := f.ConditionalUpdate(ctx, p, "Patient", "identifier=urn:t|"+id, []byte(body), ""); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"conditional delete", func(t *testing.T, f *fhir.Service, id string) {
			if _, err := f.ConditionalDelete(ctx, p, "Patient", "identifier=urn:t|"+id); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			rs := cacheReplicas(t, b.Name, b.DSN(t), 2)
			one, two := rs[0], rs[len(rs)-1]
			f1 := fhir.New(one, policytest.AllowAll{}, fhir.Config{}, time.Now)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					created, _, err := f1.Create(ctx, p, "Patient", patient(fmt.Sprintf("c%d", i)), "")
					if err != nil {
						t.Fatal(err)
					}
					id := created.ID
					if tc.name == "conditional update" || tc.name == "conditional delete" {
						// The identifier the condition matches is the id.
						body := `{"resourceType":"Patient","id":"` + id + `","identifier":[{"system":"urn:t","value":"` + id + `"}]}`
						if _, _, err := f1.Update(ctx, p, "Patient", id, []byte(body), ""); err != nil {
							t.Fatal(err)
						}
					}
					before, err := two.GetResource(ctx, "p1", "Patient", id)
					if err != nil {
						t.Fatal(err)
					}
					hits := two.ResourceCacheStats().Hits
					if again, err := two.GetResource(ctx, "p1", "Patient", id); err != nil || again.VersionID != before.VersionID {
						t.Fatalf("second read: %+v %v", again, err)
					}
					if b.Name == "postgres" && two.ResourceCacheStats().Hits != hits+1 {
						t.Fatal("the second read on replica 2 did not come from its cache")
					}
					tc.write(t, f1, id)
					after, err := two.GetResource(ctx, "p1", "Patient", id)
					if err != nil {
						t.Fatal(err)
					}
					if after.VersionID != before.VersionID+1 || after.Deleted != tc.deleted {
						t.Fatalf("replica 2 read version %d (deleted %v) right after the write; want %d (deleted %v)",
							after.VersionID, after.Deleted, before.VersionID+1, tc.deleted)
					}
					// And the writer's own cache.
					if mine, err := one.GetResource(ctx, "p1", "Patient", id); err != nil || mine.VersionID != after.VersionID {
						t.Fatalf("replica 1 read %+v %v after its own write", mine, err)
					}
				})
			}
		})
	}
}

// TestResourceCacheLease: a replica whose lease ran out on its clock reads
// the database, and when it takes the lease again it starts with an empty
// cache; a replica alone takes no marks (its writes wait for nobody), two
// do.
func TestResourceCacheLease(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	rs := cacheReplicas(t, "postgres", dsn, 1)
	one := rs[0]
	f := fhir.New(one, policytest.AllowAll{}, fhir.Config{}, time.Now)
	p := auth.Principal{ProjectID: "p1", Kind: auth.KindDeveloper, ID: "d"}
	created, _, err := f.Create(ctx, p, "Patient", []byte(`{"resourceType":"Patient"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	read := func(st *store.Store) {
		t.Helper()
		if _, err := st.GetResource(ctx, "p1", "Patient", created.ID); err != nil {
			t.Fatal(err)
		}
	}
	read(one)
	read(one)
	if st := one.ResourceCacheStats(); st.Hits != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v: want one hit, one entry", st)
	}

	marks := func() int64 {
		t.Helper()
		var called bool
		var last int64
		if err := one.QueryRowScan(ctx, `SELECT last_value, is_called FROM resource_marks`, &last, &called); err != nil {
			t.Fatal(err)
		}
		if !called {
			return 0
		}
		return last
	}
	if !one.CacheAlone() {
		t.Fatal("a replica alone thinks others may hold leases")
	}
	m := marks()
	body := `{"resourceType":"Patient","id":"` + created.ID + `","active":true}`
	if _, _, err := f.Update(ctx, p, "Patient", created.ID, []byte(body), ""); err != nil {
		t.Fatal(err)
	}
	if got := marks(); got != m {
		t.Fatalf("a write of a replica alone took marks %d..%d: it waits for nobody", m, got)
	}

	// Cached again after the write (a read that raced the write's own
	// announcement coming back is not cached: read until one is).
	waitUntil(t, "the resource cached again", func() bool {
		read(one)
		return one.ResourceCacheStats().Entries == 1
	})
	hits := one.ResourceCacheStats().Hits
	one.ExpireCacheLease() // as if frozen past its lease
	// Unleased, reads go to the database; should the listener take the
	// lease anew meanwhile, it empties the cache first: no hit either way.
	read(one)
	retaken := one.CacheLeased() // then that read may have cached anew
	if st := one.ResourceCacheStats(); st.Hits != hits {
		t.Fatalf("stats %+v: served from the cache without a lease (hits were %d)", st, hits)
	}
	waitUntil(t, "the lease taken anew", one.CacheLeased)
	if st := one.ResourceCacheStats(); !retaken && st.Entries != 0 {
		t.Fatalf("stats %+v: the cache kept entries across a lapsed lease", st)
	}

	two := cacheReplicas(t, "postgres", dsn, 1)[0]
	waitUntil(t, "replica 1 to know of replica 2", func() bool { return !one.CacheAlone() })
	read(two)
	m = marks()
	body = `{"resourceType":"Patient","id":"` + created.ID + `","active":false}`
	if _, _, err := f.Update(ctx, p, "Patient", created.ID, []byte(body), ""); err != nil {
		t.Fatal(err)
	}
	if got := marks(); got <= m {
		t.Fatal("a write with another leased replica took no mark")
	}
	if r, err := two.GetResource(ctx, "p1", "Patient", created.ID); err != nil || r.VersionID != 3 {
		t.Fatalf("replica 2 read %+v %v; want version 3", r, err)
	}
}
