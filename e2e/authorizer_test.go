package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// fakeIdP is an outside identity provider's RFC 7662 introspection
// endpoint: it knows a table of tokens, requires the client credentials
// Ward's authorizer zambda holds in its secrets, and counts calls per token
// so the tests can tell whether Ward's decision cache was used.
type fakeIdP struct {
	ip string // where it listens: an outside address (see outsideIP)
	*httptest.Server
	clientID, clientSecret string

	mu       sync.Mutex
	tokens   map[string]map[string]any // token -> introspection answer
	calls    map[string]int            // token -> introspections
	badCreds int                       // calls refused for wrong client credentials
	slow     map[string]bool           // tokens answered after 2 s
}

func newFakeIdP(t *testing.T) *fakeIdP {
	idp := &fakeIdP{clientID: "ward-at-idp", clientSecret: "idp-s3cret-" + fmt.Sprint(time.Now().UnixNano()),
		tokens: map[string]map[string]any{}, calls: map[string]int{}, slow: map[string]bool{}}
	idp.Server, idp.ip = newOutsideServer(t, http.HandlerFunc(idp.introspect))
	return idp
}

func (idp *fakeIdP) introspect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/introspect" {
		http.NotFound(w, r)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != idp.clientID || secret != idp.clientSecret {
		idp.mu.Lock()
		idp.badCreds++
		idp.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="idp"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	idp.mu.Lock()
	idp.calls[tok]++
	answer, known := idp.tokens[tok]
	slow := idp.slow[tok]
	idp.mu.Unlock()
	if slow {
		// Longer than Ward's 1 s budget; ends early when the caller (the
		// killed worker) goes away.
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
	}
	if !known {
		answer = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// add registers a token with its introspection answer.
func (idp *fakeIdP) add(token string, answer map[string]any) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.tokens[token] = answer
}

func (idp *fakeIdP) callsFor(token string) int {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.calls[token]
}

func (idp *fakeIdP) total() int {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	n := 0
	for _, c := range idp.calls {
		n += c
	}
	return n
}

// foreignJWT makes a token shaped like an outside IdP's access token (RS256,
// a key id Ward does not know, a signature Ward cannot check): Ward routes
// it by iss and leaves its validation to the authorizer.
func foreignJWT(iss, name string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "idp-key-1"}) + "." +
		enc(map[string]any{"iss": iss, "sub": name, "jti": fmt.Sprintf("%s-%d", name, time.Now().UnixNano())}) + "." +
		base64.RawURLEncoding.EncodeToString([]byte("not-a-signature-ward-can-check"))
}

