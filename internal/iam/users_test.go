package iam_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

const patientJSON = `{"resourceType":"Patient","name":[{"given":["Grace"],"family":"Hopper"}]}`

// mkApp creates an application and returns its id.
func (f *fixture) mkApp(t testing.TB) string {
	t.Helper()
	a, err := f.svc.CreateApplication(context.Background(), f.project, iam.ApplicationInput{Name: ptr("app"), AllowedCallbackURLs: &[]string{}})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// mkRole creates a role with a policy and returns its id.
func (f *fixture) mkRole(t testing.TB, name, policy string) string {
	t.Helper()
	r, err := f.svc.CreateRole(context.Background(), f.project, iam.RoleInput{Name: ptr(name), AccessPolicy: json.RawMessage(policy)})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func TestInviteUserValidation(t *testing.T) {
	f := sqliteFixture(t)
	app := f.mkApp(t)
	role := f.mkRole(t, "r", `{"rule":[]}`)
	roles := &[]string{role}
	ok := func(mod func(*iam.UserInvite)) iam.UserInvite {
		in := iam.UserInvite{ApplicationID: app, Email: ptr("a@example.org"), Resource: json.RawMessage(patientJSON), Roles: roles}
		mod(&in)
		return in
	}
	cases := []struct {
		name string
		in   iam.UserInvite
		kind error
		part string
	}{
		{"no application", ok(func(in *iam.UserInvite) { in.ApplicationID = "" }), fault.ErrInvalid, "applicationId is required"},
		{"unknown application", ok(func(in *iam.UserInvite) { in.ApplicationID = "nope" }), fault.ErrInvalid, "does not exist"},
		{"no email or phone", ok(func(in *iam.UserInvite) { in.Email = nil }), fault.ErrInvalid, "email or a phoneNumber"},
		{"bad email", ok(func(in *iam.UserInvite) { in.Email = ptr("Grace <g@example.org>") }), fault.ErrInvalid, "email"},
		{"bad phone", ok(func(in *iam.UserInvite) { in.PhoneNumber = ptr("555-0123") }), fault.ErrInvalid, "phoneNumber"},
		{"no roles or policy", ok(func(in *iam.UserInvite) { in.Roles = nil }), fault.ErrInvalid, "roles or an accessPolicy"},
		{"empty roles", ok(func(in *iam.UserInvite) { in.Roles = &[]string{} }), fault.ErrInvalid, "roles or an accessPolicy"},
		{"unknown role", ok(func(in *iam.UserInvite) { in.Roles = &[]string{"nope"} }), fault.ErrInvalid, "does not exist"},
		{"bad policy", ok(func(in *iam.UserInvite) { in.AccessPolicy = json.RawMessage(`{"rule":[{"action":"X:Y"}]}`) }), fault.ErrInvalid, "accessPolicy"},
		{"no resource", ok(func(in *iam.UserInvite) { in.Resource = nil }), fault.ErrInvalid, "resource is required"},
		{"wrong resource type", ok(func(in *iam.UserInvite) { in.Resource = json.RawMessage(`{"resourceType":"Device"}`) }), fault.ErrInvalid, "Patient or Practitioner"},
		{"resource not an object", ok(func(in *iam.UserInvite) { in.Resource = json.RawMessage(`[1]`) }), fault.ErrInvalid, "resource must be"},
		{"bad profile", ok(func(in *iam.UserInvite) { in.Profile = ptr("Observation/1") }), fault.ErrInvalid, "profile must be"},
		{"long username", ok(func(in *iam.UserInvite) { in.Username = ptr(strings.Repeat("x", 201)) }), fault.ErrInvalid, "username"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.svc.InviteUser(context.Background(), f.project, c.in)
			wantKind(t, err, c.kind, c.part)
		})
	}
	if n := f.profiles.count(); n != 0 {
		t.Fatalf("invalid invitations created %d profiles", n)
	}
}

func TestUserLifecycle(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, b)
			app := f.mkApp(t)
			reader := f.mkRole(t, "reader", `{"rule":[{"resource":"FHIR:Patient:*","action":"FHIR:Read","effect":"Allow"}]}`)
			inv, err := f.svc.InviteUser(ctx, f.project, iam.UserInvite{ApplicationID: app, Email: ptr("Grace@Example.org"),
				Resource: json.RawMessage(patientJSON), Roles: &[]string{reader}})
			if err != nil {
				t.Fatal(err)
			}
			if inv.Name != "Grace Hopper" || *inv.Email != "grace@example.org" || inv.PhoneNumber != nil || inv.AuthenticationMethod != "email" ||
				inv.Profile != "Patient/fake-1" || len(inv.Roles) != 1 || inv.Roles[0].Name != "reader" ||
				!strings.HasPrefix(inv.InvitationURL, "http://x/user-invite/") {
				t.Fatalf("invitation = %+v", inv)
			}
			if f.profiles.calls[0] != f.project+" "+patientJSON {
				t.Fatalf("profile writer got %q", f.profiles.calls[0])
			}
			// The email is unique per project whatever its case; no profile is made for the refused user.
			_, err = f.svc.InviteUser(ctx, f.project, iam.UserInvite{ApplicationID: app, Email: ptr("GRACE@example.org"),
				Resource: json.RawMessage(patientJSON), Roles: &[]string{reader}})
			wantKind(t, err, fault.ErrConflict, "already exists")
			if f.profiles.count() != 1 {
				t.Fatalf("a refused invitation left a profile behind")
			}
			// An SMS user with an existing profile and an inline policy.
			sms, err := f.svc.InviteUser(ctx, f.project, iam.UserInvite{ApplicationID: app, PhoneNumber: ptr("+15555550123"), Username: ptr("Nurse"),
				Profile: ptr("Practitioner/p1"), Resource: json.RawMessage(`{"resourceType":"Practitioner"}`),
				AccessPolicy: json.RawMessage(`{"rule":[{"resource":"FHIR:Observation:*","action":"FHIR:Read","effect":"Allow"}]}`)})
			if err != nil {
				t.Fatal(err)
			}
			if sms.Email != nil || *sms.PhoneNumber != "+15555550123" || sms.AuthenticationMethod != "sms" || sms.Name != "Nurse" ||
				sms.Profile != "Practitioner/p1" || len(sms.Roles) != 0 || sms.AccessPolicy == nil || f.profiles.count() != 1 {
				t.Fatalf("sms user = %+v", sms)
			}

			got, err := f.svc.GetUser(ctx, f.project, inv.ID)
			if err != nil || got.Name != "Grace Hopper" || len(got.Roles) != 1 {
				t.Fatalf("get = %+v %v", got, err)
			}
			// The user's effective policy is its roles merged with its inline policy.
			p := auth.Principal{ProjectID: f.project, Kind: auth.KindUser, ID: inv.ID}
			if _, err := f.svc.Authorize(ctx, p, "FHIR:Read", "FHIR:Patient:1"); err != nil {
				t.Fatalf("role grant: %v", err)
			}
			if _, err := f.svc.Authorize(ctx, p, "FHIR:Read", "FHIR:Observation:1"); !errors.Is(err, fault.ErrForbidden) {
				t.Fatalf("ungranted: %v", err)
			}
			up, err := f.svc.UpdateUser(ctx, f.project, inv.ID, iam.UserUpdate{Email: ptr("Hopper@Example.org"), Profile: ptr("Patient/other"),
				AccessPolicy: json.RawMessage(`{"rule":[{"resource":"FHIR:Observation:*","action":"FHIR:Read","effect":"Allow"}]}`)})
			if err != nil || *up.Email != "hopper@example.org" || up.Profile != "Patient/other" || len(up.Roles) != 1 {
				t.Fatalf("update = %+v %v", up, err)
			}
			if _, err := f.svc.Authorize(ctx, p, "FHIR:Read", "FHIR:Observation:1"); err != nil {
				t.Fatalf("inline grant after update: %v", err)
			}
			if _, err := f.svc.UpdateUser(ctx, f.project, inv.ID, iam.UserUpdate{Roles: &[]string{}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Authorize(ctx, p, "FHIR:Read", "FHIR:Patient:1"); !errors.Is(err, fault.ErrForbidden) {
				t.Fatalf("role removed but still granted: %v", err)
			}
			for _, c := range []struct {
				in   iam.UserUpdate
				kind error
			}{
				{iam.UserUpdate{Email: ptr("not an email")}, fault.ErrInvalid},
				{iam.UserUpdate{Profile: ptr("Patient/")}, fault.ErrInvalid},
				{iam.UserUpdate{Roles: &[]string{"nope"}}, fault.ErrInvalid},
			} {
				if _, err := f.svc.UpdateUser(ctx, f.project, inv.ID, c.in); !errors.Is(err, c.kind) {
					t.Errorf("update %+v: %v", c.in, err)
				}
			}

			// Me answers for user tokens only.
			if me, err := f.svc.UserMe(ctx, p); err != nil || me.ID != inv.ID {
				t.Fatalf("me = %+v %v", me, err)
			}
			if _, err := f.svc.UserMe(ctx, auth.Principal{ProjectID: f.project, Kind: auth.KindM2M, ID: "x"}); !errors.Is(err, fault.ErrForbidden) {
				t.Fatalf("me for an M2M token: %v", err)
			}

			// Another project sees none of it.
			other, _ := f.svc.CreateProject(ctx, "other")
			if _, err := f.svc.GetUser(ctx, other.ProjectID, inv.ID); !errors.Is(err, fault.ErrNotFound) {
				t.Fatalf("cross-project get: %v", err)
			}
			if err := f.svc.DeleteUser(ctx, other.ProjectID, inv.ID); !errors.Is(err, fault.ErrNotFound) {
				t.Fatalf("cross-project delete: %v", err)
			}
			if l, _, _ := f.svc.ListUsers(ctx, other.ProjectID, store.UserFilter{}); len(l) != 0 {
				t.Fatalf("other project lists %+v", l)
			}

			if err := f.svc.DeleteUser(ctx, f.project, inv.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Authorize(ctx, p, "FHIR:Read", "FHIR:Observation:1"); !errors.Is(err, fault.ErrUnauthorized) {
				t.Fatalf("deleted user's token: %v", err)
			}
			if l, _, _ := f.svc.ListUsers(ctx, f.project, store.UserFilter{}); len(l) != 1 || l[0].ID != sms.ID {
				t.Fatalf("list after delete = %+v", l)
			}
		})
	}
}

