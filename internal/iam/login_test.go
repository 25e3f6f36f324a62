package iam_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

const goodPassword = "correct horse battery staple"

// mkUser invites a user with a role and accepts the invitation with pw
// ("" leaves the invitation pending). It returns the user id.
func (f *fixture) mkUser(t *testing.T, email, pw string) string {
	t.Helper()
	ctx := context.Background()
	roles, _ := f.svc.ListRoles(ctx, f.project)
	var role string
	if len(roles) > 0 {
		role = roles[0].ID
	} else {
		role = f.mkRole(t, "login", `{"rule":[]}`)
	}
	apps, _ := f.svc.ListApplications(ctx, f.project)
	app := ""
	if len(apps) > 0 {
		app = apps[0].ID
	} else {
		app = f.mkApp(t)
	}
	inv, err := f.svc.InviteUser(ctx, f.project, iam.UserInvite{ApplicationID: app, Email: ptr(email), Profile: ptr("Patient/1"), Roles: &[]string{role}})
	if err != nil {
		t.Fatal(err)
	}
	if pw != "" {
		if _, err := f.svc.AcceptUserInvitation(ctx, strings.TrimPrefix(inv.InvitationURL, "http://x/user-invite/"), pw); err != nil {
			t.Fatal(err)
		}
	}
	return inv.ID
}

func TestLoginUser(t *testing.T) {
	ctx := context.Background()
	f := sqliteFixture(t)
	id := f.mkUser(t, "ada@example.org", goodPassword)
	f.mkUser(t, "pending@example.org", "")
	other, _ := f.svc.CreateProject(ctx, "other")
	cases := []struct {
		name, project, email, password string
		ok                             bool
	}{
		{"right", f.project, "ada@example.org", goodPassword, true},
		{"email in another case", f.project, " ADA@example.org", goodPassword, true},
		{"wrong password", f.project, "ada@example.org", goodPassword + "!", false},
		{"unknown email", f.project, "bob@example.org", goodPassword, false},
		{"invitation not accepted", f.project, "pending@example.org", "", false},
		{"another project", other.ProjectID, "ada@example.org", goodPassword, false},
		{"no email", f.project, "", goodPassword, false},
		{"longer than bcrypt reads", f.project, "ada@example.org", goodPassword + strings.Repeat("x", 80), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := f.svc.LoginUser(ctx, c.project, c.email, c.password, "")
			if c.ok {
				if err != nil || u.ID != id || len(u.Roles) != 1 {
					t.Fatalf("login = %+v %v", u, err)
				}
				return
			}
			// Every wrong credential gets the same answer.
			if !errors.Is(err, fault.ErrUnauthorized) || err.Error() != "wrong email or password" {
				t.Fatalf("login error = %v", err)
			}
		})
	}
}

func TestLoginThrottle(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testLoginThrottle(t, b) })
	}
}

func testLoginThrottle(t *testing.T, b storetest.Backend) {
	ctx := context.Background()
	f := newFixture(t, b)
	f.mkUser(t, "ada@example.org", goodPassword)
	// A second Service on the same store stands for another replica: the
	// counts are shared.
	replica := f.withoutProfiles(t)
	svcs := []*iam.Service{f.svc, replica}
	n := 0
	login := func(email, pw, ip string) error {
		n++
		_, err := svcs[n%2].LoginUser(ctx, f.project, email, pw, ip)
		return err
	}

	// A success resets the account's count.
	for range 4 {
		wantKind(t, login("ada@example.org", "wrong", "10.0.0.1"), fault.ErrUnauthorized, "wrong email")
	}
	wantKind(t, login("ada@example.org", goodPassword, "10.0.0.1"), nil, "")
	// Five failures from one address (on either replica) block that
	// address for the account, right password or not.
	for range 5 {
		wantKind(t, login("ada@example.org", "wrong", "10.0.0.2"), fault.ErrUnauthorized, "wrong email")
	}
	err := login("ada@example.org", goodPassword, "10.0.0.2")
	wantKind(t, err, fault.ErrTooMany, "too many failed sign-in attempts: try again in 15 minutes")
	if s := fault.RetryAfter(err); s < 14*60 || s > 15*60 {
		t.Fatalf("Retry-After = %d s, want about 15 minutes", s)
	}
	// The right password from another address is not refused for them.
	wantKind(t, login("ada@example.org", goodPassword, "10.0.0.3"), nil, "")
	// Other accounts are not affected, not even from the blocked address.
	wantKind(t, login("bob@example.org", "wrong", "10.0.0.2"), fault.ErrUnauthorized, "wrong email")
	f.clock.advance(15 * time.Minute)
	wantKind(t, login("ada@example.org", goodPassword, "10.0.0.2"), nil, "")

	// Twenty failures from one address, over many accounts, block it for
	// every account; other addresses are not affected.
	for i := range 20 {
		wantKind(t, login(fmt.Sprintf("u%d@example.org", i), "wrong", "192.0.2.7"), fault.ErrUnauthorized, "wrong email")
	}
	wantKind(t, login("ada@example.org", goodPassword, "192.0.2.7"), fault.ErrTooMany, "too many")
	wantKind(t, login("ada@example.org", goodPassword, "192.0.2.8"), nil, "")
	// IPv6 clients are counted by /64.
	for i := range 20 {
		wantKind(t, login(fmt.Sprintf("v%d@example.org", i), "wrong", fmt.Sprintf("2001:db8:1:2::%x", i+1)), fault.ErrUnauthorized, "wrong email")
	}
	wantKind(t, login("ada@example.org", goodPassword, "2001:db8:1:2:ffff::1"), fault.ErrTooMany, "too many")
	wantKind(t, login("ada@example.org", goodPassword, "2001:db8:1:3::1"), nil, "")
	f.clock.advance(15 * time.Minute)

	// The load-balancer case of issue 28: 60 accounts with one failure
	// each from one address (refused past the address's limit) leave
	// account 61 alone from another address.
	f.mkUser(t, "w60@example.org", goodPassword)
	for i := range 60 {
		err := login(fmt.Sprintf("w%d@example.org", i), "wrong", "198.51.100.1")
		if i < 20 {
			wantKind(t, err, fault.ErrUnauthorized, "wrong email")
		} else {
			wantKind(t, err, fault.ErrTooMany, "too many")
		}
	}
	wantKind(t, login("w60@example.org", goodPassword, "203.0.113.1"), nil, "")

	// Guessing one account from many addresses: past the account's
	// ceiling an address that failed may not try it, a clean one may.
	for i := range 50 {
		wantKind(t, login("ada@example.org", "wrong", fmt.Sprintf("198.18.%d.1", i)), fault.ErrUnauthorized, "wrong email")
	}
	wantKind(t, login("ada@example.org", goodPassword, "198.18.0.1"), fault.ErrTooMany, "too many")
	wantKind(t, login("ada@example.org", goodPassword, "203.0.113.9"), nil, "")
}

