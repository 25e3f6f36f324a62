package fhir

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// termServers serves, on one store, the admin of project A, the admin of project B and an M2M
// client of A that holds the given policy.
func termServers(t *testing.T, b storetest.Backend, policy string) (a, other, limited *httptest.Server) {
	t.Helper()
	f := newFixture(t, b, Config{})
	ctx := context.Background()
	creds, err := f.authz.CreateProject(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	oc, err := f.svc.store.GetM2MByClientID(ctx, creds.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	name := "limited"
	m, err := f.authz.CreateM2M(ctx, f.admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(policy)})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(f.svc, "http://ward.test/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))
	serve := func(p auth.Principal) *httptest.Server {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeFHIR(w, r, p) }))
		t.Cleanup(ts.Close)
		return ts
	}
	return serve(f.admin), serve(auth.Principal{ProjectID: creds.ProjectID, Kind: auth.KindM2M, ID: oc.ID}),
		serve(auth.Principal{ProjectID: f.admin.ProjectID, Kind: auth.KindM2M, ID: m.ID})
}

// param returns the first parameter named name of a Parameters answer, as JSON text.
func param(out map[string]any, name string) string {
	ps, _ := out["parameter"].([]any)
	for _, p := range ps {
		if m, _ := p.(map[string]any); m["name"] == name {
			delete(m, "name")
			return mustJSON(m)
		}
	}
	return ""
}

func expansionCodes(out map[string]any) string {
	exp, _ := out["expansion"].(map[string]any)
	cs, _ := exp["contains"].([]any)
	var got []string
	for _, c := range cs {
		got = append(got, c.(map[string]any)["code"].(string))
	}
	return strings.Join(got, ",")
}

const (
	// A project CodeSystem with a hierarchy, and a ValueSet over part of it.
	projectCS = `{"resourceType":"CodeSystem","url":"http://example.org/cs/colors","status":"active","content":"complete",
		"concept":[{"code":"warm","display":"Warm colour","concept":[{"code":"red","display":"Red"},{"code":"orange","display":"Orange"}]},
		{"code":"cool","display":"Cool colour","concept":[{"code":"blue","display":"Blue","concept":[{"code":"navy","display":"Navy blue"}]}]}]}`
	projectVS = `{"resourceType":"ValueSet","url":"http://example.org/vs/cool","status":"active","compose":{"include":[{"system":"http://example.org/cs/colors","filter":[{"property":"concept","op":"is-a","value":"cool"}]}]}}`
	// The project's own administrative-gender: same url as core's, its own codes.
	projectGender = `{"resourceType":"ValueSet","url":"http://hl7.org/fhir/ValueSet/administrative-gender","status":"active","compose":{"include":[{"system":"http://hl7.org/fhir/administrative-gender","concept":[{"code":"female"}]}]}}`
)

