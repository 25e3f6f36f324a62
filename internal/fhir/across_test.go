package fhir

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestCompartmentTables: every parameter the generated compartment tables
// name is a search parameter of its type that takes a reference to the
// compartment's resource (or _id), and the five R4 compartments are there.
func TestCompartmentTables(t *testing.T) {
	var comps []string
	for comp := range r4Compartments {
		comps = append(comps, comp)
	}
	slices.Sort(comps)
	if want := []string{"Device", "Encounter", "Patient", "Practitioner", "RelatedPerson"}; !slices.Equal(comps, want) {
		t.Fatalf("compartments %v, want %v", comps, want)
	}
	for comp, members := range r4Compartments {
		if len(members) < 10 {
			t.Errorf("%s has only %d member types", comp, len(members))
		}
		for typ := range members {
			if !search.IsResourceType(typ) {
				t.Errorf("%s: member %s is not a resource type", comp, typ)
			}
			for _, v := range r4Compartments.queries(comp, typ, "x1") {
				if _, err := search.ParseQuery(typ, v, false); err != nil {
					t.Errorf("%s compartment, %s?%s: %v", comp, typ, v.Encode(), err)
				}
			}
		}
	}
	if got := r4Compartments.queries("Patient", "Patient", "1"); len(got) != 2 || got[0].Get("_id") != "1" {
		t.Errorf("a patient is in its own compartment: %v", got)
	}
	if got := r4Compartments.queries("Encounter", "Encounter", "e"); len(got) != 1 || got[0].Get("_id") != "e" {
		t.Errorf("{def} is _id: %v", got)
	}
	if got := r4Compartments.queries("Patient", "Medication", "1"); got != nil {
		t.Errorf("Medication is in no one's compartment: %v", got)
	}
}

// acrossServer serves the FHIR handler on backend b for the principal a
// request names in its X-As header (a key of the map the setup returns).
func acrossServer(t *testing.T, b storetest.Backend) (*httptest.Server, map[string]auth.Principal) {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, b, Config{})
	put := func(body string) {
		var m map[string]any
		_ = json.Unmarshal([]byte(body), &m)
		if _, _, err := f.svc.Update(ctx, f.admin, m["resourceType"].(string), m["id"].(string), []byte(body), ""); err != nil {
			t.Fatal(err)
		}
	}
	put(`{"resourceType":"Practitioner","id":"dr1","name":[{"family":"Who"}]}`)
	put(`{"resourceType":"Medication","id":"med1","code":{"text":"aspirin"}}`)
	for _, id := range []string{"p1", "p2"} {
		put(`{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Test"}],"generalPractitioner":[{"reference":"Practitioner/dr1"}]}`)
		put(`{"resourceType":"Encounter","id":"e-` + id + `","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/` + id + `"},"participant":[{"individual":{"reference":"Practitioner/dr1"}}]}`)
		for _, code := range []string{"a", "b"} {
			put(`{"resourceType":"Observation","id":"o-` + id + `-` + code + `","status":"final","code":{"coding":[{"system":"urn:c","code":"` + code + `"}]},"subject":{"reference":"Patient/` + id + `"},"encounter":{"reference":"Encounter/e-` + id + `"}}`)
		}
		put(`{"resourceType":"Condition","id":"c-` + id + `","subject":{"reference":"Patient/` + id + `"},"code":{"text":"x"}}`)
	}
	principals := map[string]auth.Principal{"admin": f.admin}
	for name, policy := range map[string]string{
		"patients-obs": `{"rule":[{"resource":["FHIR:Patient","FHIR:Observation"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}`,
		"code-a":       `{"rule":[{"resource":["FHIR:Patient","FHIR:Encounter"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"},{"resource":"FHIR:Observation:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow","condition":"Observation?code=a"}]}`,
		"deny-o-p1-a":  `{"rule":[{"resource":"FHIR:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"},{"resource":"FHIR:Observation:o-p1-a","action":["FHIR:Read"],"effect":"Deny"}]}`,
	} {
		m, err := f.authz.CreateM2M(ctx, f.admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(policy)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		principals[name] = auth.Principal{ProjectID: f.admin.ProjectID, Kind: auth.KindM2M, ID: m.ID}
	}
	h := NewHandler(f.svc, "http://ward.test/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeFHIR(w, r, principals[r.Header.Get("X-As")])
	}))
	t.Cleanup(ts.Close)
	return ts, principals
}

