package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cacheHits reads a replica's resource cache hits from its /metrics.
func cacheHits(t *testing.T, debugAddr string) int64 {
	t.Helper()
	res, err := http.Get("http://" + debugAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var n int64
	for _, line := range strings.Split(string(body), "\n") {
		if _, err := fmt.Sscanf(line, "ward_resource_cache_hits_total %d", &n); err == nil {
			return n
		}
	}
	t.Fatalf("no ward_resource_cache_hits_total in /metrics:\n%s", body)
	return 0
}

// TestReplicasResourceCache: three replicas on one PostgreSQL. A Patient
// read on replicas 2 and 3 (then served from their resource caches) and
// updated, then deleted, on replica 1 is read at its new version, then as
// gone (410), by the very next read on 2 and 3. A replica frozen (SIGSTOP)
// with a resource cached, past its lease (a write on replica 1 waits for
// it no longer than that), then resumed, does not serve the version it
// cached: its next read has the write.
func TestReplicasResourceCache(t *testing.T) {
	c := newLeaseCluster(t)
	rs := []*ward{c.replica(t), c.replica(t), c.replica(t)}
	debug := make([]string, len(rs))
	for i, r := range rs {
		debug[i] = freeAddr(t)
		r.flags = append(r.flags, "--debug-addr", debug[i])
		r.start(t)
	}
	for _, r := range rs {
		r.waitHealthy(t)
	}
	tok := rs[0].token(t, c.admin(t))

	version := func(out map[string]any) string {
		meta, _ := out["meta"].(map[string]any)
		v, _ := meta["versionId"].(string)
		return v
	}
	// cached reads id on replica i until a read comes from its cache
	// (its lease is taken within moments of its start).
	cached := func(i int, id, want string) {
		t.Helper()
		waitFor(t, fmt.Sprintf("replica %d to serve Patient/%s from its cache", i+1, id), 20*time.Second, func() bool {
			before := cacheHits(t, debug[i])
			st, out := rs[i].fhirDo(t, tok, "GET", "Patient/"+id, nil)
			if st != 200 || version(out) != want {
				t.Fatalf("replica %d read Patient/%s: %d version %q, want 200 version %s", i+1, id, st, version(out), want)
			}
			return cacheHits(t, debug[i]) > before
		})
	}

	st, p := rs[0].fhirDo(t, tok, "POST", "Patient", patient("Cached"))
	if st != 201 {
		t.Fatalf("create: %d %v", st, p)
	}
	id := p["id"].(string)
	cached(1, id, "1")
	cached(2, id, "1")

	upd := patient("Updated")
	upd["id"] = id
	if st, out := rs[0].fhirDo(t, tok, "PUT", "Patient/"+id, upd); st != 200 || version(out) != "2" {
		t.Fatalf("update: %d %v", st, out)
	}
	for _, i := range []int{1, 2} {
		st, out := rs[i].fhirDo(t, tok, "GET", "Patient/"+id, nil)
		names, _ := out["name"].([]any)
		if st != 200 || version(out) != "2" || len(names) != 1 || names[0].(map[string]any)["family"] != "Updated" {
			t.Fatalf("replica %d right after the update: %d %v; want version 2", i+1, st, out)
		}
	}
	cached(1, id, "2")
	cached(2, id, "2")
	if st, out := rs[0].fhirDo(t, tok, "DELETE", "Patient/"+id, nil); st != 200 && st != 204 {
		t.Fatalf("delete: %d %v", st, out)
	}
	for _, i := range []int{1, 2} {
		if st, out := rs[i].fhirDo(t, tok, "GET", "Patient/"+id, nil); st != 410 {
			t.Fatalf("replica %d right after the delete: %d %v; want 410", i+1, st, out)
		}
	}

	// Frozen past its lease.
	st, p = rs[0].fhirDo(t, tok, "POST", "Patient", patient("Frozen"))
	if st != 201 {
		t.Fatalf("create: %d %v", st, p)
	}
	id = p["id"].(string)
	cached(2, id, "1")
	rs[2].signal(t, syscall.SIGSTOP)
	defer rs[2].signal(t, syscall.SIGCONT) // before the cleanup's kill, should the test stop early
	upd = patient("WhileFrozen")
	upd["id"] = id
	start := time.Now()
	if st, out := rs[0].fhirDo(t, tok, "PUT", "Patient/"+id, upd); st != 200 || version(out) != "2" {
		t.Fatalf("update while replica 3 is frozen: %d %v", st, out)
	}
	t.Logf("the update waited %v for the frozen replica (lease 3s)", time.Since(start).Round(time.Millisecond))
	rs[2].signal(t, syscall.SIGCONT)
	st, out := rs[2].fhirDo(t, tok, "GET", "Patient/"+id, nil)
	if st != 200 || version(out) != "2" {
		t.Fatalf("the resumed replica read %d version %q; want 200 version 2 (it served what it had cached)", st, version(out))
	}
}