func TestTerminologyOperations(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ts, other, limited := termServers(t, b, `{"rule":[{"resource":"FHIR:ValueSet:*","action":["FHIR:Search"],"effect":"Allow"}]}`)
			for _, r := range []string{projectCS, projectVS} {
				if res, out := call(t, ts, "POST", "/fhir/"+strings.Split(r, `"`)[3], r); res.StatusCode != 201 {
					t.Fatalf("%d %v", res.StatusCode, out)
				}
			}
			_, vsOut := call(t, ts, "GET", "/fhir/ValueSet?url=http://example.org/vs/cool", "")
			vsID := vsOut["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)["id"].(string)
			type tc struct {
				name, method, path, body string
				status                   int
				check                    func(out map[string]any) string // "" when fine
			}
			codesAre := func(want string, total float64) func(map[string]any) string {
				return func(out map[string]any) string {
					got := expansionCodes(out)
					tot, _ := out["expansion"].(map[string]any)["total"].(float64)
					if got != want || tot != total {
						return "codes " + got + ", total " + mustJSON(tot) + "; want " + want + ", " + mustJSON(total)
					}
					return ""
				}
			}
			has := func(name, want string) func(map[string]any) string {
				return func(out map[string]any) string {
					if got := param(out, name); !strings.Contains(got, want) {
						return name + " = " + got + ", want " + want
					}
					return ""
				}
			}
			for _, c := range []tc{
				// $expand: core, by url, with paging and filter; GET and POST.
				{"core expand", "GET", "/fhir/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender", "", 200, codesAre("male,female,other,unknown", 4)},
				{"core page", "GET", "/fhir/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender&offset=1&count=2", "", 200, codesAre("female,other", 4)},
				{"core filter", "GET", "/fhir/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/observation-status&filter=amend", "", 200, codesAre("amended", 1)},
				{"post filter page", "POST", "/fhir/ValueSet/$expand", `{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"http://hl7.org/fhir/ValueSet/observation-status"},{"name":"filter","valueString":"c"},{"name":"count","valueInteger":1},{"name":"offset","valueInteger":1}]}`, 200, codesAre("cancelled", 2)},
				{"v3 is-a", "GET", "/fhir/ValueSet/$expand?url=http://terminology.hl7.org/ValueSet/v3-ActEncounterCode&filter=ambulatory", "", 200, codesAre("AMB", 1)},
				// the project's own content: filter is-a over its CodeSystem; by url and by id.
				{"project expand", "GET", "/fhir/ValueSet/$expand?url=http://example.org/vs/cool", "", 200, codesAre("cool,blue,navy", 3)},
				{"instance expand", "GET", "/fhir/ValueSet/" + vsID + "/$expand?filter=navy", "", 200, codesAre("navy", 1)},
				{"inline expand", "POST", "/fhir/ValueSet/$expand", `{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet","status":"active","compose":{"include":[{"system":"http://example.org/cs/colors","filter":[{"property":"concept","op":"descendent-of","value":"warm"}]}]}}}]}`, 200, codesAre("red,orange", 2)},
				// $lookup
				{"core lookup", "GET", "/fhir/CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender&code=female", "", 200, has("display", "Female")},
				{"project lookup", "GET", "/fhir/CodeSystem/$lookup?system=http://example.org/cs/colors&code=blue", "", 200, func(out map[string]any) string {
					if s := mustJSON(out); !strings.Contains(s, `"Blue"`) || !strings.Contains(s, `"valueCode":"cool"`) || !strings.Contains(s, `"valueCode":"navy"`) {
						return s
					}
					return ""
				}},
				{"lookup coding", "POST", "/fhir/CodeSystem/$lookup", `{"resourceType":"Parameters","parameter":[{"name":"coding","valueCoding":{"system":"http://example.org/cs/colors","code":"navy"}}]}`, 200, has("display", "Navy blue")},
				{"lookup unknown code", "GET", "/fhir/CodeSystem/$lookup?system=http://example.org/cs/colors&code=green", "", 404, nil},
				{"lookup unknown system", "GET", "/fhir/CodeSystem/$lookup?system=http://example.org/none&code=x", "", 404, nil},
				// $validate-code, both kinds
				{"vs validate yes", "GET", "/fhir/ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/observation-status&system=http://hl7.org/fhir/observation-status&code=final", "", 200, has("result", "true")},
				{"vs validate no", "GET", "/fhir/ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/observation-status&code=bogus", "", 200, has("result", "false")},
				{"vs validate project", "GET", "/fhir/ValueSet/$validate-code?url=http://example.org/vs/cool&system=http://example.org/cs/colors&code=red", "", 200, has("result", "false")},
				{"vs validate display", "POST", "/fhir/ValueSet/$validate-code", `{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"http://example.org/vs/cool"},{"name":"coding","valueCoding":{"system":"http://example.org/cs/colors","code":"navy","display":"Dark"}}]}`, 200, has("result", "false")},
				{"cs validate yes", "GET", "/fhir/CodeSystem/$validate-code?url=http://example.org/cs/colors&code=orange", "", 200, has("result", "true")},
				{"cs validate no", "GET", "/fhir/CodeSystem/$validate-code?url=http://hl7.org/fhir/administrative-gender&code=bogus", "", 200, has("result", "false")},
				// $subsumes
				{"subsumes", "GET", "/fhir/CodeSystem/$subsumes?system=http://example.org/cs/colors&codeA=cool&codeB=navy", "", 200, has("outcome", "subsumes")},
				{"subsumed-by", "GET", "/fhir/CodeSystem/$subsumes?system=http://example.org/cs/colors&codeA=navy&codeB=blue", "", 200, has("outcome", "subsumed-by")},
				{"equivalent", "GET", "/fhir/CodeSystem/$subsumes?system=http://example.org/cs/colors&codeA=red&codeB=red", "", 200, has("outcome", `"equivalent"`)},
				{"not-subsumed", "GET", "/fhir/CodeSystem/$subsumes?system=http://example.org/cs/colors&codeA=red&codeB=navy", "", 200, has("outcome", "not-subsumed")},
				{"core subsumes", "GET", "/fhir/CodeSystem/$subsumes?system=http://terminology.hl7.org/CodeSystem/v3-ActCode&codeA=_ActEncounterCode&codeB=AMB", "", 200, has("outcome", `"subsumes"`)},
				// hostile and wrong input
				{"no value set", "GET", "/fhir/ValueSet/$expand", "", 400, nil},
				{"unknown value set", "GET", "/fhir/ValueSet/$expand?url=http://example.org/none", "", 404, nil},
				{"negative count", "GET", "/fhir/ValueSet/$expand?url=http://example.org/vs/cool&count=-1", "", 400, nil},
				{"count too large", "GET", "/fhir/ValueSet/$expand?url=http://example.org/vs/cool&count=10001", "", 400, nil},
				{"default page", "GET", "/fhir/ValueSet/$expand?url=http://terminology.hl7.org/ValueSet/v3-ActCode", "", 200, func(out map[string]any) string {
					exp := out["expansion"].(map[string]any)
					if n := len(exp["contains"].([]any)); n != 1000 || exp["total"].(float64) <= 1000 {
						return "contains " + mustJSON(n) + ", total " + mustJSON(exp["total"])
					}
					return ""
				}},
				{"twice", "GET", "/fhir/ValueSet/$expand?url=http://example.org/vs/cool&url=http://example.org/vs/cool", "", 400, nil},
				{"not parameters", "POST", "/fhir/ValueSet/$expand", `{"resourceType":"Patient"}`, 400, nil},
				{"bad json", "POST", "/fhir/ValueSet/$expand", `{"resourceType":`, 400, nil},
				{"parameter without value", "POST", "/fhir/ValueSet/$expand", `{"resourceType":"Parameters","parameter":[{"name":"url"}]}`, 400, nil},
				{"external system", "GET", "/fhir/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/mimetypes", "", 422, nil},
				{"cycle", "POST", "/fhir/ValueSet/$expand", `{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet","url":"http://example.org/vs/self","compose":{"include":[{"valueSet":["http://example.org/vs/self"]}]}}}]}`, 400, nil},
				{"bad regex", "POST", "/fhir/ValueSet/$expand", `{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":{"resourceType":"ValueSet","compose":{"include":[{"system":"http://example.org/cs/colors","filter":[{"property":"code","op":"regex","value":"(("}]}]}}}]}`, 400, nil},
				{"unknown op", "GET", "/fhir/ValueSet/$translate", "", 501, nil},
			} {
				res, out := call(t, ts, c.method, c.path, c.body)
				if res.StatusCode != c.status {
					t.Errorf("%s: %d, want %d: %v", c.name, res.StatusCode, c.status, out)
					continue
				}
				if c.check != nil {
					if msg := c.check(out); msg != "" {
						t.Errorf("%s: %s", c.name, msg)
					}
				}
			}

			// A project's ValueSet with a core url wins for that project only.
			if res, out := call(t, ts, "POST", "/fhir/ValueSet", projectGender); res.StatusCode != 201 {
				t.Fatalf("%d %v", res.StatusCode, out)
			}
			if _, out := call(t, ts, "GET", "/fhir/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender", ""); expansionCodes(out) != "female" {
				t.Errorf("the project's own value set does not win: %v", out)
			}
			// Another project sees core's, and none of A's resources.
			if _, out := call(t, other, "GET", "/fhir/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender", ""); expansionCodes(out) != "male,female,other,unknown" {
				t.Errorf("project B sees A's value set: %v", out)
			}
			for _, path := range []string{
				"/fhir/ValueSet/$expand?url=http://example.org/vs/cool",
				"/fhir/CodeSystem/$lookup?system=http://example.org/cs/colors&code=blue",
				"/fhir/ValueSet/" + vsID + "/$expand",
			} {
				if res, out := call(t, other, "GET", path, ""); res.StatusCode != 404 {
					t.Errorf("project B: %s: %d %v", path, res.StatusCode, out)
				}
			}
			// Policy: FHIR:Search on ValueSet allows ValueSet's type-level operations, nothing on
			// CodeSystem, and not FHIR:Read on an instance.
			for path, want := range map[string]int{
				"/fhir/ValueSet/$expand?url=http://example.org/vs/cool":                          200,
				"/fhir/CodeSystem/$lookup?system=http://example.org/cs/colors&code=blue":         403,
				"/fhir/CodeSystem/$subsumes?system=http://example.org/cs/colors&codeA=a&codeB=b": 403,
				"/fhir/ValueSet/" + vsID + "/$expand":                                            403,
			} {
				if res, out := call(t, limited, "GET", path, ""); res.StatusCode != want {
					t.Errorf("limited: %s: %d, want %d: %v", path, res.StatusCode, want, out)
				}
			}
		})
	}
}