// TestCompartmentAndSystemSearch: GET [base]/[Compartment]/[id]/[type],
// .../*, GET [base]?_type= and POST [base]/_search, as the admin and as
// principals whose policies narrow them (types, conditions, Denies), on
// every backend; and the same through batch entries.
func TestCompartmentAndSystemSearch(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ts, _ := acrossServer(t, b)
			type tc struct {
				as, method, path, body string
				status                 int
				want                   []string // Type/id of the matches, sorted; nil with a status >= 400
				total                  int
			}
			cases := []tc{
				{"admin", "GET", "/fhir/Patient/p1/Observation", "", 200, []string{"Observation/o-p1-a", "Observation/o-p1-b"}, 2},
				{"admin", "GET", "/fhir/Patient/p1/Observation?code=a", "", 200, []string{"Observation/o-p1-a"}, 1},
				{"admin", "POST", "/fhir/Patient/p1/Observation/_search", "code=b", 200, []string{"Observation/o-p1-b"}, 1},
				{"admin", "GET", "/fhir/Patient/p2/Condition", "", 200, []string{"Condition/c-p2"}, 1},
				{"admin", "GET", "/fhir/Patient/p1/Patient", "", 200, []string{"Patient/p1"}, 1},
				{"admin", "GET", "/fhir/Patient/nobody/Observation", "", 200, nil, 0},
				{"admin", "GET", "/fhir/Patient/p1/Medication", "", 400, nil, 0},
				{"admin", "GET", "/fhir/Observation/o-p1-a/Observation", "", 404, nil, 0},
				{"admin", "GET", "/fhir/Patient/p1/Nope", "", 404, nil, 0},
				{"admin", "GET", "/fhir/Patient/p1/Observation?bogus=1", "", 400, nil, 0},
				{"admin", "GET", "/fhir/Encounter/e-p1/Observation", "", 200, []string{"Observation/o-p1-a", "Observation/o-p1-b"}, 2},
				{"admin", "GET", "/fhir/Encounter/e-p1/*", "", 200, []string{"Encounter/e-p1", "Observation/o-p1-a", "Observation/o-p1-b"}, 3},
				{"admin", "GET", "/fhir/Practitioner/dr1/Patient", "", 200, []string{"Patient/p1", "Patient/p2"}, 2},
				{"admin", "GET", "/fhir/Practitioner/dr1/Encounter", "", 200, []string{"Encounter/e-p1", "Encounter/e-p2"}, 2},
				{"admin", "GET", "/fhir/Patient/p1/*", "", 200, []string{"Condition/c-p1", "Encounter/e-p1", "Observation/o-p1-a", "Observation/o-p1-b", "Patient/p1"}, 5},
				{"admin", "GET", "/fhir/Patient/p1/*?_type=Observation,Condition", "", 200, []string{"Condition/c-p1", "Observation/o-p1-a", "Observation/o-p1-b"}, 3},
				{"admin", "GET", "/fhir/Patient/p1/*?_type=Medication", "", 400, nil, 0},
				{"admin", "GET", "/fhir/Patient/p1/*?code=a", "", 200, []string{"Observation/o-p1-a"}, 1},
				{"admin", "GET", "/fhir/Patient/p1/*?_count=3&_offset=2", "", 200, []string{"Encounter/e-p1", "Observation/o-p1-a", "Observation/o-p1-b"}, 5},
				{"admin", "GET", "/fhir/Patient/p1/*?_count=2&_offset=0", "", 200, []string{"Condition/c-p1", "Patient/p1"}, 5},
				{"admin", "GET", "/fhir/Patient/p1/*?_sort=_id", "", 400, nil, 0},
				{"admin", "GET", "/fhir?_type=Patient,Practitioner", "", 200, []string{"Patient/p1", "Patient/p2", "Practitioner/dr1"}, 3},
				{"admin", "GET", "/fhir?_type=Patient&_type=Medication&_id=p1,med1", "", 200, []string{"Medication/med1", "Patient/p1"}, 2},
				{"admin", "GET", "/fhir?_id=p2,med1,dr1", "", 200, []string{"Medication/med1", "Patient/p2", "Practitioner/dr1"}, 3},
				{"admin", "GET", "/fhir?_type=Patient,Medication&family=test", "", 400, nil, 0},
				{"admin", "GET", "/fhir?family=test", "", 200, []string{"Patient/p1", "Patient/p2"}, 2}, // types without family are left out
				{"admin", "GET", "/fhir?_type=Nope", "", 400, nil, 0},
				{"admin", "GET", "/fhir?_type=Observation&code=a&_count=1", "", 200, []string{"Observation/o-p1-a"}, 2},
				{"admin", "POST", "/fhir/_search", "_type=Condition", 200, []string{"Condition/c-p1", "Condition/c-p2"}, 2},
				{"admin", "GET", "/fhir?_type=Condition&_summary=count", "", 200, nil, 2},
				// Policies: types the caller may not search are left out when
				// implied and refused when named; conditions and Denies apply.
				{"patients-obs", "GET", "/fhir", "", 200, []string{"Observation/o-p1-a", "Observation/o-p1-b", "Observation/o-p2-a", "Observation/o-p2-b", "Patient/p1", "Patient/p2"}, 6}, // bare GET [base]: every type the caller may search
				{"patients-obs", "GET", "/fhir/Patient/p1/*", "", 200, []string{"Observation/o-p1-a", "Observation/o-p1-b", "Patient/p1"}, 3},
				{"patients-obs", "GET", "/fhir/Patient/p1/Condition", "", 403, nil, 0},
				{"patients-obs", "GET", "/fhir/Patient/p1/*?_type=Condition", "", 403, nil, 0},
				{"patients-obs", "GET", "/fhir?_id=p1,c-p1,o-p1-a", "", 200, []string{"Observation/o-p1-a", "Patient/p1"}, 2},
				{"patients-obs", "GET", "/fhir?_type=Condition", "", 403, nil, 0},
				{"code-a", "GET", "/fhir/Patient/p1/Observation", "", 200, []string{"Observation/o-p1-a"}, 1},
				{"code-a", "GET", "/fhir/Patient/p2/*?_type=Observation", "", 200, []string{"Observation/o-p2-a"}, 1},
				{"code-a", "GET", "/fhir?_type=Observation", "", 200, []string{"Observation/o-p1-a", "Observation/o-p2-a"}, 2},
				{"code-a", "GET", "/fhir/Patient/p1/*", "", 200, []string{"Encounter/e-p1", "Observation/o-p1-a", "Patient/p1"}, 3},
				{"deny-o-p1-a", "GET", "/fhir/Patient/p1/Observation", "", 200, []string{"Observation/o-p1-b"}, 1},
				{"deny-o-p1-a", "GET", "/fhir?_type=Observation&code=a", "", 200, []string{"Observation/o-p2-a"}, 1},
			}
			for _, c := range cases {
				t.Run(c.as+" "+c.method+" "+c.path+" "+c.body, func(t *testing.T) {
					req, _ := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
					req.Header.Set("X-As", c.as)
					if c.method == "POST" {
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer res.Body.Close()
					var out struct {
						ResourceType string
						Total        int
						Link         []struct{ Relation, URL string }
						Entry        []struct {
							Resource struct{ ResourceType, ID string }
							Search   struct{ Mode string }
						}
					}
					raw, _ := io.ReadAll(res.Body)
					_ = json.Unmarshal(raw, &out)
					if res.StatusCode != c.status {
						t.Fatalf("status %d, want %d: %s", res.StatusCode, c.status, raw)
					}
					if c.status >= 400 {
						if out.ResourceType != "OperationOutcome" {
							t.Fatalf("not an OperationOutcome: %s", raw)
						}
						return
					}
					var got []string
					for _, e := range out.Entry {
						if e.Search.Mode == "match" {
							got = append(got, e.Resource.ResourceType+"/"+e.Resource.ID)
						}
					}
					slices.Sort(got)
					if !slices.Equal(got, c.want) || out.Total != c.total {
						t.Fatalf("got %v (total %d), want %v (total %d)", got, out.Total, c.want, c.total)
					}
					if len(out.Link) == 0 || !strings.HasPrefix(out.Link[0].URL, "http://ward.test/fhir") {
						t.Fatalf("links %v", out.Link)
					}
				})
			}
			// The links page through the same search.
			req, _ := http.NewRequest("GET", ts.URL+"/fhir/Patient/p1/*?_count=2", nil)
			req.Header.Set("X-As", "admin")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var page struct {
				Link []struct{ Relation, URL string }
			}
			_ = json.NewDecoder(res.Body).Decode(&page)
			res.Body.Close()
			var next string
			for _, l := range page.Link {
				if l.Relation == "next" {
					next = l.URL
				}
			}
			if u, err := url.Parse(next); err != nil || u.Path != "/fhir/Patient/p1/*" || u.Query().Get("_offset") != "2" || u.Query().Get("_count") != "2" {
				t.Fatalf("next link %q", next)
			}
			// In a batch.
			batch := `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/p1/Observation?code=a"}},{"request":{"method":"GET","url":"?_type=Condition"}}]}`
			req, _ = http.NewRequest("POST", ts.URL+"/fhir", strings.NewReader(batch))
			req.Header.Set("X-As", "admin")
			res, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Entry []struct {
					Resource struct{ Total int }
					Response struct{ Status string }
				}
			}
			_ = json.NewDecoder(res.Body).Decode(&out)
			res.Body.Close()
			if len(out.Entry) != 2 || out.Entry[0].Response.Status != "200" || out.Entry[0].Resource.Total != 1 || out.Entry[1].Resource.Total != 2 {
				t.Fatalf("batch: %+v", out)
			}
		})
	}
}

// TestCapabilityListsSearches: the CapabilityStatement names system search
// and the five compartments.
func TestCapabilityListsSearches(t *testing.T) {
	cs := capabilityOnce()
	rest := cs["rest"].([]map[string]any)[0]
	var codes []string
	for _, i := range rest["interaction"].([]map[string]string) {
		codes = append(codes, i["code"])
	}
	if !slices.Contains(codes, "search-system") {
		t.Errorf("interactions %v lack search-system", codes)
	}
	want := []string{"http://hl7.org/fhir/CompartmentDefinition/device", "http://hl7.org/fhir/CompartmentDefinition/encounter",
		"http://hl7.org/fhir/CompartmentDefinition/patient", "http://hl7.org/fhir/CompartmentDefinition/practitioner",
		"http://hl7.org/fhir/CompartmentDefinition/relatedPerson"}
	if got := rest["compartment"].([]string); !slices.Equal(got, want) {
		t.Errorf("compartments %v, want %v", got, want)
	}
}