func TestInviteUserProfileWriter(t *testing.T) {
	ctx := context.Background()
	f := sqliteFixture(t)
	app := f.mkApp(t)
	role := f.mkRole(t, "r", `{"rule":[]}`)
	in := iam.UserInvite{ApplicationID: app, Email: ptr("a@example.org"), Resource: json.RawMessage(patientJSON), Roles: &[]string{role}}

	// A failing writer leaves no user behind.
	f.profiles.fail = errors.New("fhir down")
	if _, err := f.svc.InviteUser(ctx, f.project, in); err == nil {
		t.Fatal("invite with a failing profile writer succeeded")
	}
	if l, _, _ := f.svc.ListUsers(ctx, f.project, store.UserFilter{}); len(l) != 0 {
		t.Fatalf("a user was left behind: %+v", l)
	}
	// Without a writer a resource cannot be created, but a profile may be named.
	svc := f.withoutProfiles(t)
	_, err := svc.InviteUser(ctx, f.project, in)
	wantKind(t, err, fault.ErrNotSupported, "pass profile")
	in.Profile = ptr("Patient/123")
	u, err := svc.InviteUser(ctx, f.project, in)
	if err != nil || u.Profile != "Patient/123" || u.Name != "Grace Hopper" {
		t.Fatalf("invite with a profile: %+v %v", u, err)
	}
}

