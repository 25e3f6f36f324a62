package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestConcurrentUpdates: writers of one resource without If-Match take
// turns (each succeeds with a version of its own), on every backend, both
// when the resource exists and when they race to create it; writers that
// all name the same If-Match version leave one winner and 412 for the rest.
func TestConcurrentUpdates(t *testing.T) {
	const n = 8
	cases := []struct {
		name    string
		exists  bool // the resource is at version 1 before the writers start
		ifMatch string
		wantOK  int
	}{
		{name: "plain update", exists: true, wantOK: n},
		{name: "plain create", exists: false, wantOK: n},
		{name: "same if-match", exists: true, ifMatch: `W/"1"`, wantOK: 1},
	}
	for _, b := range storetest.Backends() {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t, b, Config{})
				body := func(i int) []byte {
					return fmt.Appendf(nil, `{"resourceType":"Patient","id":"p1","gender":"other","birthDate":"2000-01-%02d"}`, i+1)
				}
				if tc.exists {
					if _, _, err := f.svc.Update(ctx, f.admin, "Patient", "p1", body(n), ""); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				versions := make([]int64, n)
				errs := make([]error, n)
				created := make([]bool, n)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r, c, err := f.svc.Update(ctx, f.admin, "Patient", "p1", body(i), tc.ifMatch)
						versions[i], created[i], errs[i] = r.VersionID, c, err
					}()
				}
				wg.Wait()
				seen := map[int64]bool{}
				ok, creates := 0, 0
				for i, err := range errs {
					if created[i] {
						creates++
					}
					if err != nil {
						if status, _ := fault.Public(err); status != http.StatusPreconditionFailed || tc.ifMatch == "" {
							t.Errorf("writer %d: status %d: %v", i, status, err)
						}
						if !errors.Is(err, fault.ErrPrecondition) {
							t.Errorf("writer %d: %v is not a precondition failure", i, err)
						}
						continue
					}
					ok++
					if seen[versions[i]] {
						t.Errorf("version %d written twice", versions[i])
					}
					seen[versions[i]] = true
				}
				// Exactly one writer reports a create (201) when the
				// resource was absent, none when it existed.
				if wantCreates := map[bool]int{false: 1, true: 0}[tc.exists]; creates != wantCreates {
					t.Errorf("%d writers created, want %d", creates, wantCreates)
				}
				if ok != tc.wantOK {
					t.Errorf("%d writers succeeded, want %d", ok, tc.wantOK)
				}
				cur, err := f.svc.Read(ctx, f.admin, "Patient", "p1")
				if err != nil {
					t.Fatal(err)
				}
				want := int64(ok)
				if tc.exists {
					want++
				}
				if cur.VersionID != want {
					t.Errorf("current version %d, want %d", cur.VersionID, want)
				}
			})
		}
	}
}

// TestConcurrentPatches: patches without If-Match take turns like plain
// updates: every one applies (none is lost to another's read-modify-write)
// and none fails; with one shared If-Match one wins and the rest get 412.
func TestConcurrentPatches(t *testing.T) {
	const n = 8
	for _, b := range storetest.Backends() {
		for _, ifMatch := range []string{"", `W/"1"`} {
			t.Run(fmt.Sprintf("%s/if-match=%q", b.Name, ifMatch), func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t, b, Config{})
				if _, _, err := f.svc.Update(ctx, f.admin, "Patient", "p1", []byte(`{"resourceType":"Patient","id":"p1","identifier":[{"value":"start"}]}`), ""); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				errs := make([]error, n)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						op := fmt.Appendf(nil, `[{"op":"add","path":"/identifier/-","value":{"value":"w%d"}}]`, i)
						_, errs[i] = f.svc.Patch(ctx, f.admin, "Patient", "p1", op, ifMatch)
					}()
				}
				wg.Wait()
				ok := 0
				for i, err := range errs {
					switch {
					case err == nil:
						ok++
					case ifMatch == "" || !errors.Is(err, fault.ErrPrecondition):
						t.Errorf("patch %d: %v", i, err)
					}
				}
				want := n
				if ifMatch != "" {
					want = 1
				}
				if ok != want {
					t.Fatalf("%d patches succeeded, want %d", ok, want)
				}
				cur, err := f.svc.Read(ctx, f.admin, "Patient", "p1")
				if err != nil {
					t.Fatal(err)
				}
				var got struct{ Identifier []struct{ Value string } }
				if err := json.Unmarshal(cur.Content, &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Identifier) != want+1 || cur.VersionID != int64(want+1) {
					t.Errorf("version %d with %d identifiers, want %d with %d: a patch was lost", cur.VersionID, len(got.Identifier), want+1, want+1)
				}
			})
		}
	}
}
