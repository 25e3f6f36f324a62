package iam_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/replica"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

// Two Services on one database stand for two replicas: a role edit on one
// holds there at once, and on the other once its change watcher caught up
// (which every request does first), the project's generation moved.
func TestPolicyChangesReachOtherReplicas(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			a := iam.New(st, "http://x/invite/", time.Now, iam.Deps{})
			other := iam.New(st, "http://x/invite/", time.Now, iam.Deps{})
			version, err := st.ChangeVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			watch := replica.New(st, version, replica.Apply{Project: other.Invalidate, Revoked: func(string, time.Time) {},
				Keys: func(context.Context) error { return nil }, All: func(context.Context) error { other.InvalidateAll(); return nil }},
				replica.Config{}, slog.New(slog.DiscardHandler))
			creds, err := a.CreateProject(ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			readRoles := json.RawMessage(`{"rule":[{"resource":"IAM:Role:*","action":"IAM:ListAllRoles","effect":"Allow"}]}`)
			role, err := a.CreateRole(ctx, creds.ProjectID, iam.RoleInput{Name: ptr("r"), AccessPolicy: readRoles})
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.CreateM2M(ctx, creds.ProjectID, iam.M2MInput{Name: ptr("c"), Roles: &[]string{role.ID}})
			if err != nil {
				t.Fatal(err)
			}
			p := auth.Principal{ProjectID: creds.ProjectID, Kind: auth.KindM2M, ID: c.ID}
			for _, s := range []*iam.Service{a, other} {
				if _, err := s.Authorize(ctx, p, "IAM:ListAllRoles", "IAM:Role:*"); err != nil {
					t.Fatalf("before the change: %v", err)
				}
			}
			gen := other.Generation(creds.ProjectID)
			if _, err := a.UpdateRole(ctx, creds.ProjectID, role.ID, iam.RoleInput{AccessPolicy: json.RawMessage(`{"rule":[]}`)}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Authorize(ctx, p, "IAM:ListAllRoles", "IAM:Role:*"); !errors.Is(err, fault.ErrForbidden) {
				t.Fatalf("same replica after the change: %v, want forbidden", err)
			}
			if err := watch.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			if other.Generation(creds.ProjectID) == gen {
				t.Fatal("the project's generation did not move on the other replica")
			}
			if _, err := other.Authorize(ctx, p, "IAM:ListAllRoles", "IAM:Role:*"); !errors.Is(err, fault.ErrForbidden) {
				t.Fatalf("other replica after catching up: %v, want forbidden", err)
			}
			// A settings change moves the generation too.
			gen = other.Generation(creds.ProjectID)
			if _, err := a.UpdateProject(ctx, creds.ProjectID, iam.ProjectUpdate{Description: ptr("d")}); err != nil {
				t.Fatal(err)
			}
			if err := watch.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			if other.Generation(creds.ProjectID) == gen {
				t.Fatal("a project settings change did not move the generation on the other replica")
			}
		})
	}
}

func TestRoleDeletionNamesHolders(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, storetest.Backends()[0])
	s := iam.New(st, "http://x/invite/", time.Now, iam.Deps{})
	creds, _ := s.CreateProject(ctx, "p")
	role, _ := s.CreateRole(ctx, creds.ProjectID, iam.RoleInput{Name: ptr("held")})
	c, _ := s.CreateM2M(ctx, creds.ProjectID, iam.M2MInput{Name: ptr("holder-client"), Roles: &[]string{role.ID}})
	err := s.DeleteRole(ctx, creds.ProjectID, role.ID)
	if !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("delete held role: %v", err)
	}
	for _, want := range []string{c.ID, "holder-client", `"held"`} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := s.UpdateProject(ctx, creds.ProjectID, iam.ProjectUpdate{DefaultPatientRoleID: json.RawMessage(`"` + role.ID + `"`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateM2M(ctx, creds.ProjectID, c.ID, iam.M2MInput{Roles: &[]string{}}); err != nil {
		t.Fatal(err)
	}
	err = s.DeleteRole(ctx, creds.ProjectID, role.ID)
	if !errors.Is(err, fault.ErrConflict) || !contains(err.Error(), "default patient role") {
		t.Fatalf("delete default patient role: %v", err)
	}
	if _, err := s.UpdateProject(ctx, creds.ProjectID, iam.ProjectUpdate{DefaultPatientRoleID: json.RawMessage(`null`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRole(ctx, creds.ProjectID, role.ID); err != nil {
		t.Fatalf("delete unused role: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// An IAM change and its log row commit together: a write that fails logs
// nothing, one that succeeds logs exactly one change of its project.
func TestChangesLoggedWithTheWrite(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			s := iam.New(st, "http://x/invite/", time.Now, iam.Deps{})
			creds, err := s.CreateProject(ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			role, err := s.CreateRole(ctx, creds.ProjectID, iam.RoleInput{Name: ptr("held")})
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.CreateM2M(ctx, creds.ProjectID, iam.M2MInput{Name: ptr("c"), Roles: &[]string{role.ID}})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name  string
				write func() error
				logs  bool
			}{
				{"delete a held role (refused)", func() error { return s.DeleteRole(ctx, creds.ProjectID, role.ID) }, false},
				{"update a missing role", func() error {
					_, err := s.UpdateRole(ctx, creds.ProjectID, "nope", iam.RoleInput{Name: ptr("x")})
					return err
				}, false},
				{"update the role", func() error {
					_, err := s.UpdateRole(ctx, creds.ProjectID, role.ID, iam.RoleInput{Name: ptr("renamed")})
					return err
				}, true},
				{"update the project", func() error {
					_, err := s.UpdateProject(ctx, creds.ProjectID, iam.ProjectUpdate{Description: ptr("d")})
					return err
				}, true},
				{"delete the client", func() error { return s.DeleteM2M(ctx, creds.ProjectID, c.ID) }, true},
			} {
				before, err := st.ChangeVersion(ctx)
				if err != nil {
					t.Fatal(err)
				}
				werr := tc.write()
				if (werr == nil) != tc.logs {
					t.Fatalf("%s: %v", tc.name, werr)
				}
				changes, err := st.ChangesSince(ctx, before, 10)
				if err != nil {
					t.Fatal(err)
				}
				if !tc.logs && len(changes) != 0 {
					t.Errorf("%s failed but logged %+v", tc.name, changes)
				}
				if tc.logs && (len(changes) != 1 || changes[0].ProjectID != creds.ProjectID) {
					t.Errorf("%s logged %+v, want one change of project %s", tc.name, changes, creds.ProjectID)
				}
			}
		})
	}
}
