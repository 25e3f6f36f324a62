package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/oauth2"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestConversationsAcrossReplicas runs the same SDK scenario with two
// `ward serve` on one PostgreSQL: every API call goes to the first, every
// live stream to the second, so each message and each removal reaches its
// readers through the database's NOTIFY.
func TestConversationsAcrossReplicas(t *testing.T) {
	dsn := storetest.Backends()[1].DSN(t)
	env := []string{"WARD_SECRETS_KEY=" + base64.StdEncoding.EncodeToString(seal.NewKey())}
	rs := make([]*ward, 2)
	for i := range rs {
		rs[i] = &ward{DataDir: t.TempDir(), DB: dsn, URL: "http://" + freeAddr(t), log: &syncBuffer{}, env: env}
	}
	lb := newRRProxy(t, rs)
	for _, r := range rs {
		r.flags = []string{"--public-url", lb.URL, "--trusted-proxies", "127.0.0.1/32"}
		r.start(t)
	}
	for _, r := range rs {
		r.waitHealthy(t)
	}
	for _, r := range rs {
		if raw, err := os.ReadFile(filepath.Join(r.DataDir, "admin-credentials.json")); err == nil {
			if err := json.Unmarshal(raw, &rs[0].Admin); err != nil {
				t.Fatal(err)
			}
		}
	}
	w := rs[0]
	admin := w.token(t, w.Admin)
	vars := map[string]string{"WARD_URL": w.URL, "WARD_STREAM_URL": rs[1].URL, "WARD_CLIENT_ID": w.Admin.ClientID,
		"WARD_CLIENT_SECRET": w.Admin.ClientSecret, "WARD_PROJECT_ID": w.Admin.ProjectID}
	for k, v := range chatUsers(t, w, lb.URL, admin) {
		vars[k] = v
	}
	nodeTest(t, "conversation.test.mjs", vars)
}

// TestConversationsWithSDK runs e2e/conversation.test.mjs (the real
// @oystehr/sdk's conversation.*, and the live stream) against a server on
// each backend: three signed-in users, two of them in the chat.
func TestConversationsWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			admin := w.token(t, w.Admin)
			env := map[string]string{"WARD_URL": w.URL, "WARD_CLIENT_ID": w.Admin.ClientID,
				"WARD_CLIENT_SECRET": w.Admin.ClientSecret, "WARD_PROJECT_ID": w.Admin.ProjectID}
			for k, v := range chatUsers(t, w, w.URL, admin) {
				env[k] = v
			}
			nodeTest(t, "conversation.test.mjs", env)
		})
	}
}

// chatUsers makes three users (a practitioner, a patient, another
// practitioner) who may chat and nothing else, signs each in and returns
// their tokens and profiles as environment variables, and a fourth
// user's who may not chat.
func chatUsers(t *testing.T, w *ward, public, admin string) map[string]string {
	t.Helper()
	var chat, none struct{ ID string }
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"chat","accessPolicy":{"rule":[{"resource":["Messaging:Conversation:*"],"action":["Messaging:GetConversationToken","Messaging:ConversationSendMessage"],"effect":"Allow"}]}}`, &chat); st >= 300 {
		t.Fatalf("create role: %d", st)
	}
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"reader","accessPolicy":{"rule":[{"resource":["FHIR:Patient"],"action":["FHIR:Read"],"effect":"Allow"}]}}`, &none); st >= 300 {
		t.Fatalf("create role: %d", st)
	}
	var app struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	if st := w.api(t, admin, "POST", "/application", fmt.Sprintf(`{"name":"Chat app","allowedCallbackUrls":[%q]}`, smartCallback), &app); st >= 300 {
		t.Fatalf("create application: %d", st)
	}
	const password = "correct horse battery staple"
	conf := &oauth2.Config{ClientID: app.ClientID, RedirectURL: smartCallback, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: public + "/oauth/authorize", TokenURL: public + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	env := map[string]string{}
	for i, u := range []struct{ key, typ, role string }{{"DOC", "Practitioner", chat.ID}, {"PAT", "Patient", chat.ID},
		{"OTHER", "Practitioner", chat.ID}, {"NOCHAT", "Practitioner", none.ID}} {
		st, res := w.fhirDo(t, admin, "POST", u.typ, map[string]any{"resourceType": u.typ})
		if st != 201 {
			t.Fatalf("create %s: %d", u.typ, st)
		}
		profile := u.typ + "/" + res["id"].(string)
		email := fmt.Sprintf("chat%d@example.org", i)
		w.inviteUser(t, admin, app.ID, u.role, email, profile, password)
		verifier := oauth2.GenerateVerifier()
		state := fmt.Sprintf("c%d", i)
		authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", public+"/fhir"))
		tok, err := conf.Exchange(context.Background(), login(t, authURL, email, password, state), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		env["WARD_"+u.key+"_TOKEN"] = tok.AccessToken
		env["WARD_"+u.key+"_PROFILE"] = profile
	}
	return env
}