func TestLoginDeveloper(t *testing.T) {
	ctx := context.Background()
	f := sqliteFixture(t)
	inv, err := f.svc.InviteDeveloper(ctx, f.project, iam.DeveloperInvite{Email: "dev@example.org",
		AccessPolicy: json.RawMessage(`{"rule":[]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.LoginDeveloper(ctx, "dev@example.org", goodPassword, "10.0.0.1"); !errors.Is(err, fault.ErrUnauthorized) {
		t.Fatalf("before accepting: %v", err)
	}
	if _, err := f.svc.AcceptInvitation(ctx, strings.TrimPrefix(inv.InvitationURL, "http://x/invite/"), goodPassword); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		email, password string
		ok              bool
	}{
		{"dev@example.org", goodPassword, true},
		{"DEV@example.org", goodPassword, true},
		{"dev@example.org", "wrong password!!", false},
		{"nobody@example.org", goodPassword, false},
	}
	for _, c := range cases {
		id, err := f.svc.LoginDeveloper(ctx, c.email, c.password, "10.0.0.1")
		if c.ok && (err != nil || id != inv.ID) {
			t.Errorf("%s: %q %v", c.email, id, err)
		}
		if !c.ok && (!errors.Is(err, fault.ErrUnauthorized) || err.Error() != "wrong email or password") {
			t.Errorf("%s: %v", c.email, err)
		}
	}
}

func TestSignUpPatient(t *testing.T) {
	ctx := context.Background()
	f := sqliteFixture(t)
	signUp := func(email, pw, resource string) (iam.User, error) {
		return f.svc.SignUpPatient(ctx, f.project, email, pw, json.RawMessage(resource))
	}
	_, err := signUp("p@example.org", goodPassword, patientJSON)
	wantKind(t, err, fault.ErrForbidden, "not enabled")
	if _, err := f.svc.UpdateProject(ctx, f.project, iam.ProjectUpdate{SignupEnabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	_, err = signUp("p@example.org", goodPassword, patientJSON)
	wantKind(t, err, fault.ErrConflict, "default patient role")
	role := f.mkRole(t, "patient", `{"rule":[{"resource":"FHIR:Patient:*","action":"FHIR:Read","effect":"Allow"}]}`)
	if _, err := f.svc.UpdateProject(ctx, f.project, iam.ProjectUpdate{DefaultPatientRoleID: json.RawMessage(`"` + role + `"`)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, email, password, resource string
		kind                            error
		part                            string
	}{
		{"not a patient", "p@example.org", goodPassword, `{"resourceType":"Practitioner"}`, fault.ErrInvalid, "Patient"},
		{"weak password", "p@example.org", "short", patientJSON, fault.ErrInvalid, "password"},
		{"bad email", "not-an-email", goodPassword, patientJSON, fault.ErrInvalid, "email"},
		{"ok", "P@Example.org", goodPassword, patientJSON, nil, ""},
		{"taken", "p@example.org", goodPassword, patientJSON, fault.ErrConflict, "already exists"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := signUp(c.email, c.password, c.resource)
			wantKind(t, err, c.kind, c.part)
			if err == nil && (u.Profile != "Patient/fake-1" || len(u.Roles) != 1 || u.Roles[0].ID != role || *u.Email != "p@example.org" || u.Name != "Grace Hopper") {
				t.Fatalf("signed up = %+v", u)
			}
		})
	}
	if u, err := f.svc.LoginUser(ctx, f.project, "p@example.org", goodPassword, ""); err != nil || u.Roles[0].ID != role {
		t.Fatalf("login after sign-up: %+v %v", u, err)
	}
	// The default patient role is in use now in two ways.
	err = f.svc.DeleteRole(ctx, f.project, role)
	wantKind(t, err, fault.ErrConflict, "default patient role")
	wantKind(t, err, fault.ErrConflict, "p@example.org")
	_, err = f.withoutProfiles(t).SignUpPatient(ctx, f.project, "q@example.org", goodPassword, json.RawMessage(patientJSON))
	wantKind(t, err, fault.ErrNotSupported, "profile")
}

func TestSetPasswordCost(t *testing.T) {
	f := sqliteFixture(t)
	for _, c := range []struct {
		cost int
		ok   bool
	}{{3, false}, {4, true}, {12, true}, {31, true}, {32, false}} {
		if err := f.svc.SetPasswordCost(c.cost); (err == nil) != c.ok {
			t.Errorf("SetPasswordCost(%d) = %v", c.cost, err)
		}
	}
}
