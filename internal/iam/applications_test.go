package iam_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"golang.org/x/crypto/bcrypt"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeProfiles stands in for the FHIR side: it numbers the resources it
// "creates" and remembers them.
type fakeProfiles struct {
	mu    sync.Mutex
	calls []string // projectID + " " + resource JSON
	fail  error
}

func (f *fakeProfiles) CreateProfile(_ context.Context, projectID string, resource json.RawMessage) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	f.calls = append(f.calls, projectID+" "+string(resource))
	var r struct {
		ResourceType string `json:"resourceType"`
	}
	_ = json.Unmarshal(resource, &r)
	return fmt.Sprintf("%s/fake-%d", r.ResourceType, len(f.calls)), nil
}

func (f *fakeProfiles) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fixture is a Service on a fresh store with one project, fast bcrypt, a
// settable clock and a fake profile writer.
type fixture struct {
	svc      *iam.Service
	st       *store.Store
	project  string
	clock    *clock
	profiles *fakeProfiles
}

func newFixture(t testing.TB, b storetest.Backend) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	st := storetest.Open(t, b)
	profiles := &fakeProfiles{}
	svc := iam.New(st, "http://x/invite/", c.now, iam.Deps{Profiles: profiles})
	if err := svc.SetPasswordCost(bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	creds, err := svc.CreateProject(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, st: st, project: creds.ProjectID, clock: c, profiles: profiles}
}

// withoutProfiles is a Service on the fixture's store that cannot create
// profile resources.
func (f *fixture) withoutProfiles(t *testing.T) *iam.Service {
	t.Helper()
	svc := iam.New(f.st, "http://x/invite/", f.clock.now, iam.Deps{})
	if err := svc.SetPasswordCost(bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	return svc
}

func sqliteFixture(t *testing.T) *fixture { return newFixture(t, storetest.Backends()[0]) }

// wantKind checks err is of a fault kind (nil: no error) and mentions part.
func wantKind(t *testing.T, err, kind error, part string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
	if !strings.Contains(err.Error(), part) {
		t.Fatalf("error %q does not mention %q", err, part)
	}
}

func TestApplicationValidation(t *testing.T) {
	f := sqliteFixture(t)
	urls := func(us ...string) *[]string { return &us }
	cases := []struct {
		name string
		in   iam.ApplicationInput
		kind error
		part string
	}{
		{"minimal", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls()}, nil, ""},
		{"https callback", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("https://app.example.com/cb?x=1")}, nil, ""},
		{"http localhost", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("http://localhost:3000/cb")}, nil, ""},
		{"http 127.0.0.1", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("http://127.0.0.1:8080/cb")}, nil, ""},
		{"http ::1", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("http://[::1]:8080/cb")}, nil, ""},
		{"no name", iam.ApplicationInput{AllowedCallbackURLs: urls()}, fault.ErrInvalid, "name is required"},
		{"no callbacks", iam.ApplicationInput{Name: ptr("a")}, fault.ErrInvalid, "allowedCallbackUrls is required"},
		{"http elsewhere", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("http://app.example.com/cb")}, fault.ErrInvalid, "must use https"},
		{"fragment", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("https://app.example.com/cb#x")}, fault.ErrInvalid, "fragment"},
		{"empty fragment", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("https://app.example.com/cb#")}, fault.ErrInvalid, "fragment"},
		{"relative", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("/cb")}, fault.ErrInvalid, "absolute"},
		{"javascript", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("javascript:alert(1)")}, fault.ErrInvalid, "absolute"},
		{"custom scheme", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("myapp://cb")}, fault.ErrInvalid, "http(s)"},
		{"user info", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("https://u:p@app.example.com/cb")}, fault.ErrInvalid, "user info"},
		{"space", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls("https://app.example.com/a b")}, fault.ErrInvalid, "spaces"},
		{"logout http", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls(), AllowedLogoutURLs: urls("http://x.example/")}, fault.ErrInvalid, "allowedLogoutUrls"},
		{"origin ok", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls(), AllowedWebOriginsURLs: urls("https://*.example.com", "http://localhost:3000")}, nil, ""},
		{"origin with path", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls(), AllowedCORSOriginsURLs: urls("https://example.com/app")}, fault.ErrInvalid, "origin"},
		{"origin wildcard inside", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls(), AllowedWebOriginsURLs: urls("https://a.*.example.com")}, fault.ErrInvalid, "first label"},
		{"login redirect http", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls(), LoginRedirectURI: ptr("http://example.com/login")}, fault.ErrInvalid, "loginRedirectUri"},
		{"logo not a URL", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls(), LogoURI: ptr("logo.png")}, fault.ErrInvalid, "logoUri"},
		{"mfa", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls(), MFAEnabled: ptr(true)}, fault.ErrNotSupported, "mfaEnabled"},
		{"mfa off", iam.ApplicationInput{Name: ptr("a"), AllowedCallbackURLs: urls(), MFAEnabled: ptr(false)}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.svc.CreateApplication(context.Background(), f.project, c.in)
			wantKind(t, err, c.kind, c.part)
		})
	}
}