// $validate reports a required binding's violation as an error and an extensible or preferred
// one's as a warning; the write path refuses only the first.
func TestValidateReportsBindings(t *testing.T) {
	ts := restFixture(t, Config{})
	body := `{"resourceType":"Observation","status":"bogus","code":{"text":"x"},"category":[{"coding":[{"system":"http://example.org/cat","code":"misc"}]}]}`
	res, out := call(t, ts, "POST", "/fhir/Observation/$validate", body)
	s := mustJSON(out)
	if res.StatusCode != 200 || strings.Count(s, `"code":"code-invalid"`) != 2 || !strings.Contains(s, `"severity":"error"`) || !strings.Contains(s, `"severity":"warning"`) ||
		!strings.Contains(s, "Observation.status") || !strings.Contains(s, "observation-category") {
		t.Errorf("$validate: %d %s", res.StatusCode, s)
	}
	if res, out := call(t, ts, "POST", "/fhir/Observation", strings.Replace(body, "bogus", "final", 1)); res.StatusCode != 201 {
		t.Errorf("a preferred binding's miss refused a write: %d %v", res.StatusCode, out)
	}
	if res, out := call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","gender":"bogus"}`); res.StatusCode != 400 || !strings.Contains(mustJSON(out), "administrative-gender") {
		t.Errorf("Patient.gender bogus: %d %v", res.StatusCode, out)
	}
}

// The capability statement lists the terminology operations.
func TestCapabilityListsTerminologyOperations(t *testing.T) {
	ts := restFixture(t, Config{})
	_, out := call(t, ts, "GET", "/fhir/metadata", "")
	s := mustJSON(out)
	for _, op := range []string{"ValueSet-expand", "ValueSet-validate-code", "CodeSystem-lookup", "CodeSystem-validate-code", "CodeSystem-subsumes"} {
		if !strings.Contains(s, "OperationDefinition/"+op) {
			t.Errorf("metadata lacks %s", op)
		}
	}
}
