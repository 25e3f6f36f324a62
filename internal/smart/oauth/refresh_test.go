package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

// A refresh request that names no client is the refresh token's client's:
// a public app goes on, a confidential one is told to authenticate (and
// keeps its refresh token).
func TestRefreshClientFromGrant(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	project := ts.admin.ProjectID
	mkApp := func(name string, confidential bool) iam.Application {
		app, err := ts.iam.CreateApplication(ctx, project, iam.ApplicationInput{Name: ptr(name), AllowedCallbackURLs: &[]string{"https://app.example/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		if confidential {
			if _, err := ts.iam.RotateApplicationSecret(ctx, project, app.ID); err != nil {
				t.Fatal(err)
			}
		}
		return app
	}
	refresh := func(app iam.Application, token string) {
		grant, _ := json.Marshal(smartGrant{ProjectID: project, ClientID: app.ClientID, Scopes: []string{"offline_access"}})
		if err := ts.st.PutRefreshToken(ctx, store.RefreshToken{Hash: secretHash("refresh", token), ProjectID: project, Family: "f-" + token,
			ClientID: app.ClientID, Grant: grant, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	public, confidential := mkApp("public", false), mkApp("confidential", true)
	refresh(public, "rt-public")
	refresh(confidential, "rt-conf")
	post := func(form url.Values) (int, map[string]any) {
		res, err := http.PostForm(ts.URL+"/oauth/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
		about  string
	}{
		{"confidential app without its secret", url.Values{"refresh_token": {"rt-conf"}}, 401, "invalid_client", "confidential"},
		{"confidential app naming itself only", url.Values{"refresh_token": {"rt-conf"}, "client_id": {confidential.ClientID}}, 401, "invalid_client", "confidential"},
		{"confidential app, wrong secret", url.Values{"refresh_token": {"rt-conf"}, "client_id": {confidential.ClientID}, "client_secret": {"nope"}}, 401, "invalid_client", "invalid client credentials"},
		{"public app's token named by another client", url.Values{"refresh_token": {"rt-public"}, "client_id": {confidential.ClientID}}, 401, "invalid_client", "confidential"},
		{"unknown token", url.Values{"refresh_token": {"nope"}}, 400, "invalid_grant", ""},
		{"unknown client", url.Values{"refresh_token": {"rt-public"}, "client_id": {"who"}}, 401, "invalid_client", "unknown client_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("grant_type", "refresh_token")
			status, out := post(tc.form)
			if status != tc.status || out["error"] != tc.code || !strings.Contains(str(out["error_description"]), tc.about) {
				t.Fatalf("%d %v, want %d %s (%q)", status, out, tc.status, tc.code, tc.about)
			}
		})
	}
	// The public app's error never calls it confidential, and its bare
	// refresh passes client authentication (the grant has no user here, so
	// what follows fails later, not as invalid_client).
	if _, out := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt-public"}}); out["error"] == "invalid_client" {
		t.Fatalf("public app's bare refresh: %v", out)
	}
	// The confidential app's failed attempts did not use its token up.
	if c, err := ts.st.RefreshTokenClient(ctx, secretHash("refresh", "rt-conf")); err != nil || c != confidential.ClientID {
		t.Fatalf("refresh token after refused attempts: %q %v", c, err)
	}
	if _, err := ts.st.UseRefreshToken(ctx, secretHash("refresh", "rt-conf"), time.Now()); err != nil {
		t.Fatalf("the confidential app's token was used up by refused attempts: %v", err)
	}
}

func str(v any) string { s, _ := v.(string); return s }
