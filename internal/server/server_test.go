package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/provider/clearinghouse"
	"github.com/wardhealth/ward/internal/provider/sms"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/smart/oauth"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/tokens"
)

const testURL = "http://ward.test"

// testServer is a whole Server on a fresh SQLite store, served by httptest.
type testServer struct {
	*httptest.Server
	keys  *tokens.Keys
	admin iam.AdminCredentials
	token string
	st    *store.Store
	iam   *iam.Service
	srv   *Server
}

// newTestServer opens loopback to the egress policy: the key servers of
// the tests are httptest servers.
func newTestServer(t testing.TB) *testServer {
	t.Helper()
	pol, err := egress.New(t.Context(), egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServerEgress(t, pol)
}

// newTestServerEgress is newTestServer with the given egress policy.
func newTestServerEgress(t testing.TB, pol *egress.Policy) *testServer {
	t.Helper()
	return newTestServerWith(t, pol, nil)
}

// newTestServerWith is newTestServerEgress with services added to the
// server's dependencies by with (nil: none), e.g. Z3.
func newTestServerWith(t testing.TB, pol *egress.Policy, with func(st *store.Store, sealer *seal.Sealer, d *Deps)) *testServer {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, storetest.Backends()[0])
	sealer := sealtest.Setup(t, st)
	keys, err := tokens.LoadKeys(ctx, st, sealer, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := tokens.LoadRevocations(ctx, st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	svc := iam.New(st, testURL+"/invite/", time.Now, iam.Deps{Sealer: sealer})
	admin, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fhirSvc := fhir.New(st, svc, fhir.Config{}, time.Now)
	deps := Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), IAM: svc, Now: time.Now,
		OAuth: newTestOAuth(t, st, svc, keys, revoked, fhirSvc, pol),
		FHIR:  fhir.NewHandler(fhirSvc, testURL+"/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))}
	if with != nil {
		with(st, sealer, &deps)
	}
	srv := New(Config{PublicURL: testURL, MaxBodyBytes: 64 << 10, RequestTimeout: 10 * time.Second, Version: "test",
		ReadConcurrency: 1, ReadMaxWait: 10 * time.Second}, // every FHIR read here takes its turn, never by timeout
		deps)
	ts := &testServer{Server: httptest.NewServer(srv.Handler()), keys: keys, admin: admin, st: st, iam: svc, srv: srv}
	t.Cleanup(ts.Close)
	ts.token = ts.clientToken(t, admin.ClientID, admin.ClientSecret)
	return ts
}

// newTestOAuth is the authorization server of a test server at testURL.
func newTestOAuth(t testing.TB, st *store.Store, svc *iam.Service, keys *tokens.Keys, revoked *tokens.Revocations,
	fhirSvc *fhir.Service, pol *egress.Policy) *oauth.Server {
	t.Helper()
	o, err := oauth.New(oauth.Config{PublicURL: testURL, FHIRBase: testURL + "/fhir", TokenTTL: time.Hour},
		oauth.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st, IAM: svc, Keys: keys, Revoked: revoked,
			Issuer:   auth.NewIssuer(keys.Ring, testURL, testURL, time.Now),
			Verifier: auth.NewVerifier(keys.Ring, testURL, []string{testURL}, revoked, time.Now),
			FHIR:     fhirSvc, Egress: pol, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (ts *testServer) clientToken(t testing.TB, id, secret string) string {
	t.Helper()
	res, err := http.PostForm(ts.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	if res.StatusCode != 200 {
		t.Fatalf("token: %d %v", res.StatusCode, out)
	}
	return out["access_token"].(string)
}

// do sends a request and decodes a JSON answer.
func (ts *testServer) do(t testing.TB, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func TestTamperedTokensAre401(t *testing.T) {
	ts := newTestServer(t)
	p := auth.Principal{ProjectID: ts.admin.ProjectID, Kind: auth.KindM2M, ID: "x", ClientID: ts.admin.ClientID}
	if status, _ := ts.do(t, "GET", "/v1/m2m/me", ts.token, ""); status != 200 {
		t.Fatalf("valid token: %d", status)
	}
	// The admin principal's real id, so only the token defect matters.
	_, me := ts.do(t, "GET", "/v1/m2m/me", ts.token, "")
	p.ID = me["id"].(string)

	issue := func(ring func() *auth.KeyRing, aud string, now time.Time, ttl time.Duration) string {
		tok, _, err := auth.NewIssuer(ring, testURL, aud, func() time.Time { return now }).Issue(context.Background(), p, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, err := auth.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherRing, _ := auth.NewKeyRing([]auth.Key{other}, time.Hour)
	sameKID := other
	sameKID.ID = ts.keys.Ring().SigningKeyID(time.Now())
	sameKIDRing, _ := auth.NewKeyRing([]auth.Key{sameKID}, time.Hour)
	valid := issue(ts.keys.Ring, testURL, time.Now(), time.Hour)
	parts := strings.Split(valid, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + ts.keys.Ring().SigningKeyID(time.Now()) + `"}`))
	revoked := issue(ts.keys.Ring, testURL, time.Now(), time.Hour)
	if res, err := http.PostForm(ts.URL+"/oauth/revoke", url.Values{"token": {revoked}, "client_id": {ts.admin.ClientID}, "client_secret": {ts.admin.ClientSecret}}); err != nil || res.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", res, err)
	}
	cases := []struct{ name, token string }{
		{"other key", issue(func() *auth.KeyRing { return otherRing }, testURL, time.Now(), time.Hour)},
		{"other key, same kid", issue(func() *auth.KeyRing { return sameKIDRing }, testURL, time.Now(), time.Hour)},
		{"alg none", noneHeader + "." + parts[1] + "."},
		{"expired", issue(ts.keys.Ring, testURL, time.Now().Add(-2*time.Hour), time.Hour)},
		{"not yet valid", issue(ts.keys.Ring, testURL, time.Now().Add(time.Hour), time.Hour)},
		{"wrong audience", issue(ts.keys.Ring, "https://elsewhere.example", time.Now(), time.Hour)},
		{"revoked", revoked},
		{"payload swapped", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"y"}`)) + "." + parts[2]},
		{"garbage", "not-a-token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := ts.do(t, "GET", "/v1/m2m/me", c.token, "")
			if status != http.StatusUnauthorized {
				t.Fatalf("status = %d (%v), want 401", status, body)
			}
			if body["code"] != float64(401) || body["message"] == "" {
				t.Fatalf("error body = %v", body)
			}
		})
	}
	if status, _ := ts.do(t, "GET", "/v1/m2m/me", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", status)
	}
}

func TestBadInputGetsClearErrors(t *testing.T) {
	ts := newTestServer(t)
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"bad JSON", "POST", "/v1/iam/role", `{"name":`, 400, "JSON"},
		{"wrong type", "POST", "/v1/iam/role", `{"name":5}`, 400, `"name" must be string`},
		{"missing name", "POST", "/v1/iam/role", `{}`, 400, "name is required"},
		{"unknown policy field", "POST", "/v1/iam/role", `{"name":"r","accessPolicy":{"rule":[],"extra":1}}`, 400, "accessPolicy"},
		{"policy rule not an object", "POST", "/v1/iam/role", `{"name":"r","accessPolicy":{"rule":[5]}}`, 400, "accessPolicy"},
		{"oversize body", "POST", "/v1/iam/role", big, 413, "larger than the limit"},
		{"unknown endpoint", "GET", "/v1/nope", "", 404, "no such endpoint"},
		{"m2m without roles or policy", "POST", "/v1/m2m", `{"name":"c"}`, 400, "roles or an accessPolicy"},
		{"unknown role", "POST", "/v1/m2m", `{"name":"c","roles":["nope"]}`, 400, "does not exist"},
		{"bad cursor", "GET", "/v1/m2m/v2/list?cursor=!!!", "", 400, "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := ts.do(t, c.method, c.path, ts.token, c.body)
			msg, _ := body["message"].(string)
			if status != c.status || !strings.Contains(msg, c.message) || body["code"] != float64(c.status) {
				t.Fatalf("got %d %v, want %d with %q", status, body, c.status, c.message)
			}
		})
	}
}

func TestIntrospectAndRevoke(t *testing.T) {
	ts := newTestServer(t)
	form := func(path string, v url.Values) map[string]any {
		v.Set("client_id", ts.admin.ClientID)
		v.Set("client_secret", ts.admin.ClientSecret)
		res, err := http.PostForm(ts.URL+path, v)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, res.StatusCode, out)
		}
		return out
	}
	tok := ts.clientToken(t, ts.admin.ClientID, ts.admin.ClientSecret)
	if got := form("/oauth/introspect", url.Values{"token": {tok}}); got["active"] != true || got["client_id"] != ts.admin.ClientID {
		t.Fatalf("introspect active token = %v", got)
	}
	if got := form("/oauth/introspect", url.Values{"token": {"garbage"}}); got["active"] != false || len(got) != 1 {
		t.Fatalf("introspect garbage = %v", got)
	}
	if status, _ := ts.do(t, "GET", "/v1/m2m/me", tok, ""); status != 200 {
		t.Fatalf("before revoke: %d", status)
	}
	form("/oauth/revoke", url.Values{"token": {tok}})
	if status, _ := ts.do(t, "GET", "/v1/m2m/me", tok, ""); status != 401 {
		t.Fatalf("after revoke: %d, want 401", status)
	}
	if got := form("/oauth/introspect", url.Values{"token": {tok}}); got["active"] != false {
		t.Fatalf("introspect revoked token = %v", got)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		name   string
		body   url.Values
		status int
		code   string
	}{
		{"no grant", url.Values{}, 400, "invalid_request"},
		{"password grant", url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type"},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {ts.admin.ClientID}, "client_secret": {"nope"}}, 401, "invalid_client"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nope"}, "client_secret": {"nope"}}, 401, "invalid_client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := http.PostForm(ts.URL+"/oauth/token", c.body)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out map[string]any
			json.NewDecoder(res.Body).Decode(&out)
			if res.StatusCode != c.status || out["error"] != c.code {
				t.Fatalf("got %d %v, want %d %s", res.StatusCode, out, c.status, c.code)
			}
		})
	}
	// HTTP Basic works too.
	req, _ := http.NewRequest("POST", ts.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ts.admin.ClientID, ts.admin.ClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("basic auth token: %v %v", res, err)
	}
	res.Body.Close()
}

func TestEveryRouteNamesItsAction(t *testing.T) {
	s := &Server{sms: &sms.Service{}, rcm: &clearinghouse.RCM{}}
	for _, rt := range append(append(s.routes(), s.messagingRoutes()...), s.rcmRoutes()...) {
		if rt.public {
			continue
		}
		if rt.action == "" || !strings.Contains(rt.action, ":") {
			t.Errorf("%s %s: no action", rt.method, rt.path)
		}
	}
}

func decodeMap(res *http.Response) map[string]any {
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return out
}
