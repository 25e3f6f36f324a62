package fhir

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/r4pkg"
	"github.com/wardhealth/ward/internal/fhir/schema"
	"github.com/wardhealth/ward/internal/fhir/terminology"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// bindingCase is one required binding of an R4 resource element, with a resource carrying a
// code outside its value set and one carrying a code from it.
type bindingCase struct {
	path, typ, top string         // "Patient.contact.gender", "Patient", "contact"
	bad, good      map[string]any // whole resources
}

// requiredBindingCases builds a case for every required binding on a resource element whose
// value set can be expanded here; skipped lists the others with the reason.
func requiredBindingCases(t *testing.T) (cases []bindingCase, skipped []string) {
	t.Helper()
	core := terminology.R4()
	paths := make([]string, 0)
	for p, b := range core.Bindings() {
		if b.Strength == "required" {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, path := range paths {
		typ, rest, _ := strings.Cut(path, ".")
		if !schema.IsResourceType(typ) {
			continue // a datatype's: TestDatatypeBindingsOnWrite
		}
		b, _ := core.Binding(path)
		members, err := core.Members(b.ValueSet)
		if err != nil || len(members) == 0 {
			skipped = append(skipped, fmt.Sprintf("%s (%s): %v", path, b.ValueSet, err))
			continue
		}
		bogus := terminology.Coding{System: "http://example.org/bogus", Code: "bogus-code"}
		bad, top, ok1 := nestAt(typ, rest, bogus)
		good, _, ok2 := nestAt(typ, rest, members[0])
		if !ok1 || !ok2 {
			skipped = append(skipped, path+": cannot build a resource for it")
			continue
		}
		cases = append(cases, bindingCase{path: path, typ: typ, top: top, bad: bad, good: good})
	}
	return cases, skipped
}

// nestAt builds {"resourceType": typ} with a coded value at the dotted path below it, arrays
// where the element repeats, and the value as the element's coded type (code, Coding or
// CodeableConcept); top is the JSON name of the first step.
func nestAt(typ, path string, c terminology.Coding) (map[string]any, string, bool) {
	root := map[string]any{"resourceType": typ}
	cur := root
	parts := strings.Split(path, ".")
	var top string
	for i, part := range parts {
		prefix := strings.Join(parts[:i+1], ".")
		types, ok := schema.ElementTypes(typ, prefix)
		rep, ok2 := schema.Repeats(typ, prefix)
		if !ok || !ok2 {
			return nil, "", false
		}
		name := part
		var v any
		if i < len(parts)-1 {
			next := map[string]any{}
			if rep {
				cur[name] = []any{next}
			} else {
				cur[name] = next
			}
			if i == 0 {
				top = name
			}
			cur = next
			continue
		}
		coded := ""
		for _, t := range types {
			if t == "code" || t == "Coding" || t == "CodeableConcept" {
				coded = t
			}
		}
		if coded == "" {
			return nil, "", false
		}
		if len(types) > 1 {
			name += strings.ToUpper(coded[:1]) + coded[1:]
		}
		switch coded {
		case "code":
			v = c.Code
		case "Coding":
			v = map[string]any{"system": c.System, "code": c.Code}
		default:
			v = map[string]any{"coding": []any{map[string]any{"system": c.System, "code": c.Code}}}
		}
		if rep {
			v = []any{v}
		}
		cur[name] = v
		if i == 0 {
			top = name
		}
	}
	return root, top, true
}

func bindingServer(t testing.TB, b storetest.Backend) *httptest.Server {
	f := newFixture(t, b, Config{})
	p := f.admin
	h := NewHandler(f.svc, "http://ward.test/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeFHIR(w, r, p) }))
	t.Cleanup(ts.Close)
	return ts
}

func rawCall(t testing.TB, ts *httptest.Server, method, path, ctype string, body any) (int, string) {
	t.Helper()
	var text string
	switch b := body.(type) {
	case string:
		text = b
	default:
		text = mustJSON(b)
	}
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(text))
	req.Header.Set("Content-Type", ctype)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// TestRequiredBindingsOnEveryWrite: a code outside a required binding's value set is refused
// on create, update, patch, in a batch entry and in a transaction, with an OperationOutcome
// naming the code and the value set, for every required binding of an R4 resource element
// whose value set Ward can expand; a code from the value set raises no such issue.
func TestRequiredBindingsOnEveryWrite(t *testing.T) {
	cases, skipped := requiredBindingCases(t)
	if len(cases) < 250 {
		t.Fatalf("only %d required bindings to test (skipped %d: %v)", len(cases), len(skipped), skipped)
	}
	t.Logf("%d required bindings tested; %d skipped (value set not expandable here): %s", len(cases), len(skipped), strings.Join(skipped, "; "))
	refused := func(t *testing.T, what string, c bindingCase, status int, body string) {
		t.Helper()
		if status < 400 || status >= 500 || !strings.Contains(body, `"code-invalid"`) || !strings.Contains(body, "bogus-code") {
			t.Errorf("%s %s: %d %s", what, c.path, status, body)
		}
	}
	examples := exampleResources(t)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ts := bindingServer(t, b)
			var batch []any
			patched := 0
			for i, c := range cases {
				st, body := rawCall(t, ts, "POST", "/"+c.typ, "application/fhir+json", c.bad)
				refused(t, "create", c, st, body)
				st, body = rawCall(t, ts, "PUT", fmt.Sprintf("/%s/bind-%d", c.typ, i), "application/fhir+json", withID(c.bad, fmt.Sprintf("bind-%d", i)))
				refused(t, "update", c, st, body)
				st, body = rawCall(t, ts, "POST", "/", "application/fhir+json", map[string]any{"resourceType": "Bundle", "type": "transaction",
					"entry": []any{map[string]any{"resource": c.bad, "request": map[string]any{"method": "POST", "url": c.typ}}}})
				refused(t, "transaction", c, st, body)
				batch = append(batch, map[string]any{"resource": c.bad, "request": map[string]any{"method": "POST", "url": c.typ}})
				if _, body := rawCall(t, ts, "POST", "/"+c.typ, "application/fhir+json", c.good); strings.Contains(body, `"code-invalid"`) {
					t.Errorf("good code at %s: %s", c.path, body)
				}
				// Patch: on a stored resource of the type, bare or, where the type needs more,
				// an official example (when WARD_FHIR_EXAMPLES names the package).
				st, body = rawCall(t, ts, "POST", "/"+c.typ, "application/fhir+json", map[string]any{"resourceType": c.typ})
				if st != http.StatusCreated {
					ex, ok := examples[c.typ]
					if !ok {
						continue
					}
					if st, body = rawCall(t, ts, "POST", "/"+c.typ, "application/fhir+json", ex); st != http.StatusCreated {
						continue
					}
				}
				var created struct{ ID string }
				_ = json.Unmarshal([]byte(body), &created)
				st, body = rawCall(t, ts, "PATCH", "/"+c.typ+"/"+created.ID, "application/json-patch+json",
					[]any{map[string]any{"op": "add", "path": "/" + c.top, "value": c.bad[c.top]}})
				refused(t, "patch", c, st, body)
				patched++
			}
			st, body := rawCall(t, ts, "POST", "/", "application/fhir+json", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": batch})
			var resp struct {
				Entry []struct {
					Response struct {
						Status  string          `json:"status"`
						Outcome json.RawMessage `json:"outcome"`
					} `json:"response"`
				} `json:"entry"`
			}
			if err := json.Unmarshal([]byte(body), &resp); err != nil || st != http.StatusOK || len(resp.Entry) != len(cases) {
				t.Fatalf("batch: %d %.500s", st, body)
			}
			for i, e := range resp.Entry {
				refused(t, "batch entry", cases[i], atoiPrefix(e.Response.Status), string(e.Response.Outcome))
			}
			// Patch runs the same validation as every write; it is tried on each type
			// whose bare resource is valid (most need more, such as a status) or, with the
			// examples package, on an official example.
			want := 30
			if len(examples) > 0 {
				want = 300
			}
			if patched < want {
				t.Errorf("only %d bindings tested by patch", patched)
			}
			t.Logf("%d bindings also tested by patch", patched)
		})
	}
}

func withID(m map[string]any, id string) map[string]any {
	out := map[string]any{"id": id}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func atoiPrefix(s string) int {
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			break
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// TestDatatypeBindingsOnWrite: bindings of datatype elements (HumanName.use, ContactPoint.system,
// Address.use, Identifier.use, Narrative.status) apply wherever the datatype appears.
func TestDatatypeBindingsOnWrite(t *testing.T) {
	ts := bindingServer(t, storetest.Backends()[0])
	for _, tc := range []struct{ body, vs string }{
		{`{"resourceType":"Patient","name":[{"use":"bogus-code"}]}`, "name-use"},
		{`{"resourceType":"Patient","telecom":[{"system":"bogus-code","value":"1"}]}`, "contact-point-system"},
		{`{"resourceType":"Practitioner","address":[{"use":"bogus-code"}]}`, "address-use"},
		{`{"resourceType":"Organization","identifier":[{"use":"bogus-code"}]}`, "identifier-use"},
		{`{"resourceType":"Patient","text":{"status":"bogus-code","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}`, "narrative-status"},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1,"comparator":"bogus-code"}}`, "quantity-comparator"},
	} {
		st, body := rawCall(t, ts, "POST", "/"+strings.Split(tc.body, `"`)[3], "application/fhir+json", tc.body)
		if st != 400 || !strings.Contains(body, "bogus-code") || !strings.Contains(body, "ValueSet/"+tc.vs) {
			t.Errorf("%s: %d %s", tc.body, st, body)
		}
		good := strings.Replace(tc.body, "bogus-code", map[string]string{"name-use": "official", "contact-point-system": "phone", "address-use": "home", "identifier-use": "usual", "narrative-status": "generated", "quantity-comparator": "<"}[tc.vs], 1)
		if st, body := rawCall(t, ts, "POST", "/"+strings.Split(tc.body, `"`)[3], "application/fhir+json", good); st != 201 {
			t.Errorf("%s: %d %s", good, st, body)
		}
	}
}

// exampleResources returns, by type, one official R4 example that Ward accepts as it is, when
// WARD_FHIR_EXAMPLES names the package; none without it.
func exampleResources(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	dir := os.Getenv(r4pkg.Env)
	if dir == "" {
		return out
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*-*.json"))
	for _, f := range files {
		typ, _, _ := strings.Cut(filepath.Base(f), "-")
		if _, done := out[typ]; done || !schema.IsResourceType(typ) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil || m["resourceType"] != typ {
			continue
		}
		delete(m, "id")
		delete(m, "meta")
		out[typ] = mustJSON(m)
	}
	return out
}