// fhirAs sends a FHIR request with a foreign token and the project header,
// and reports the status, the body and how long it took.
func (w *ward) fhirAs(t *testing.T, token, method, path string) (int, string, time.Duration) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"resourceType":"Patient","name":[{"family":"Intruder"}]}`)
	}
	req, err := http.NewRequest(method, w.URL+"/fhir/"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-oystehr-project-id", w.Admin.ProjectID)
	t0 := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b), time.Since(t0)
}

// TestAuthorizerNode runs a real Node.js authorizer zambda (RFC 7662
// introspection against a fake outside IdP, as in the AWS HealthLake sample)
// behind Ward's FHIR API on each backend: accepted, refused, expired, wrong
// audience, slow and crashing decisions, the decision cache, and scopes
// narrowing the role.
func TestAuthorizerNode(t *testing.T) {
	requireNode(t)
	code := zipFiles(t, map[string]string{"index.js": "testdata/authorizer/index.js"}, nil)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testAuthorizerNode(t, b, code) })
	}
}

func testAuthorizerNode(t *testing.T, b storetest.Backend, codeZip string) {
	idp := newFakeIdP(t)
	// The IdP is outside Ward: the authorizer reaches it through the
	// sandbox's egress proxy, which --egress-allow opens to it.
	w := startWardWith(t, b, "--egress-allow", idp.ip+"/32")
	admin := w.token(t, w.Admin)
	fhirBase := w.URL + "/fhir"

	// Data: two patients, each with an Observation.
	_, p1 := w.fhirDo(t, admin, "POST", "Patient", patient("Authorized"))
	_, p2 := w.fhirDo(t, admin, "POST", "Patient", patient("Other"))
	pid1, pid2 := p1["id"].(string), p2["id"].(string)
	obs := func(pid string) string {
		st, o := w.fhirDo(t, admin, "POST", "Observation", map[string]any{"resourceType": "Observation", "status": "final",
			"code": map[string]any{"text": "weight"}, "subject": map[string]any{"reference": "Patient/" + pid}})
		if st != 201 {
			t.Fatalf("create Observation: %d %v", st, o)
		}
		return o["id"].(string)
	}
	obs1, obs2 := obs(pid1), obs(pid2)

	// The role accepted tokens act as: FHIR read and search on every type.
	var role struct {
		ID string `json:"id"`
	}
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"smart-reader","accessPolicy":{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}}`, &role); st != 200 {
		t.Fatalf("create role: %d", st)
	}
	for name, value := range map[string]string{
		"IDP_INTROSPECTION_URL": idp.URL + "/introspect",
		"IDP_CLIENT_ID":         idp.clientID,
		"IDP_CLIENT_SECRET":     idp.clientSecret,
		"AUTHORIZER_ROLE_ID":    role.ID,
	} {
		if st := w.api(t, admin, "POST", "/secret", fmt.Sprintf(`{"name":%q,"value":%q}`, name, value), nil); st != 200 {
			t.Fatalf("set secret %s: %d", name, st)
		}
	}
	zid := w.deployZambda(t, admin, `{"name":"smart-authorizer","runtime":"nodejs20.x","timeoutInSeconds":5}`, codeZip)
	var proj struct {
		AuthorizerZambdaID string   `json:"authorizerZambdaId"`
		AuthorizerIssuers  []string `json:"authorizerIssuers"`
	}
	if st := w.api(t, admin, "PATCH", "/project", fmt.Sprintf(`{"authorizerZambdaId":"smart-authorizer","authorizerIssuers":[%q]}`, idp.URL), &proj); st != 200 {
		t.Fatalf("PATCH /project: %d", st)
	}
	if proj.AuthorizerZambdaID != zid || len(proj.AuthorizerIssuers) != 1 || proj.AuthorizerIssuers[0] != idp.URL {
		t.Fatalf("project settings: %+v (zambda %s)", proj, zid)
	}
	// Start the worker through execute, so that the first decision does not
	// spend its 1 s budget on Node's start (cold starts are measured in
	// bench/, not asserted here).
	warm := func(t *testing.T) {
		t.Helper()
		if st := w.api(t, admin, "POST", "/zambda/"+zid+"/execute", `{}`, nil); st != 200 {
			t.Fatalf("warm the authorizer: %d", st)
		}
	}
	warm(t)

	now := time.Now().Unix()
	claims := func(scope string, extra map[string]any) map[string]any {
		c := map[string]any{"active": true, "iss": idp.URL, "aud": fhirBase, "iat": now, "nbf": now, "exp": now + 600,
			"scope": scope, "sub": "user-1", "client_id": "smart-app"}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	token := func(name string, answer map[string]any) string {
		tok := foreignJWT(idp.URL, name)
		if answer != nil {
			idp.add(tok, answer)
		}
		return tok
	}
	// expect takes the subtest's t: FailNow belongs to the running test.
	expect := func(t *testing.T, what, tok, method, path string, want int, bodyHas string) string {
		t.Helper()
		st, body, _ := w.fhirAs(t, tok, method, path)
		if st != want || !strings.Contains(body, bodyHas) {
			t.Fatalf("%s: %s %s = %d, want %d with %q: %.400s", what, method, path, st, want, bodyHas, body)
		}
		return body
	}

	t.Run("authorized token reads and searches", func(t *testing.T) {
		good := token("good", claims("system/*.rs", nil))
		expect(t, "read", good, "GET", "Patient/"+pid1, 200, pid1)
		if n := idp.callsFor(good); n != 1 {
			t.Fatalf("first request: %d introspections, want 1", n)
		}
		// Cached: the same token again (read, then search: another
		// operation) asks neither the zambda nor the IdP.
		expect(t, "read again", good, "GET", "Patient/"+pid1, 200, pid1)
		expect(t, "search", good, "GET", "Observation?subject=Patient/"+pid1, 200, obs1)
		if n := idp.callsFor(good); n != 1 {
			t.Fatalf("cached token: %d introspections, want still 1", n)
		}
		// The role, not the token's scope, bounds what it may do.
		expect(t, "create beyond the role", good, "POST", "Patient", 403, "OperationOutcome")
		idp.mu.Lock()
		bad := idp.badCreds
		idp.mu.Unlock()
		if bad != 0 {
			t.Fatalf("the zambda sent wrong client credentials %d times", bad)
		}
	})

	refused := []struct {
		name   string
		answer map[string]any
		reason string
	}{
		{"inactive", map[string]any{"active": false}, "not authorized"},
		{"unknown to the IdP", nil, "not authorized"},
		{"expired", claims("system/*.rs", map[string]any{"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}), "expired"},
		{"wrong audience", claims("system/*.rs", map[string]any{"aud": "https://other.example/fhir"}), "aud"},
		{"not yet valid", claims("system/*.rs", map[string]any{"nbf": now + 3600, "exp": now + 7200}), "not valid before"},
		{"no FHIR scope", claims("openid profile", nil), "scope"},
		{"patient scope without a patient", claims("patient/*.rs", nil), "patient"},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			tok := token(strings.ReplaceAll(c.name, " ", "-"), c.answer)
			body := expect(t, c.name, tok, "GET", "Patient/"+pid1, 401, c.reason)
			if !strings.Contains(body, "OperationOutcome") {
				t.Fatalf("401 is not an OperationOutcome: %s", body)
			}
			if n := idp.callsFor(tok); n != 1 {
				t.Fatalf("%d introspections, want 1 (the zambda asked the IdP)", n)
			}
			// Refusals are cached briefly (5 s) too: a client retrying a
			// bad token does not reach the IdP again at once.
			expect(t, c.name+" again", tok, "GET", "Patient/"+pid1, 401, c.reason)
			if n := idp.callsFor(tok); n != 1 {
				t.Fatalf("refusal not cached: %d introspections, want still 1", n)
			}
		})
	}

	t.Run("issuer not listed is refused without calling the zambda", func(t *testing.T) {
		before := idp.total()
		other := foreignJWT("https://elsewhere.example", "stranger")
		expect(t, "other issuer", other, "GET", "Patient/"+pid1, 401, "accepts tokens of")
		expect(t, "opaque token", "opaque-token-not-a-jwt", "GET", "Patient/"+pid1, 401, "OperationOutcome")
		if idp.total() != before {
			t.Fatal("the IdP was asked about a token of an unlisted issuer")
		}
	})

	t.Run("slow IdP is cut at 1 s", func(t *testing.T) {
		slow := token("slow", claims("system/*.rs", nil))
		idp.mu.Lock()
		idp.slow[slow] = true
		idp.mu.Unlock()
		st, body, took := w.fhirAs(t, slow, "GET", "Patient/"+pid1)
		if st != 401 || !strings.Contains(body, "did not answer within") {
			t.Fatalf("slow decision: %d %.300s", st, body)
		}
		if took >= 1800*time.Millisecond {
			t.Fatalf("slow decision took %v, want about 1 s", took)
		}
		if idp.callsFor(slow) != 1 {
			t.Fatal("the zambda did not reach the IdP for the slow token")
		}
		t.Logf("slow decision refused after %v", took)
	})

	for _, mode := range []string{"crash", "throw"} {
		t.Run("zambda "+mode+" fails closed, then works", func(t *testing.T) {
			// The slow case may have cost the worker: start one, so the
			// 1 s budget is not spent on Node's start on a busy machine.
			warm(t)
			bad := token(mode, claims("system/*.rs", map[string]any{"ward_test": mode}))
			// Fails closed: a 401. The function asks the IdP before it
			// fails, so on a busy machine the whole run may pass the 1 s
			// budget and be reported as a timeout: either reason is a
			// refusal, and nothing is cached.
			st, body, _ := w.fhirAs(t, bad, "GET", "Patient/"+pid1)
			if st != 401 || !(strings.Contains(body, "authorizer function failed") || strings.Contains(body, "did not answer within")) {
				t.Fatalf("%s: GET Patient = %d, want 401 naming the failure: %.400s", mode, st, body)
			}
			if strings.Contains(body, "did not answer within") {
				t.Logf("%s: reported as a timeout (the run passed the 1 s budget)", mode)
			}
			// A never-seen token: the next decision needs the zambda again
			// (a new worker after the crash, started here as above).
			warm(t)
			next := token("after-"+mode, claims("system/*.rs", nil))
			expect(t, "after "+mode, next, "GET", "Patient/"+pid1, 200, pid1)
			if idp.callsFor(next) != 1 {
				t.Fatalf("after %s: %d introspections, want 1", mode, idp.callsFor(next))
			}
		})
	}

	t.Run("scopes narrow the role", func(t *testing.T) {
		userPatient := token("user-patient", claims("user/Patient.rs", map[string]any{"fhirUser": "Practitioner/doc-1"}))
		expect(t, "user/Patient.rs reads a Patient", userPatient, "GET", "Patient/"+pid2, 200, pid2)
		expect(t, "user/Patient.rs reads an Observation", userPatient, "GET", "Observation/"+obs1, 403, "scopes do not allow")
		expect(t, "user/Patient.rs searches Observations", userPatient, "GET", "Observation?subject=Patient/"+pid1, 403, "scopes do not allow")

		patientAll := token("patient-all", claims("patient/*.rs", map[string]any{"patient": pid1}))
		expect(t, "patient/*.rs reads its own Observation", patientAll, "GET", "Observation/"+obs1, 200, obs1)
		expect(t, "patient/*.rs reads another patient's Observation", patientAll, "GET", "Observation/"+obs2, 403, "OperationOutcome")
		expect(t, "patient/*.rs reads another Patient", patientAll, "GET", "Patient/"+pid2, 403, "OperationOutcome")
		body := expect(t, "patient/*.rs searches Observations", patientAll, "GET", "Observation", 200, obs1)
		if strings.Contains(body, obs2) {
			t.Fatalf("patient/*.rs search shows another patient's Observation: %.400s", body)
		}
	})

	t.Run("removing the authorizer refuses even cached tokens", func(t *testing.T) {
		good := token("good-then-removed", claims("system/*.rs", nil))
		expect(t, "before removal", good, "GET", "Patient/"+pid1, 200, pid1)
		if st := w.api(t, admin, "PATCH", "/project", `{"authorizerZambdaId":null}`, nil); st != 200 {
			t.Fatalf("remove the authorizer: %d", st)
		}
		expect(t, "after removal", good, "GET", "Patient/"+pid1, 401, "OperationOutcome")
		if n := idp.callsFor(good); n != 1 {
			t.Fatalf("%d introspections, want 1", n)
		}
	})
}