func TestListUsersPages(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, b)
			app := f.mkApp(t)
			role := f.mkRole(t, "r", `{"rule":[]}`)
			other := f.mkRole(t, "o", `{"rule":[]}`)
			names := []string{"delta", "Alpha", "charlie", "bravo", "echo"}
			for i, n := range names {
				roles := []string{role}
				if i%2 == 1 {
					roles = []string{other}
				}
				in := iam.UserInvite{ApplicationID: app, Email: ptr(n + "@example.org"), Username: ptr(n), Profile: ptr("Patient/" + n), Roles: &roles}
				if _, err := f.svc.InviteUser(ctx, f.project, in); err != nil {
					t.Fatal(err)
				}
				f.clock.advance(time.Second)
			}
			all := func(filter store.UserFilter) []string {
				var seen []string
				for range 10 {
					page, next, err := f.svc.ListUsers(ctx, f.project, filter)
					if err != nil {
						t.Fatal(err)
					}
					for _, u := range page {
						seen = append(seen, u.Name)
					}
					if next == "" {
						return seen
					}
					filter.After = next
				}
				t.Fatal("paging did not end")
				return nil
			}
			cases := []struct {
				name   string
				filter store.UserFilter
				want   string
			}{
				{"by email", store.UserFilter{Sort: store.UserSortEmail, Limit: 2}, "Alpha bravo charlie delta echo"},
				{"by email desc", store.UserFilter{Sort: store.UserSortEmail, Descending: true, Limit: 2}, "echo delta charlie bravo Alpha"},
				{"by creation", store.UserFilter{Sort: store.UserSortCreatedAt, Limit: 3}, "delta Alpha charlie bravo echo"},
				{"by creation desc", store.UserFilter{Sort: store.UserSortCreatedAt, Descending: true, Limit: 1}, "echo bravo charlie Alpha delta"},
				{"name filter", store.UserFilter{Name: "A", Sort: store.UserSortEmail, Limit: 1}, "Alpha bravo charlie delta"},
				{"email filter", store.UserFilter{Email: "HO@", Sort: store.UserSortEmail}, "echo"},
				{"role filter", store.UserFilter{RoleID: other, Sort: store.UserSortEmail, Limit: 1}, "Alpha bravo"},
				{"profile filter", store.UserFilter{Profile: "Patient/charlie"}, "charlie"},
			}
			for _, c := range cases {
				if got := strings.Join(all(c.filter), " "); got != c.want {
					t.Errorf("%s: %s, want %s", c.name, got, c.want)
				}
			}
		})
	}
}