func TestApplicationLifecycle(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, b)
			other, err := f.svc.CreateProject(ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			cb := "https://app.example.com/callback"
			a, err := f.svc.CreateApplication(ctx, f.project, iam.ApplicationInput{Name: ptr(" Portal "), Description: ptr("patients"),
				AllowedCallbackURLs: &[]string{cb}, RefreshTokenEnabled: ptr(true)})
			if err != nil {
				t.Fatal(err)
			}
			if a.Name != "Portal" || a.ClientID == "" || !a.LoginWithEmailEnabled || !a.RefreshTokenEnabled || a.Confidential ||
				len(a.AllowedLogoutURLs) != 0 || a.AllowedLogoutURLs == nil {
				t.Fatalf("created = %+v", a)
			}
			for uri, want := range map[string]bool{cb: true, cb + "/": false, "https://app.example.com/callbac": false, cb + "?x=1": false, "": false} {
				if a.AllowsRedirect(uri) != want {
					t.Errorf("AllowsRedirect(%q) = %v", uri, !want)
				}
			}
			got, project, err := f.svc.ApplicationByClientID(ctx, a.ClientID)
			if err != nil || project != f.project || got.ID != a.ID {
				t.Fatalf("by client id = %+v %s %v", got, project, err)
			}
			if _, _, err := f.svc.ApplicationByClientID(ctx, "nope"); !errors.Is(err, fault.ErrNotFound) {
				t.Fatalf("unknown client id: %v", err)
			}
			// A public client has no secret to authenticate with.
			if _, _, err := f.svc.AuthenticateApplication(ctx, a.ClientID, "anything"); !errors.Is(err, fault.ErrUnauthorized) {
				t.Fatalf("public client authenticated: %v", err)
			}
			secret, err := f.svc.RotateApplicationSecret(ctx, f.project, a.ID)
			if err != nil || len(secret) < 32 {
				t.Fatalf("rotate: %q %v", secret, err)
			}
			authd, project, err := f.svc.AuthenticateApplication(ctx, a.ClientID, secret)
			if err != nil || project != f.project || !authd.Confidential {
				t.Fatalf("authenticate: %+v %s %v", authd, project, err)
			}
			newer, _ := f.svc.RotateApplicationSecret(ctx, f.project, a.ID)
			for _, c := range []struct{ id, secret string }{{a.ClientID, secret}, {a.ClientID, ""}, {"nope", newer}, {"", newer}} {
				if _, _, err := f.svc.AuthenticateApplication(ctx, c.id, c.secret); !errors.Is(err, fault.ErrUnauthorized) || err.Error() != "invalid client credentials" {
					t.Errorf("authenticate %q/%q: %v", c.id, c.secret, err)
				}
			}
			if _, _, err := f.svc.AuthenticateApplication(ctx, a.ClientID, newer); err != nil {
				t.Fatalf("new secret: %v", err)
			}
			up, err := f.svc.UpdateApplication(ctx, f.project, a.ID, iam.ApplicationInput{LogoURI: ptr("https://cdn.example.com/logo.png"),
				AllowedLogoutURLs: &[]string{"https://app.example.com/bye"}})
			if err != nil || up.Name != "Portal" || up.Description != "patients" || up.LogoURI == "" || len(up.AllowedCallbackURLs) != 1 ||
				up.AllowedLogoutURLs[0] != "https://app.example.com/bye" || !up.Confidential {
				t.Fatalf("update = %+v %v", up, err)
			}
			if _, err := f.svc.UpdateApplication(ctx, f.project, a.ID, iam.ApplicationInput{AllowedCallbackURLs: &[]string{"http://evil.example/"}}); !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("bad update: %v", err)
			}
			list, err := f.svc.ListApplications(ctx, f.project)
			if err != nil || len(list) != 1 || list[0].ID != a.ID {
				t.Fatalf("list = %+v %v", list, err)
			}
			// Another project sees nothing.
			if l, _ := f.svc.ListApplications(ctx, other.ProjectID); len(l) != 0 {
				t.Fatalf("other project lists %+v", l)
			}
			for _, err := range []error{
				func() error { _, err := f.svc.GetApplication(ctx, other.ProjectID, a.ID); return err }(),
				func() error { _, err := f.svc.RotateApplicationSecret(ctx, other.ProjectID, a.ID); return err }(),
				f.svc.DeleteApplication(ctx, other.ProjectID, a.ID),
			} {
				if !errors.Is(err, fault.ErrNotFound) {
					t.Errorf("cross-project access: %v", err)
				}
			}

			if err := f.svc.DeleteApplication(ctx, f.project, a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.GetApplication(ctx, f.project, a.ID); !errors.Is(err, fault.ErrNotFound) {
				t.Fatalf("get deleted: %v", err)
			}
			if _, _, err := f.svc.AuthenticateApplication(ctx, a.ClientID, newer); !errors.Is(err, fault.ErrUnauthorized) {
				t.Fatalf("deleted application authenticated: %v", err)
			}
		})
	}
}
