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

// Every case runs on every backend, each on a fresh database.
var suite = []struct {
	name string
	run  func(t *testing.T, s *store.Store)
}{
	{"projects", testProjects},
	{"roles and holders", testRoles},
	{"m2m clients and paging", testM2M},
	{"developers", testDevelopers},
	{"signing keys and revocation", testKeys},
	{"transaction rollback", testRollback},
	{"concurrent writers", testConcurrentWrites},
	{"a failing transaction among concurrent ones", testFailingAmongConcurrent},
	{"use after close", testUseAfterClose},
	{"z3 buckets and objects", testZ3},
	{"zambdas, secrets, logs and ticks", testZambdas},
	{"oauth codes and refresh tokens", testOAuthGrants},
	{"login failures", testLoginFailures},
	{"rate counts", testRateCounts},
	{"fax numbers", testFaxNumbers},
	{"payment charges and local cards", testPayments},
	{"payment refunds", testRefunds},
	{"sign-in sessions and remembered consent", testSignIn},
	{"user mfa and password resets", testUserMFA},
	{"console sessions", testConsoleSessions},
}

func TestStore(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			for _, c := range suite {
				t.Run(c.name, func(t *testing.T) { c.run(t, storetest.Open(t, b)) })
			}
		})
	}
}

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func mkProject(t *testing.T, s *store.Store, id string) {
	t.Helper()
	if err := s.CreateProject(context.Background(), store.Project{ID: id, Name: "P " + id, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

func testProjects(t *testing.T, s *store.Store) {
	ctx := context.Background()
	mkProject(t, s, "p1")
	if err := s.CreateProject(ctx, store.Project{ID: "p1", Name: "dup", CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate project: got %v, want ErrConflict", err)
	}
	p, err := s.GetProject(ctx, "p1")
	if err != nil || p.Name != "P p1" || !p.CreatedAt.Equal(t0) {
		t.Fatalf("get project = %+v, %v", p, err)
	}
	p.SignupEnabled, p.DefaultPatientRoleID, p.Description, p.RateLimit = true, "r1", "d", 120
	if err := s.UpdateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetProject(ctx, "p1"); !got.SignupEnabled || got.DefaultPatientRoleID != "r1" || got.Description != "d" || got.RateLimit != 120 {
		t.Fatalf("updated project = %+v", got)
	}
	if _, err := s.GetProject(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing project: got %v, want ErrNotFound", err)
	}
	if err := s.UpdateProject(ctx, store.Project{ID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing project: got %v", err)
	}
}

func testRoles(t *testing.T, s *store.Store) {
	ctx := context.Background()
	mkProject(t, s, "p1")
	mkProject(t, s, "p2")
	r := store.Role{ProjectID: "p1", ID: "r1", Name: "reader", AccessPolicy: []byte(`{"rule":[]}`), CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateRole(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRole(ctx, store.Role{ProjectID: "p1", ID: "r2", Name: "reader", AccessPolicy: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate role name: got %v", err)
	}
	// Same name in another project is fine, and invisible from p1.
	if err := s.CreateRole(ctx, store.Role{ProjectID: "p2", ID: "r9", Name: "reader", AccessPolicy: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRole(ctx, "p1", "r9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cross-project role read: got %v", err)
	}
	if err := s.SetRoles(ctx, "p1", store.Holder{Kind: "m2m", ID: "c1"}, []string{"r1"}); err != nil {
		t.Fatal(err)
	}
	holders, err := s.RoleHolders(ctx, "p1", "r1")
	if err != nil || len(holders) != 1 || holders[0] != (store.Holder{Kind: "m2m", ID: "c1"}) {
		t.Fatalf("holders = %v, %v", holders, err)
	}
	counts, _ := s.RoleMemberCounts(ctx, "p1")
	if counts["r1"] != 1 {
		t.Fatalf("member counts = %v", counts)
	}
	r.Name, r.AccessPolicy = "reader2", []byte(`{"rule":[{"x":1}]}`)
	if err := s.UpdateRole(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.RolesByID(ctx, "p1", []string{"r1", "r9", "zz"})
	if err != nil || len(got) != 1 || got[0].Name != "reader2" || string(got[0].AccessPolicy) != `{"rule":[{"x":1}]}` {
		t.Fatalf("roles by id = %+v, %v", got, err)
	}
	if err := s.DeleteRole(ctx, "p1", "r1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRole(ctx, "p1", "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: got %v", err)
	}
}

func testM2M(t *testing.T, s *store.Store) {
	ctx := context.Background()
	mkProject(t, s, "p1")
	for i := 0; i < 5; i++ {
		c := store.M2MClient{ProjectID: "p1", ID: fmt.Sprintf("id%d", i), ClientID: fmt.Sprintf("cid%d", i), SecretHash: "h", Name: fmt.Sprintf("client %d", 4-i), CreatedAt: t0}
		if i == 4 {
			c.ExecutionRoleID = "r1"
		}
		if err := s.CreateM2M(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateM2M(ctx, store.M2MClient{ProjectID: "p1", ID: "x", ClientID: "cid0", Name: "dup", CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate client id: got %v", err)
	}
	visible, _ := s.ListM2M(ctx, "p1", store.M2MFilter{})
	if len(visible) != 4 {
		t.Fatalf("hidden clients listed: %d", len(visible))
	}
	// Page by name, two at a time.
	var names []string
	after := ""
	for page := 0; page < 5; page++ {
		got, err := s.ListM2M(ctx, "p1", store.M2MFilter{SortByName: true, After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got {
			names = append(names, c.Name)
		}
		if len(got) < 2 {
			break
		}
		last := got[len(got)-1]
		after = last.Name + "\x00" + last.ID
	}
	if fmt.Sprint(names) != "[client 1 client 2 client 3 client 4]" {
		t.Fatalf("paged names = %v", names)
	}
	c, err := s.GetM2MByClientID(ctx, "cid2")
	if err != nil || c.ID != "id2" || c.AccessPolicy != nil {
		t.Fatalf("by client id = %+v, %v", c, err)
	}
	if hidden, err := s.GetExecutionRoleClient(ctx, "p1", "r1"); err != nil || hidden.ID != "id4" {
		t.Fatalf("execution role client = %+v, %v", hidden, err)
	}
	if err := s.SetM2MSecret(ctx, "p1", "id2", "h2"); err != nil {
		t.Fatal(err)
	}
	c.AccessPolicy, c.Name = []byte(`{"rule":[]}`), "renamed"
	if err := s.UpdateM2M(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetM2M(ctx, "p1", "id2"); got.SecretHash != "h2" || got.Name != "renamed" || string(got.AccessPolicy) != `{"rule":[]}` {
		t.Fatalf("after update = %+v", got)
	}
	if err := s.DeleteM2M(ctx, "p1", "id2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetM2M(ctx, "p1", "id2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted client: %v", err)
	}
}

func testDevelopers(t *testing.T, s *store.Store) {
	ctx := context.Background()
	mkProject(t, s, "p1")
	if err := s.CreateDeveloperAccount(ctx, "d1", "a@x.org", "A", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDeveloperAccount(ctx, "d2", "a@x.org", "B", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email: %v", err)
	}
	if id, err := s.GetDeveloperAccountByEmail(ctx, "a@x.org"); err != nil || id != "d1" {
		t.Fatalf("by email = %q, %v", id, err)
	}
	d := store.Developer{ProjectID: "p1", ID: "d1", PractitionerID: "prac1", InvitationHash: "ih", InvitationExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
	if err := s.AddDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDeveloper(ctx, "p1", "d1")
	if err != nil || got.Email != "a@x.org" || got.InvitationHash != "ih" || !got.InvitationExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("developer = %+v, %v", got, err)
	}
	if err := s.UpdateDeveloperPolicy(ctx, "p1", "d1", []byte(`{"rule":[]}`)); err != nil {
		t.Fatal(err)
	}
	list, _ := s.ListDevelopers(ctx, "p1")
	if len(list) != 1 || string(list[0].AccessPolicy) != `{"rule":[]}` {
		t.Fatalf("list = %+v", list)
	}
	if err := s.RemoveDeveloper(ctx, "p1", "d1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDeveloper(ctx, "p1", "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removed developer: %v", err)
	}
}

func testKeys(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for i, kid := range []string{"k1", "k2"} {
		if err := s.InsertSigningKey(ctx, store.SigningKey{KID: kid, Alg: "RS256", Sealed: []byte("sealed"), CreatedAt: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RetireSigningKeys(ctx, "k2", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListSigningKeys(ctx, t0)
	if err != nil || len(keys) != 2 || keys[0].KID != "k2" || keys[0].RetiredAt != nil || keys[1].RetiredAt == nil || string(keys[0].Sealed) != "sealed" {
		t.Fatalf("keys = %+v, %v", keys, err)
	}
	if keys, _ := s.ListSigningKeys(ctx, t0.Add(3*time.Hour)); len(keys) != 1 {
		t.Fatalf("retired key still listed after its grace: %d keys", len(keys))
	}
	if err := s.RevokeToken(ctx, "j1", t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "j1", t0.Add(time.Hour), t0); err != nil {
		t.Fatalf("revoke twice: %v", err)
	}
	if ok, err := s.IsRevoked(ctx, "j1"); err != nil || !ok {
		t.Fatalf("IsRevoked(j1) = %v, %v", ok, err)
	}
	if ok, _ := s.IsRevoked(ctx, "j2"); ok {
		t.Fatal("j2 reported revoked")
	}
	if ids, _ := s.RevokedSince(ctx, t0, t0.Add(30*time.Minute)); len(ids) != 1 {
		t.Fatalf("revoked since = %v", ids)
	}
}

func testRollback(t *testing.T, s *store.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateProject(ctx, store.Project{ID: "p1", Name: "x", CreatedAt: t0}); err != nil {
			return err
		}
		if _, err := tx.GetProject(ctx, "p1"); err != nil {
			return fmt.Errorf("read own write in tx: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v", err)
	}
	if _, err := s.GetProject(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled back project visible: %v", err)
	}
}

func testConcurrentWrites(t *testing.T, s *store.Store) {
	ctx := context.Background()
	mkProject(t, s, "p1")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- s.WithTx(ctx, func(tx *store.Tx) error {
				return tx.CreateRole(ctx, store.Role{ProjectID: "p1", ID: fmt.Sprint("r", i), Name: fmt.Sprint("role ", i), AccessPolicy: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0})
			})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	roles, err := s.ListRoles(ctx, "p1")
	if err != nil || len(roles) != n {
		t.Fatalf("roles after concurrent writes = %d, %v", len(roles), err)
	}
}

func testUseAfterClose(t *testing.T, s *store.Store) {
	s.Close()
	if _, err := s.GetProject(context.Background(), "p1"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("after close: got %v, want ErrClosed", err)
	}
}

// Concurrent transactions may share one commit (SQLite group commit): a
// failing one must undo only its own writes, and the others must all land.
func testFailingAmongConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	mkProject(t, s, "p1")
	const n = 60
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = s.WithTx(ctx, func(tx *store.Tx) error {
				if err := tx.CreateRole(ctx, store.Role{ProjectID: "p1", ID: fmt.Sprint("r", i), Name: fmt.Sprint("role ", i), AccessPolicy: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}); err != nil {
					return err
				}
				if i%3 == 0 {
					return fmt.Errorf("refused %d", i)
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	roles, err := s.ListRoles(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range roles {
		have[r.ID] = true
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprint("r", i)
		if failed := i%3 == 0; failed != (errs[i] != nil) || failed == have[id] {
			t.Fatalf("transaction %d: err %v, role stored %v", i, errs[i], have[id])
		}
	}
}
