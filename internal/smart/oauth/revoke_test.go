package oauth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

// The Project API's /application/{id}/revoke-*-token: a refresh token
// revokes its grant, an access token is revoked only when it was issued to
// the application in the project; anything else is not an error (RFC 7009).
func TestRevokeApplicationToken(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	project := ts.admin.ProjectID
	app, err := ts.iam.CreateApplication(ctx, project, iam.ApplicationInput{Name: ptr("app"), AllowedCallbackURLs: &[]string{"https://app.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ts.iam.CreateProject(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.st.PutRefreshToken(ctx, store.RefreshToken{Hash: secretHash("refresh", "r1"), ProjectID: project, Family: "f1",
		ClientID: app.ClientID, Grant: []byte(`{}`), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	access := func(clientID string) string {
		tok, _, err := ts.oauth.issuer.Issue(ctx, auth.Principal{ProjectID: project, Kind: auth.KindUser, ID: "u1", ClientID: clientID}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	mine, foreign := access(app.ClientID), access("another-client")

	for _, c := range []struct {
		name           string
		project, token string
		refresh        bool
		kind           error
		part           string
	}{
		{"no token", project, " ", true, fault.ErrInvalid, "token is required"},
		{"another project's application", other.ProjectID, "r1", true, fault.ErrNotFound, "not found"},
		{"refresh token", project, "r1", true, nil, ""},
		{"unknown refresh token", project, "nope", true, nil, ""},
		{"access token of another client", project, foreign, false, nil, ""},
		{"access token", project, mine, false, nil, ""},
		{"not a token", project, "nope", false, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := ts.oauth.RevokeApplicationToken(ctx, c.project, app.ID, c.token, c.refresh)
			if c.kind == nil && err != nil || c.kind != nil && (!errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.part)) {
				t.Fatalf("err = %v, want %v (%q)", err, c.kind, c.part)
			}
		})
	}
	if _, err := ts.st.UseRefreshToken(ctx, secretHash("refresh", "r1"), time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh token after revocation: %v, want not found", err)
	}
	if _, err := ts.oauth.Verify(ctx, mine); !errors.Is(err, fault.ErrUnauthorized) {
		t.Errorf("revoked access token verifies: %v", err)
	}
	if _, err := ts.oauth.Verify(ctx, foreign); err != nil {
		t.Errorf("another client's access token was revoked: %v", err)
	}
}