func TestUserInvitationLink(t *testing.T) {
	ctx := context.Background()
	f := sqliteFixture(t)
	app := f.mkApp(t)
	role := f.mkRole(t, "r", `{"rule":[]}`)
	invite := func(email string) string {
		inv, err := f.svc.InviteUser(ctx, f.project, iam.UserInvite{ApplicationID: app, Email: ptr(email), Profile: ptr("Patient/1"), Roles: &[]string{role}})
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(inv.InvitationURL, "http://x/user-invite/")
	}
	token := invite("a@example.org")
	const pw = "correct horse battery staple"
	cases := []struct {
		name, token, password string
		kind                  error
	}{
		{"short password", token, "short", fault.ErrInvalid},
		{"long password", token, strings.Repeat("x", 73), fault.ErrInvalid},
		{"unknown link", "nope", pw, fault.ErrNotFound},
		{"accept", token, pw, nil},
		{"second use", token, pw, fault.ErrNotFound},
	}
	for _, c := range cases {
		_, err := f.svc.AcceptUserInvitation(ctx, c.token, c.password)
		if (c.kind == nil && err != nil) || (c.kind != nil && !errors.Is(err, c.kind)) {
			t.Errorf("%s: %v, want %v", c.name, err, c.kind)
		}
	}
	if _, err := f.svc.LoginUser(ctx, f.project, "a@example.org", pw, ""); err != nil {
		t.Fatalf("login after accepting: %v", err)
	}
	late := invite("b@example.org")
	f.clock.advance(7*24*time.Hour + time.Minute)
	if _, err := f.svc.AcceptUserInvitation(ctx, late, pw); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("expired link: %v", err)
	}
}

// Role deletion counts users among the holders, and the project's default
// patient role is never deleted.
func TestRoleDeletionWithUsers(t *testing.T) {
	ctx := context.Background()
	f := sqliteFixture(t)
	app := f.mkApp(t)
	role := f.mkRole(t, "patients", `{"rule":[]}`)
	u, err := f.svc.InviteUser(ctx, f.project, iam.UserInvite{ApplicationID: app, Email: ptr("held@example.org"), Profile: ptr("Patient/1"), Roles: &[]string{role}})
	if err != nil {
		t.Fatal(err)
	}
	roles, _ := f.svc.ListRoles(ctx, f.project)
	if len(roles) != 1 || *roles[0].MemberCount != 1 {
		t.Fatalf("member count = %+v", roles)
	}
	err = f.svc.DeleteRole(ctx, f.project, role)
	wantKind(t, err, fault.ErrConflict, "user "+u.ID+" (held@example.org)")
	if err := f.svc.DeleteUser(ctx, f.project, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UpdateProject(ctx, f.project, iam.ProjectUpdate{DefaultPatientRoleID: json.RawMessage(`"` + role + `"`)}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, f.svc.DeleteRole(ctx, f.project, role), fault.ErrConflict, "default patient role")
	if _, err := f.svc.UpdateProject(ctx, f.project, iam.ProjectUpdate{DefaultPatientRoleID: json.RawMessage(`null`)}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, f.svc.DeleteRole(ctx, f.project, role), nil, "")
}
