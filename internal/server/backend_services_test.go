package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/iam"
)

// TestBackendServices: an M2M client with a jwksUrl gets a system/ token
// for a private_key_jwt assertion signed with ES384; replays, a wrong aud,
// an expired assertion and an unknown kid are invalid_client.
func TestBackendServices(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pad := func(b *big.Int) string { return base64.RawURLEncoding.EncodeToString(b.FillBytes(make([]byte, 48))) }
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-384", "kid": "k1", "use": "sig",
		"x": pad(key.X), "y": pad(key.Y)}}})
	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	defer keySrv.Close()
	svc := ts.iam
	name, u := "backend", keySrv.URL
	m, err := svc.CreateM2M(ctx, ts.admin.ProjectID, iam.M2MInput{Name: &name, JWKSURL: &u,
		AccessPolicy: json.RawMessage(`{"rule":[{"resource":"FHIR:*","action":"FHIR:*","effect":"Allow"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	tokenURL := testURL + "/oauth/token"
	assertion := func(kid, aud string, exp time.Time, jti string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES384, jwt.MapClaims{"iss": m.ClientID, "sub": m.ClientID, "aud": aud,
			"exp": exp.Unix(), "jti": jti})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	post := func(a string) (int, map[string]any) { return postAssertion(t, ts, a, "system/Patient.rs") }
	soon := time.Now().Add(4 * time.Minute)
	good := assertion("k1", tokenURL, soon, "jti-1")
	status, out := post(good)
	if status != 200 || out["scope"] != "system/Patient.rs" {
		t.Fatalf("valid assertion: %d %v", status, out)
	}
	tok := out["access_token"].(string)
	if st, _ := ts.do(t, "GET", "/fhir/Patient?_count=1", tok, ""); st != 200 {
		t.Fatalf("search with system/Patient.rs: %d", st)
	}
	if st, _ := ts.do(t, "GET", "/fhir/Observation?_count=1", tok, ""); st != 403 {
		t.Fatalf("search outside the scope: %d", st)
	}
	for name, a := range map[string]string{
		"replayed jti": good,
		"wrong aud":    assertion("k1", testURL+"/other", soon, "jti-2"),
		"expired":      assertion("k1", tokenURL, time.Now().Add(-time.Minute), "jti-3"),
		"too long":     assertion("k1", tokenURL, time.Now().Add(time.Hour), "jti-4"),
		"unknown kid":  assertion("k2", tokenURL, soon, "jti-5"),
	} {
		status, out := post(a)
		if status != 401 || out["error"] != "invalid_client" {
			t.Errorf("%s: %d %v", name, status, out)
		}
		if desc, _ := out["error_description"].(string); strings.TrimSpace(desc) == "" {
			t.Errorf("%s: no reason given", name)
		}
	}
}

// TestBackendServicesInlineJWKS registers a client's key set inline through
// the Project API (no JWKS URL) and authenticates with RS384.
func TestBackendServicesInlineJWKS(t *testing.T) {
	ts := newTestServer(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "r1", "alg": "RS384",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	if st, out := ts.do(t, "POST", "/v1/m2m", ts.token, `{"name":"bad","jwks":{"keys":[{"kty":"RSA"}]},"accessPolicy":{"rule":[]}}`); st != 400 {
		t.Fatalf("malformed jwks: %d %v", st, out)
	}
	m := ts.mustDo(t, 200, "POST", "/v1/m2m", ts.token, `{"name":"inline","jwks":`+string(jwks)+`,"accessPolicy":{"rule":[{"resource":"FHIR:*","action":"FHIR:*","effect":"Allow"}]}}`)
	if _, ok := m["jwks"].(map[string]any); !ok {
		t.Fatalf("created client does not show its jwks: %v", m)
	}
	clientID := m["clientId"].(string)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS384, jwt.MapClaims{"iss": clientID, "sub": clientID, "aud": testURL + "/oauth/token",
		"exp": time.Now().Add(time.Minute).Unix(), "jti": "inline-1"})
	tok.Header["kid"] = "r1"
	a, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	if st, out := postAssertion(t, ts, a, "system/*.rs"); st != 200 || out["scope"] != "system/*.rs" {
		t.Fatalf("inline JWKS assertion: %d %v", st, out)
	}
	// Removing the key set (null) makes the same kind of assertion fail.
	ts.mustDo(t, 200, "PATCH", "/v1/m2m/"+m["id"].(string), ts.token, `{"jwks":null}`)
	tok.Claims.(jwt.MapClaims)["jti"] = "inline-2"
	a, _ = tok.SignedString(key)
	if st, _ := postAssertion(t, ts, a, ""); st != 401 {
		t.Fatalf("after removing the jwks: %d, want 401", st)
	}
}

// postAssertion asks for a token with a private_key_jwt client assertion.
func postAssertion(t *testing.T, ts *testServer, assertion, scope string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion": {assertion},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	res, err := http.PostForm(ts.URL+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// TestBackendServicesEgress: a jwksUrl on an address the egress policy
// refuses is never fetched, and the 401 names the rule (not the address).
func TestBackendServicesEgress(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer keySrv.Close()
	protect, err := egress.New(t.Context(), egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Protect: []string{keySrv.Listener.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		policy *egress.Policy
		reason string
	}{
		{"default policy", nil, "refused by the egress policy (a loopback address)"},
		{"allowed but protected", protect, "refused by the egress policy (one of Ward's own service addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServerEgress(t, tc.policy)
			name, u := "backend", keySrv.URL
			m, err := ts.iam.CreateM2M(t.Context(), ts.admin.ProjectID, iam.M2MInput{Name: &name, JWKSURL: &u,
				AccessPolicy: json.RawMessage(`{"rule":[{"resource":"FHIR:*","action":"FHIR:*","effect":"Allow"}]}`)})
			if err != nil {
				t.Fatal(err)
			}
			tok := jwt.NewWithClaims(jwt.SigningMethodES384, jwt.MapClaims{"iss": m.ClientID, "sub": m.ClientID,
				"aud": testURL + "/oauth/token", "exp": time.Now().Add(time.Minute).Unix(), "jti": "j1"})
			tok.Header["kid"] = "k1"
			a, err := tok.SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			status, out := postAssertion(t, ts, a, "")
			desc, _ := out["error_description"].(string)
			if status != 401 || !strings.Contains(desc, tc.reason) || strings.Contains(desc, "dial") {
				t.Fatalf("assertion with a refused jwksUrl: %d %v, want 401 with %q", status, out, tc.reason)
			}
			if hits.Load() != 0 {
				t.Fatal("the refused JWKS URL was fetched")
			}
		})
	}
}
