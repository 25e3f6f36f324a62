package e2e

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestReplicas: three `ward serve` on one PostgreSQL, started at once on an
// empty database, behind one public URL, each sent requests directly. A
// change acknowledged by replica 1 holds on the very next request to
// replicas 2 and 3 (no waiting, no retry): token revocation, a role edit
// removing a permission, M2M client deletion, a project setting; the
// replicas publish one JWKS after the first start and through
// `ward admin rotate-keys`, whose new key signs on none of them before its
// publication lead and on all after; and a replica with another secrets
// key refuses to start. As deployed, the replicas share one S3-compatible
// store for Z3 and sit behind one round-robin load balancer whose URL is
// the public URL: Z3 objects and presigned URLs cross replicas, sign-in
// throttling counts the client addresses the proxy reports, concurrent
// PUTs through it all succeed, and a replica SIGKILLed under write load
// loses no acknowledged create nor its subscription event
// (replicas_proxy_test.go).
func TestReplicas(t *testing.T) {
	b := storetest.Backends()[1]
	if b.Name != "postgres" {
		t.Fatal("backend 1 is not PostgreSQL")
	}
	dsn := b.DSN(t)
	// As deployed: one S3-compatible store for Z3, one load balancer whose
	// URL is the public URL (the issuer) and whose address is the trusted
	// proxy, and a webhook receiver the egress policy is opened to.
	s3 := newSharedS3(t, "ward-objects")
	rc := newReceiver(t)
	env := []string{"WARD_SECRETS_KEY=" + base64.StdEncoding.EncodeToString(seal.NewKey()),
		"WARD_Z3_S3_ACCESS_KEY=ward", "WARD_Z3_S3_SECRET_KEY=not-a-real-secret"}
	rs := make([]*ward, 3)
	for i := range rs {
		rs[i] = &ward{DataDir: t.TempDir(), DB: dsn, URL: "http://" + freeAddr(t), log: &syncBuffer{}, env: env}
	}
	lb := newRRProxy(t, rs)
	for _, r := range rs {
		r.flags = []string{"--public-url", lb.URL, "--trusted-proxies", "127.0.0.1/32",
			"--z3-backend", "s3://ward-objects/z3?endpoint=" + s3.URL + "&region=us-east-1&path-style=true",
			"--egress-allow", "127.0.0.1/32"}
		r.start(t)
	}
	for _, r := range rs {
		r.waitHealthy(t)
	}
	var admin creds
	for _, r := range rs {
		if raw, err := os.ReadFile(filepath.Join(r.DataDir, "admin-credentials.json")); err == nil {
			if err := json.Unmarshal(raw, &admin); err != nil {
				t.Fatal(err)
			}
		}
	}
	if admin.ClientID == "" {
		t.Fatal("no replica wrote admin credentials")
	}
	r1, others := rs[0], rs[1:]
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	t.Run("one key after first start", func(t *testing.T) {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM signing_keys`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d signing keys after three replicas started at once (%v), want 1", n, err)
		}
		jwks := sameJWKS(t, rs)
		if len(jwks) != 1 {
			t.Fatalf("JWKS of %d keys, want 1", len(jwks))
		}
		for _, r := range rs {
			if kid := tokenKid(t, r.token(t, admin)); kid != jwks[0] {
				t.Fatalf("%s signs with %s, the JWKS has %s", r.URL, kid, jwks[0])
			}
		}
	})

	adminTok := r1.token(t, admin)
	t.Run("token revocation", func(t *testing.T) {
		tok := r1.token(t, admin)
		for _, r := range rs {
			if st := r.api(t, tok, "GET", "/m2m/me", "", nil); st != 200 {
				t.Fatalf("%s before the revocation: %d", r.URL, st)
			}
		}
		form := url.Values{"token": {tok}, "client_id": {admin.ClientID}, "client_secret": {admin.ClientSecret}}
		res, err := http.PostForm(r1.URL+"/oauth/revoke", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("revoke: %d", res.StatusCode)
		}
		for _, r := range rs {
			if st := r.api(t, tok, "GET", "/m2m/me", "", nil); st != 401 {
				t.Errorf("%s: the revoked token's next request: %d, want 401", r.URL, st)
			}
		}
	})

	t.Run("role edit removing a permission", func(t *testing.T) {
		var role struct {
			ID string `json:"id"`
		}
		if st := r1.api(t, adminTok, "POST", "/iam/role", `{"name":"role-reader","accessPolicy":{"rule":[{"resource":["IAM:Role:*"],"action":["IAM:ListAllRoles"],"effect":"Allow"}]}}`, &role); st != 200 {
			t.Fatalf("create role: %d", st)
		}
		client := newClient(t, r1, adminTok, `{"name":"holder","roles":["`+role.ID+`"]}`)
		tok := r1.token(t, client.creds)
		for _, r := range rs { // compiles and caches the policy everywhere
			if st := r.api(t, tok, "GET", "/iam/role", "", nil); st != 200 {
				t.Fatalf("%s before the edit: %d", r.URL, st)
			}
		}
		if st := r1.api(t, adminTok, "PATCH", "/iam/role/"+role.ID, `{"accessPolicy":{"rule":[]}}`, nil); st != 200 {
			t.Fatalf("edit role: %d", st)
		}
		for _, r := range others {
			if st := r.api(t, tok, "GET", "/iam/role", "", nil); st != 403 {
				t.Errorf("%s: the next request after the edit: %d, want 403", r.URL, st)
			}
		}
	})

	t.Run("M2M client deletion", func(t *testing.T) {
		client := newClient(t, r1, adminTok, `{"name":"doomed","accessPolicy":{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}}`)
		tok := r1.token(t, client.creds)
		for _, r := range rs {
			if st := r.api(t, tok, "GET", "/m2m/me", "", nil); st != 200 {
				t.Fatalf("%s before the deletion: %d", r.URL, st)
			}
		}
		if st := r1.api(t, adminTok, "DELETE", "/m2m/"+client.id, "", nil); st != 200 && st != 204 {
			t.Fatalf("delete client: %d", st)
		}
		for _, r := range others {
			if st := r.api(t, tok, "GET", "/m2m/me", "", nil); st != 401 {
				t.Errorf("%s: the deleted client's next request: %d, want 401", r.URL, st)
			}
		}
	})

	t.Run("project setting", func(t *testing.T) {
		// The project's authorizer settings are cached per replica: a
		// foreign token is refused naming the issuers they accept.
		var z struct {
			ID string `json:"id"`
		}
		if st := r1.api(t, adminTok, "POST", "/zambda", `{"name":"authz","runtime":"nodejs20.x","timeoutInSeconds":5}`, &z); st != 200 {
			t.Fatalf("create zambda: %d", st)
		}
		foreign := foreignJWT("https://idp.example", "someone")
		refusal := func(r *ward) string {
			req, _ := http.NewRequest("GET", r.URL+"/fhir/Patient", nil)
			req.Header.Set("Authorization", "Bearer "+foreign)
			req.Header.Set("x-oystehr-project-id", admin.ProjectID)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != 401 {
				t.Fatalf("%s: a foreign token: %d %s", r.URL, res.StatusCode, body)
			}
			return string(body)
		}
		for _, issuer := range []string{"https://a.example", "https://b.example"} {
			for _, r := range rs {
				refusal(r) // caches the current setting
			}
			body := fmt.Sprintf(`{"authorizerZambdaId":%q,"authorizerIssuers":[%q]}`, z.ID, issuer)
			if st := r1.api(t, adminTok, "PATCH", "/project", body, nil); st != 200 {
				t.Fatalf("update project: %d", st)
			}
			for _, r := range others {
				if got := refusal(r); !strings.Contains(got, "accepts tokens of "+issuer+" only") {
					t.Errorf("%s: the next request after setting the issuers to %s: %s", r.URL, issuer, got)
				}
			}
		}
	})

	t.Run("key rotation", func(t *testing.T) {
		before := sameJWKS(t, rs)
		const lead = 5 * time.Second
		start := time.Now()
		r1.admin(t, "rotate-keys", "--publish-for", lead.String())
		after := sameJWKS(t, rs) // the next request everywhere publishes the new key
		if len(after) != 2 || after[1] != before[0] {
			t.Fatalf("JWKS after rotate-keys %v, want the new key and then %v", after, before)
		}
		newKid := after[0]
		for _, r := range rs {
			tok := r.token(t, admin)
			if time.Since(start) >= lead {
				t.Logf("%s: the check of signing before the lead came too late", r.URL)
				continue
			}
			if kid := tokenKid(t, tok); kid != before[0] {
				t.Errorf("%s signed with %s before the new key's lead passed, want the old key %s", r.URL, kid, before[0])
			}
		}
		// Once the lead has passed, each replica signs with the new key
		// (activation is a time each replica reads off its own clock).
		deadline := start.Add(lead + 30*time.Second)
		for _, r := range rs {
			for {
				tok := r.token(t, admin)
				if tokenKid(t, tok) == newKid {
					for _, other := range rs { // and the others accept it
						if st := other.api(t, tok, "GET", "/m2m/me", "", nil); st != 200 {
							t.Errorf("%s refuses a token %s signed with the new key: %d", other.URL, r.URL, st)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never signed with the new key", r.URL)
				}
				time.Sleep(100 * time.Millisecond) // polling interval, bounded by the deadline
			}
		}
		if got := sameJWKS(t, rs); strings.Join(got, ",") != strings.Join(after, ",") {
			t.Errorf("JWKS once the new key signs %v, want %v", got, after)
		}
	})

	t.Run("concurrent FHIR writes of one resource", func(t *testing.T) {
		// Each replica sends writers PUTs at once: without If-Match every
		// one succeeds with a version of its own, as on SQLite; with the
		// same If-Match one wins and the others get 412.
		const writers = 5
		put := func(r *ward, ifMatch string, i int) (int, error) {
			body := fmt.Sprintf(`{"resourceType":"Patient","id":"race","birthDate":"2000-01-%02d"}`, i%28+1)
			req, err := http.NewRequest("PUT", r.URL+"/fhir/Patient/race", strings.NewReader(body))
			if err != nil {
				return 0, err
			}
			req.Header.Set("Authorization", "Bearer "+adminTok)
			req.Header.Set("Content-Type", "application/fhir+json")
			if ifMatch != "" {
				req.Header.Set("If-Match", ifMatch)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return res.StatusCode, nil
		}
		race := func(ifMatch string) map[int]int {
			type result struct {
				status int
				err    error
			}
			results := make(chan result, writers*len(rs))
			for _, r := range rs {
				for i := range writers {
					go func() {
						st, err := put(r, ifMatch, i)
						results <- result{st, err}
					}()
				}
			}
			counts := map[int]int{}
			for range writers * len(rs) {
				res := <-results
				if res.err != nil {
					t.Fatal(res.err)
				}
				counts[res.status]++
			}
			return counts
		}
		plain := race("")
		if plain[200]+plain[201] != writers*len(rs) || plain[201] > 1 {
			t.Errorf("plain PUTs: statuses %v, want all 200 (one 201 for the create)", plain)
		}
		var cur struct {
			Meta struct {
				VersionID string `json:"versionId"`
			} `json:"meta"`
		}
		req, _ := http.NewRequest("GET", r1.URL+"/fhir/Patient/race", nil)
		req.Header.Set("Authorization", "Bearer "+adminTok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&cur)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint(writers * len(rs)); cur.Meta.VersionID != want {
			t.Errorf("version after %s plain PUTs: %s", want, cur.Meta.VersionID)
		}
		matched := race(`W/"` + cur.Meta.VersionID + `"`)
		if matched[200] != 1 || matched[412] != writers*len(rs)-1 {
			t.Errorf("PUTs with one If-Match: statuses %v, want one 200 and 412 for the rest", matched)
		}
		for _, r := range rs {
			res, err := http.Get(r.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("%s/readyz: %d", r.URL, res.StatusCode)
			}
		}
	})

	t.Run("Z3 on one S3 store", func(t *testing.T) { testZ3AcrossReplicas(t, rs, lb, s3, adminTok) })
	t.Run("sign-in throttling behind the proxy", func(t *testing.T) { testThrottleBehindProxy(t, lb, adminTok) })
	t.Run("concurrent PUTs through the proxy", func(t *testing.T) { testPutsThroughProxy(t, lb, adminTok) })
	t.Run("kill -9 under write load", func(t *testing.T) { testKillUnderLoad(t, rs, lb, rc, adminTok) })

	t.Run("wrong secrets key", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			env  []string
			want string
		}{
			{"another key", []string{"WARD_SECRETS_KEY=" + base64.StdEncoding.EncodeToString(seal.NewKey())}, "the secrets key does not match this database"},
			{"no key", nil, "holds keys and secrets sealed with a secrets key, but none is configured"},
		} {
			r := &ward{DataDir: t.TempDir(), DB: dsn, URL: r1.URL, log: &syncBuffer{}, env: tc.env}
			if out := r.serveFails(t); !strings.Contains(out, tc.want) {
				t.Errorf("%s: the refusal does not say %q:\n%s", tc.name, tc.want, out)
			}
		}
	})
}

// sameJWKS fetches the JWKS from every replica, requires them identical
// byte for byte, and returns the key ids in order.
func sameJWKS(t *testing.T, rs []*ward) []string {
	t.Helper()
	var first []byte
	for _, r := range rs {
		res, err := http.Get(r.URL + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s JWKS: %d", r.URL, res.StatusCode)
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Fatalf("JWKS differ between replicas:\n%s: %s\n%s: %s", rs[0].URL, first, r.URL, body)
		}
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(first, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// tokenKid is the kid in a JWT's header.
func tokenKid(t *testing.T, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// clientCreds is an M2M client made for a test, with its secret.
type clientCreds struct {
	creds
	id string
}

// newClient creates an M2M client from spec and gives it a secret.
func newClient(t *testing.T, w *ward, adminTok, spec string) clientCreds {
	t.Helper()
	var c struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	if st := w.api(t, adminTok, "POST", "/m2m", spec, &c); st != 200 {
		t.Fatalf("create M2M client: %d", st)
	}
	var s struct {
		Secret string `json:"secret"`
	}
	if st := w.api(t, adminTok, "POST", "/m2m/"+c.ID+"/rotate-secret", "", &s); st != 200 {
		t.Fatalf("client secret: %d", st)
	}
	return clientCreds{creds: creds{ClientID: c.ClientID, ClientSecret: s.Secret}, id: c.ID}
}
