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
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// restFixture serves the FHIR handler as the admin of a fresh project.
func restFixture(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	f := newFixture(t, storetest.Backends()[0], cfg)
	p := f.admin
	h := NewHandler(f.svc, "http://ward.test/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeFHIR(w, r, p) }))
	t.Cleanup(ts.Close)
	return ts
}

func call(t *testing.T, ts *httptest.Server, method, path, body string, headers ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return res, out
}

func TestREST(t *testing.T) {
	ts := restFixture(t, Config{MaxResponseBytes: 4000})
	res, p := call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","name":[{"family":"Rest","given":["A"]}],"gender":"female","birthDate":"2000-01-01"}`)
	if res.StatusCode != 201 || res.Header.Get("ETag") != `W/"1"` || !strings.HasPrefix(res.Header.Get("Location"), "http://ward.test/fhir/Patient/") {
		t.Fatalf("create: %d %v %v", res.StatusCode, res.Header, p)
	}
	id := p["id"].(string)
	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		check                    func(map[string]any) bool
	}{
		{"read", "GET", "/fhir/Patient/" + id, "", nil, 200, func(m map[string]any) bool { return m["gender"] == "female" }},
		{"not modified", "GET", "/fhir/Patient/" + id, "", []string{"If-None-Match", `W/"1"`}, 304, nil},
		{"not modified, strong tag", "GET", "/fhir/Patient/" + id, "", []string{"If-None-Match", `"1"`}, 304, nil},
		{"modified: another version", "GET", "/fhir/Patient/" + id, "", []string{"If-None-Match", `W/"2"`}, 200, nil},
		{"not modified since", "GET", "/fhir/Patient/" + id, "", []string{"If-Modified-Since", time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)}, 304, nil},
		{"modified since", "GET", "/fhir/Patient/" + id, "", []string{"If-Modified-Since", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)}, 200, nil},
		{"unknown type", "GET", "/fhir/Patientx/1", "", nil, 404, func(m map[string]any) bool { return m["resourceType"] == "OperationOutcome" }},
		{"body type mismatch", "POST", "/fhir/Patient", `{"resourceType":"Observation"}`, nil, 400, nil},
		{"update id mismatch", "PUT", "/fhir/Patient/" + id, `{"resourceType":"Patient","id":"other"}`, nil, 400, nil},
		{"stale If-Match", "PUT", "/fhir/Patient/" + id, `{"resourceType":"Patient","id":"` + id + `"}`, []string{"If-Match", `W/"7"`}, 412, nil},
		{"return=minimal", "PUT", "/fhir/Patient/" + id, `{"resourceType":"Patient","id":"` + id + `","gender":"female","name":[{"family":"Rest"}]}`, []string{"Prefer", "return=minimal"}, 200, func(m map[string]any) bool { return m == nil }},
		{"update as create", "PUT", "/fhir/Patient/chosen-id", `{"resourceType":"Patient","id":"chosen-id"}`, nil, 201, nil},
		{"conditional create finds one", "POST", "/fhir/Patient", `{"resourceType":"Patient"}`, []string{"If-None-Exist", "_id=" + id}, 200, func(m map[string]any) bool { return m["id"] == id }},
		{"_elements", "GET", "/fhir/Patient?_id=" + id + "&_elements=gender", "", nil, 200, func(m map[string]any) bool {
			r := m["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
			return r["gender"] == "female" && r["name"] == nil && strings.Contains(mustJSON(r["meta"]), "SUBSETTED")
		}},
		{"a patient with non-summary elements", "PUT", "/fhir/Patient/sum-1", `{"resourceType":"Patient","id":"sum-1","gender":"male","contact":[{"name":{"family":"Doe"}}],"communication":[{"language":{"text":"en"}}]}`, nil, 201, nil},
		{"read _summary=true", "GET", "/fhir/Patient/sum-1?_summary=true", "", nil, 200, func(m map[string]any) bool {
			return m["gender"] == "male" && m["contact"] == nil && m["communication"] == nil && m["id"] == "sum-1" && strings.Contains(mustJSON(m["meta"]), "SUBSETTED")
		}},
		{"search _summary=true", "GET", "/fhir/Patient?_id=sum-1&_summary=true", "", nil, 200, func(m map[string]any) bool {
			r := m["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
			return r["gender"] == "male" && r["contact"] == nil && strings.Contains(mustJSON(r["meta"]), "SUBSETTED")
		}},
		{"a practitioner", "PUT", "/fhir/Practitioner/gp-1", `{"resourceType":"Practitioner","id":"gp-1","active":true,"communication":[{"text":"en"}]}`, nil, 201, nil},
		{"their patient", "PUT", "/fhir/Patient/sum-2", `{"resourceType":"Patient","id":"sum-2","generalPractitioner":[{"reference":"Practitioner/gp-1"}]}`, nil, 201, nil},
		{"_summary=true on included resources", "GET", "/fhir/Patient?_id=sum-2&_include=Patient:general-practitioner&_summary=true", "", nil, 200, func(m map[string]any) bool {
			for _, e := range m["entry"].([]any) {
				r := e.(map[string]any)["resource"].(map[string]any)
				if r["resourceType"] == "Practitioner" {
					return r["active"] == true && r["communication"] == nil && strings.Contains(mustJSON(r["meta"]), "SUBSETTED")
				}
			}
			return false
		}},
		{"read _elements", "GET", "/fhir/Patient/sum-1?_elements=contact", "", nil, 200, func(m map[string]any) bool {
			return m["contact"] != nil && m["gender"] == nil && strings.Contains(mustJSON(m["meta"]), "SUBSETTED")
		}},
		{"vread _summary=data", "GET", "/fhir/Patient/sum-1/_history/1?_summary=data", "", nil, 200, func(m map[string]any) bool { return m["contact"] != nil }},
		{"read _summary=count", "GET", "/fhir/Patient/sum-1?_summary=count", "", nil, 400, nil},
		{"lenient ignores unknown", "GET", "/fhir/Patient?_id=" + id + "&bogus=1", "", []string{"Prefer", "handling=lenient"}, 200, func(m map[string]any) bool { return m["total"] == float64(1) }},
		{"strict refuses unknown", "GET", "/fhir/Patient?bogus=1", "", nil, 400, func(m map[string]any) bool { return strings.Contains(mustJSON(m), "bogus") }},
		{"bad date value", "GET", "/fhir/Patient?birthdate=2020-13", "", nil, 400, func(m map[string]any) bool { return strings.Contains(mustJSON(m), "birthdate") }},
		{"composite answered", "GET", "/fhir/Observation?code-value-quantity=http://loinc.org|8867-4$gt5", "", nil, 200, nil},
		{"composite without its parts", "GET", "/fhir/Observation?code-value-quantity=x", "", nil, 400, nil},
		{"near answered", "GET", "/fhir/Location?near=42.25|-83.69|10|km", "", nil, 200, nil},
		{"near off the globe", "GET", "/fhir/Location?near=95|-83.69", "", nil, 400, nil},
		{"near in furlongs", "GET", "/fhir/Location?near=42.25|-83.69|10|furlong", "", nil, 400, nil},
		{"response too large", "GET", "/fhir/Patient?_count=50", "", nil, 413, func(m map[string]any) bool { return strings.Contains(mustJSON(m), "_count") }},
		{"bad patch", "PATCH", "/fhir/Patient/" + id, `[{"op":"remove","path":"/nope"}]`, nil, 422, nil},
		{"conditional update: no match, but the body's id exists", "PUT", "/fhir/Patient?gender=unknown", `{"resourceType":"Patient","id":"sum-1"}`, nil, 409, nil},
		{"conditional update: no match, a new id", "PUT", "/fhir/Patient?gender=unknown", `{"resourceType":"Patient","id":"cu-new","gender":"unknown"}`, nil, 201, nil},
		{"conditional patch", "PATCH", "/fhir/Patient?_id=sum-1", `[{"op":"replace","path":"/gender","value":"other"}]`, nil, 200, func(m map[string]any) bool {
			return m["id"] == "sum-1" && m["gender"] == "other"
		}},
		{"conditional patch, no match", "PATCH", "/fhir/Patient?_id=nobody", `[{"op":"replace","path":"/gender","value":"other"}]`, nil, 404, nil},
		{"conditional patch, two matches", "PATCH", "/fhir/Patient?_id=sum-1,sum-2", `[{"op":"replace","path":"/gender","value":"other"}]`, nil, 412, nil},
		{"conditional patch in a batch", "POST", "/fhir", `{"resourceType":"Bundle","type":"batch","entry":[{"resource":[{"op":"replace","path":"/gender","value":"male"}],"request":{"method":"PATCH","url":"Patient?_id=sum-1"}}]}`, nil, 200, func(m map[string]any) bool {
			e := m["entry"].([]any)[0].(map[string]any)
			return e["response"].(map[string]any)["status"] == "200" && e["resource"].(map[string]any)["gender"] == "male"
		}},
		{"history paging", "GET", "/fhir/Patient/" + id + "/_history?_count=1%20%20%20", "", nil, 200, func(m map[string]any) bool {
			return m["total"] == float64(2) && len(m["entry"].([]any)) == 1
		}},
		{"conditional update, one match", "PUT", "/fhir/Patient?_id=chosen-id", `{"resourceType":"Patient","gender":"male"}`, nil, 200, func(m map[string]any) bool { return m["id"] == "chosen-id" && m["gender"] == "male" }},
		{"conditional update, no match creates", "PUT", "/fhir/Patient?identifier=urn:x|42", `{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"42"}]}`, nil, 201, nil},
		{"conditional update, many match", "PUT", "/fhir/Patient?family=filler", `{"resourceType":"Patient"}`, nil, 412, nil},
		{"conditional delete, many match", "DELETE", "/fhir/Patient?family=filler", "", nil, 412, nil},
		{"conditional delete, one match", "DELETE", "/fhir/Patient?identifier=urn:x|42", "", nil, 200, nil},
		// A value held twice is one index row (SQLite keys the rows by value).
		{"repeated coding", "POST", "/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"},{"system":"http://loinc.org","code":"8867-4"}]}}`, nil, 201, nil},
		{"search repeated coding", "GET", "/fhir/Observation?code=http://loinc.org|8867-4", "", nil, 200, func(m map[string]any) bool { return m["total"] == float64(1) }},
		{"delete", "DELETE", "/fhir/Patient/" + id, "", nil, 200, nil},
		{"read deleted", "GET", "/fhir/Patient/" + id, "", nil, 410, nil},
		{"vread before delete", "GET", "/fhir/Patient/" + id + "/_history/1", "", nil, 200, nil},
	}
	// Enough patients that an unbounded page passes 4,000 bytes.
	for i := 0; i < 30; i++ {
		call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","name":[{"family":"Filler","given":["Some","Longer","Names"]}]}`)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := call(t, ts, c.method, c.path, c.body, c.headers...)
			if res.StatusCode != c.status || (c.check != nil && !c.check(body)) {
				t.Fatalf("%d %v", res.StatusCode, body)
			}
		})
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// A conditional create in a transaction that finds its resource creates
// nothing, and the entries that reference its urn:uuid point at the
// resource found; two matches fail the whole transaction.
func TestTransactionConditionalCreate(t *testing.T) {
	ts := restFixture(t, Config{})
	bundle := `{"resourceType":"Bundle","type":"transaction","entry":[
		{"fullUrl":"urn:uuid:0f7a3c2e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"42"}]},
		 "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://x.test/mrn|42"}},
		{"resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:0f7a3c2e-0000-4000-8000-000000000001"}},
		 "request":{"method":"POST","url":"Encounter"}}]}`
	run := func(wantPatientStatus string) (patientID, subject string) {
		t.Helper()
		res, out := call(t, ts, "POST", "/fhir", bundle)
		if res.StatusCode != 200 {
			t.Fatalf("transaction: %d %v", res.StatusCode, out)
		}
		entries := out["entry"].([]any)
		pe, ee := entries[0].(map[string]any), entries[1].(map[string]any)
		if got := pe["response"].(map[string]any)["status"]; got != wantPatientStatus {
			t.Fatalf("patient entry status %v, want %s", got, wantPatientStatus)
		}
		patientID = pe["resource"].(map[string]any)["id"].(string)
		subject = ee["resource"].(map[string]any)["subject"].(map[string]any)["reference"].(string)
		return patientID, subject
	}
	first, subject := run("201")
	if subject != "Patient/"+first {
		t.Fatalf("first run: subject %s, patient %s", subject, first)
	}
	again, subject := run("200")
	if again != first || subject != "Patient/"+first {
		t.Fatalf("second run: patient %s (first %s), subject %s", again, first, subject)
	}
	_, out := call(t, ts, "GET", "/fhir/Patient?identifier=http://x.test/mrn|42", "")
	if out["total"] != float64(1) {
		t.Fatalf("patients with the identifier: %v", out["total"])
	}
	// Two entries with one condition that finds nothing are one resource.
	res, out := call(t, ts, "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[
		{"fullUrl":"urn:uuid:0f7a3c2e-0000-4000-8000-000000000002","resource":{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"43"}]},
		 "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://x.test/mrn|43"}},
		{"fullUrl":"urn:uuid:0f7a3c2e-0000-4000-8000-000000000003","resource":{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"43"}]},
		 "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://x.test/mrn|43"}},
		{"resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:0f7a3c2e-0000-4000-8000-000000000003"}},
		 "request":{"method":"POST","url":"Encounter"}}]}`)
	if res.StatusCode != 200 {
		t.Fatalf("repeated condition: %d %v", res.StatusCode, out)
	}
	entries := out["entry"].([]any)
	p1 := entries[0].(map[string]any)["resource"].(map[string]any)["id"]
	p2 := entries[1].(map[string]any)["resource"].(map[string]any)["id"]
	enc := entries[2].(map[string]any)["resource"].(map[string]any)["subject"].(map[string]any)["reference"]
	if p1 != p2 || enc != "Patient/"+p1.(string) || entries[1].(map[string]any)["response"].(map[string]any)["status"] != "200" {
		t.Fatalf("repeated condition: patients %v %v, encounter subject %v, %v", p1, p2, enc, entries[1])
	}
	if _, out := call(t, ts, "GET", "/fhir/Patient?identifier=http://x.test/mrn|43", ""); out["total"] != float64(1) {
		t.Fatalf("patients with identifier 43: %v", out["total"])
	}
	// A second patient with the identifier: the condition is ambiguous.
	call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"42"}]}`)
	res, out = call(t, ts, "POST", "/fhir", bundle)
	if res.StatusCode != 412 {
		t.Fatalf("ambiguous condition: %d %v", res.StatusCode, out)
	}
	if _, out := call(t, ts, "GET", "/fhir/Encounter?_summary=count", ""); out["total"] != float64(3) {
		t.Fatalf("encounters after the failed transaction: %v, want 3", out["total"])
	}
}

// A conditional reference in a transaction ("Patient?identifier=...")
// becomes a reference to the one resource it finds; none fails it.
func TestTransactionConditionalReference(t *testing.T) {
	ts := restFixture(t, Config{})
	_, pat := call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"77"}]}`)
	tx := func(query string) (*http.Response, map[string]any) {
		return call(t, ts, "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?`+query+`"},
			 "performer":[{"reference":"Patient?`+query+`"}]},"request":{"method":"POST","url":"Observation"}}]}`)
	}
	res, out := tx("identifier=http://x.test/mrn|77")
	if res.StatusCode != 200 {
		t.Fatalf("transaction: %d %v", res.StatusCode, out)
	}
	obs := out["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
	want := "Patient/" + pat["id"].(string)
	if got := obs["subject"].(map[string]any)["reference"]; got != want {
		t.Fatalf("subject %v, want %s", got, want)
	}
	if got := obs["performer"].([]any)[0].(map[string]any)["reference"]; got != want {
		t.Fatalf("performer %v, want %s", got, want)
	}
	if res, out := tx("identifier=http://x.test/mrn|78"); res.StatusCode != 412 || !strings.Contains(mustJSON(out), "matched 0 resources") {
		t.Fatalf("no match: %d %v", res.StatusCode, out)
	}
	if _, out := call(t, ts, "GET", "/fhir/Observation?_summary=count", ""); out["total"] != float64(1) {
		t.Fatalf("observations: %v, want 1", out["total"])
	}
}

// A conditional update in a transaction (PUT Patient?identifier=...) writes
// the one match or creates one, and a urn:uuid fullUrl on it stands for
// that resource in the other entries.
func TestTransactionConditionalUpdate(t *testing.T) {
	ts := restFixture(t, Config{})
	bundle := func(family string) string {
		return `{"resourceType":"Bundle","type":"transaction","entry":[
		{"fullUrl":"urn:uuid:5a1e7c4b-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"9"}],"name":[{"family":"` + family + `"}]},
		 "request":{"method":"PUT","url":"Patient?identifier=http://x.test/mrn|9"}},
		{"resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:5a1e7c4b-0000-4000-8000-000000000001"}},
		 "request":{"method":"POST","url":"Encounter"}}]}`
	}
	run := func(family, wantStatus string) (patientID string) {
		t.Helper()
		res, out := call(t, ts, "POST", "/fhir", bundle(family))
		if res.StatusCode != 200 {
			t.Fatalf("transaction: %d %v", res.StatusCode, out)
		}
		entries := out["entry"].([]any)
		pe, ee := entries[0].(map[string]any), entries[1].(map[string]any)
		if got := pe["response"].(map[string]any)["status"]; got != wantStatus {
			t.Fatalf("patient entry status %v, want %s", got, wantStatus)
		}
		patientID = pe["resource"].(map[string]any)["id"].(string)
		if subject := ee["resource"].(map[string]any)["subject"].(map[string]any)["reference"]; subject != "Patient/"+patientID {
			t.Fatalf("encounter subject %v, patient %s", subject, patientID)
		}
		return patientID
	}
	first := run("One", "201")
	if again := run("Two", "200"); again != first {
		t.Fatalf("second run wrote patient %s, first %s", again, first)
	}
	_, out := call(t, ts, "GET", "/fhir/Patient/"+first, "")
	if out["meta"].(map[string]any)["versionId"] != "2" || out["name"].([]any)[0].(map[string]any)["family"] != "Two" {
		t.Fatalf("patient after two runs: %v", out)
	}
	// Two matches: 412, and nothing of the bundle is written.
	call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"9"}]}`)
	if res, out := call(t, ts, "POST", "/fhir", bundle("Three")); res.StatusCode != 412 {
		t.Fatalf("ambiguous condition: %d %v", res.StatusCode, out)
	}
	if _, out := call(t, ts, "GET", "/fhir/Encounter?_summary=count", ""); out["total"] != float64(2) {
		t.Fatalf("encounters: %v, want 2", out["total"])
	}
}

// A transaction's deletes run before its conditions are evaluated, and a
// resource may be changed by one entry only.
func TestTransactionDeletesFirstAndOnce(t *testing.T) {
	ts := restFixture(t, Config{})
	_, old := call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"5"}]}`)
	oldID := old["id"].(string)
	// The create's condition comes first in the bundle but is evaluated
	// after the delete: it finds nothing and creates.
	res, out := call(t, ts, "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[
		{"resource":{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"5"}]},
		 "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://x.test/mrn|5"}},
		{"request":{"method":"DELETE","url":"Patient?identifier=http://x.test/mrn|5"}}]}`)
	if res.StatusCode != 200 {
		t.Fatalf("transaction: %d %v", res.StatusCode, out)
	}
	entries := out["entry"].([]any)
	created := entries[0].(map[string]any)
	if created["response"].(map[string]any)["status"] != "201" || created["resource"].(map[string]any)["id"] == oldID {
		t.Fatalf("create after the delete: %v", created)
	}
	if st := entries[1].(map[string]any)["response"].(map[string]any)["status"]; st != "204" {
		t.Fatalf("conditional delete entry: %v", st)
	}
	if res, _ := call(t, ts, "GET", "/fhir/Patient/"+oldID, ""); res.StatusCode != 410 {
		t.Fatalf("read of the deleted patient: %d", res.StatusCode)
	}
	newID := created["resource"].(map[string]any)["id"].(string)
	for name, entries := range map[string]string{
		"delete and update": `{"request":{"method":"DELETE","url":"Patient/` + newID + `"}},
			{"resource":{"resourceType":"Patient","id":"` + newID + `","gender":"male"},"request":{"method":"PUT","url":"Patient/` + newID + `"}}`,
		"conditional delete and patch": `{"request":{"method":"DELETE","url":"Patient?identifier=http://x.test/mrn|5"}},
			{"resource":[{"op":"add","path":"/gender","value":"male"}],"request":{"method":"PATCH","url":"Patient/` + newID + `"}}`,
		"two updates": `{"resource":{"resourceType":"Patient","id":"` + newID + `","gender":"male"},"request":{"method":"PUT","url":"Patient/` + newID + `"}},
			{"resource":{"resourceType":"Patient","id":"` + newID + `","gender":"female"},"request":{"method":"PUT","url":"Patient/` + newID + `"}}`,
	} {
		res, out := call(t, ts, "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[`+entries+`]}`)
		if res.StatusCode != 400 || !strings.Contains(mustJSON(out), "both change Patient/"+newID) {
			t.Errorf("%s: %d %v", name, res.StatusCode, out)
		}
	}
	_, cur := call(t, ts, "GET", "/fhir/Patient/"+newID, "")
	if cur["meta"].(map[string]any)["versionId"] != "1" || cur["gender"] != nil {
		t.Fatalf("patient after the refused transactions: %v", cur)
	}
}

// A batch takes conditional updates and deletes, and vreads.
func TestBatchConditionalEntries(t *testing.T) {
	ts := restFixture(t, Config{})
	res, out := call(t, ts, "POST", "/fhir", `{"resourceType":"Bundle","type":"batch","entry":[
		{"resource":{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"6"}]},"request":{"method":"PUT","url":"Patient?identifier=http://x.test/mrn|6"}},
		{"request":{"method":"DELETE","url":"Patient?identifier=http://x.test/mrn|404"}}]}`)
	if res.StatusCode != 200 {
		t.Fatalf("batch: %d %v", res.StatusCode, out)
	}
	entries := out["entry"].([]any)
	if st := entries[0].(map[string]any)["response"].(map[string]any)["status"]; st != "201" {
		t.Fatalf("conditional update entry: %v", entries[0])
	}
	if st := entries[1].(map[string]any)["response"].(map[string]any)["status"]; st != "204" {
		t.Fatalf("conditional delete of nothing: %v", entries[1])
	}
	id := entries[0].(map[string]any)["resource"].(map[string]any)["id"].(string)
	res, out = call(t, ts, "POST", "/fhir", `{"resourceType":"Bundle","type":"batch","entry":[
		{"request":{"method":"DELETE","url":"Patient?identifier=http://x.test/mrn|6"}},
		{"request":{"method":"GET","url":"Patient/`+id+`/_history/1"}}]}`)
	if res.StatusCode != 200 {
		t.Fatalf("batch: %d %v", res.StatusCode, out)
	}
	entries = out["entry"].([]any)
	if vr := entries[1].(map[string]any); vr["resource"].(map[string]any)["id"] != id || vr["response"].(map[string]any)["status"] != "200" {
		t.Fatalf("vread entry: %v", vr)
	}
	if res, _ := call(t, ts, "GET", "/fhir/Patient/"+id, ""); res.StatusCode != 410 {
		t.Fatalf("read after the conditional delete: %d", res.StatusCode)
	}
}

// _list=id finds the resources of the searched type that List/id holds.
func TestSearchList(t *testing.T) {
	ts := restFixture(t, Config{})
	var ids []string
	for range 3 {
		_, p := call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","name":[{"family":"Listed"}]}`)
		ids = append(ids, p["id"].(string))
	}
	_, obs := call(t, ts, "POST", "/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`)
	_, list := call(t, ts, "POST", "/fhir/List", `{"resourceType":"List","status":"current","mode":"working","entry":[
		{"item":{"reference":"Patient/`+ids[0]+`"}},{"item":{"reference":"Patient/`+ids[2]+`"}},{"item":{"reference":"Observation/`+obs["id"].(string)+`"}}]}`)
	listID := list["id"].(string)
	got := func(query string) []string {
		t.Helper()
		res, out := call(t, ts, "GET", query, "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", query, res.StatusCode, out)
		}
		var found []string
		for _, e := range out["entry"].([]any) {
			found = append(found, e.(map[string]any)["resource"].(map[string]any)["id"].(string))
		}
		return found
	}
	if g := got("/fhir/Patient?_list=" + listID); strings.Join(g, ",") != ids[0]+","+ids[2] {
		t.Fatalf("Patient?_list: %v, want %s and %s", g, ids[0], ids[2])
	}
	if g := got("/fhir/Patient?_list=" + listID + "&_id=" + ids[2]); len(g) != 1 || g[0] != ids[2] {
		t.Fatalf("with _id: %v", g)
	}
	if g := got("/fhir/Observation?_list=" + listID); len(g) != 1 || g[0] != obs["id"] {
		t.Fatalf("Observation?_list: %v", g)
	}
	if res, out := call(t, ts, "GET", "/fhir/Patient?_list=$current-allergies", ""); res.StatusCode != 400 || !strings.Contains(mustJSON(out), "_list") {
		t.Fatalf("functional list: %d %v", res.StatusCode, out)
	}
}

// $validate answers 200 with every problem, or All OK, and writes nothing.
func TestValidateOperation(t *testing.T) {
	ts := restFixture(t, Config{})
	issues := func(out map[string]any) string { return mustJSON(out["issue"]) }
	cases := []struct {
		name, path, body string
		status           int
		want             []string // substrings of the issues
	}{
		{"valid", "/fhir/Patient/$validate", `{"resourceType":"Patient","gender":"female"}`, 200, []string{"All OK", "information"}},
		{"invalid, every problem", "/fhir/Patient/$validate", `{"resourceType":"Patient","gender":7,"shoeSize":9}`, 200, []string{"Patient.gender", "Patient.shoeSize", "error"}},
		{"Parameters form with a profile", "/fhir/Observation/$validate", `{"resourceType":"Parameters","parameter":[
			{"name":"resource","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"}}},
			{"name":"profile","valueUri":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs"}]}`, 200, []string{"us-core-vital-signs was not checked", "warning"}},
		{"update needs the id", "/fhir/Patient/$validate?mode=update", `{"resourceType":"Patient"}`, 400, []string{"needs the resource's id"}},
		{"update at an id", "/fhir/Patient/abc/$validate?mode=update", `{"resourceType":"Patient","id":"abc"}`, 200, []string{"All OK"}},
		{"update, ids differ", "/fhir/Patient/abc/$validate?mode=update", `{"resourceType":"Patient","id":"xyz"}`, 400, []string{"does not match"}},
		{"delete", "/fhir/Patient/abc/$validate?mode=delete", ``, 200, []string{"All OK"}},
		{"wrong type", "/fhir/Patient/$validate", `{"resourceType":"Observation"}`, 400, []string{"does not match"}},
		{"no resource", "/fhir/Patient/$validate", `{"resourceType":"Parameters","parameter":[]}`, 400, []string{"Parameters with a resource"}},
		{"bad mode", "/fhir/Patient/$validate?mode=merge", `{"resourceType":"Patient"}`, 400, []string{"mode must be"}},
	}
	for _, c := range cases {
		res, out := call(t, ts, "POST", c.path, c.body)
		if res.StatusCode != c.status || out["resourceType"] != "OperationOutcome" {
			t.Errorf("%s: %d %v", c.name, res.StatusCode, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(issues(out), w) {
				t.Errorf("%s: issues %s lack %q", c.name, issues(out), w)
			}
		}
	}
	if _, out := call(t, ts, "GET", "/fhir/Patient?_summary=count", ""); out["total"] != float64(0) {
		t.Fatalf("$validate stored something: %v", out)
	}
}

// $validate needs the right to the interaction it asks about.
func TestValidateOperationNeedsTheAction(t *testing.T) {
	f := newFixture(t, storetest.Backends()[0], Config{})
	name := "validator"
	m, err := f.authz.CreateM2M(context.Background(), f.admin.ProjectID, iam.M2MInput{Name: &name,
		AccessPolicy: json.RawMessage(`{"rule":[{"resource":"FHIR:Patient:*","action":["FHIR:Read","FHIR:Create"],"effect":"Allow"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	p := auth.Principal{ProjectID: f.admin.ProjectID, Kind: auth.KindM2M, ID: m.ID}
	h := NewHandler(f.svc, "http://ward.test/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeFHIR(w, r, p) }))
	t.Cleanup(ts.Close)
	for path, want := range map[string]int{
		"/fhir/Patient/$validate":                    200,
		"/fhir/Patient/p1/$validate?mode=update":     403,
		"/fhir/Patient/p1/$validate?mode=delete":     403,
		"/fhir/Observation/$validate":                403,
		"/fhir/Observation/p1/$validate?mode=update": 403,
	} {
		if res, out := call(t, ts, "POST", path, `{"resourceType":"`+strings.Split(path, "/")[2]+`","id":"p1"}`); res.StatusCode != want {
			t.Errorf("%s: %d, want %d: %v", path, res.StatusCode, want, out)
		}
	}
}

// Patient/$everything: the patient's compartment in pages, what it
// references outside as includes, and nothing of another patient.
func TestPatientEverything(t *testing.T) {
	ts := restFixture(t, Config{})
	post := func(body string) string {
		t.Helper()
		res, out := call(t, ts, "POST", "/fhir/"+strings.Split(strings.Split(body, `"resourceType":"`)[1], `"`)[0], body)
		if res.StatusCode != 201 {
			t.Fatalf("create: %d %v", res.StatusCode, out)
		}
		return out["id"].(string)
	}
	dr := post(`{"resourceType":"Practitioner","name":[{"family":"Who"}]}`)
	pid := post(`{"resourceType":"Patient","name":[{"family":"Every"}]}`)
	other := post(`{"resourceType":"Patient","name":[{"family":"Else"}]}`)
	want := map[string]bool{"Patient/" + pid: true}
	for range 3 {
		want["Observation/"+post(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+pid+`"}}`)] = true
	}
	want["Encounter/"+post(`{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/`+pid+`"},
		"participant":[{"individual":{"reference":"Practitioner/`+dr+`"}}]}`)] = true
	post(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + other + `"}}`)

	page := func(path string) (matches, includes []string, next string, total float64) {
		t.Helper()
		res, out := call(t, ts, "GET", path, "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, res.StatusCode, out)
		}
		for _, e := range out["entry"].([]any) {
			e := e.(map[string]any)
			r := e["resource"].(map[string]any)
			key := r["resourceType"].(string) + "/" + r["id"].(string)
			if e["search"].(map[string]any)["mode"] == "include" {
				includes = append(includes, key)
			} else {
				matches = append(matches, key)
			}
		}
		for _, l := range out["link"].([]any) {
			if l := l.(map[string]any); l["relation"] == "next" {
				next = strings.TrimPrefix(l["url"].(string), "http://ward.test")
			}
		}
		return matches, includes, next, out["total"].(float64)
	}
	matches, includes, next, total := page("/fhir/Patient/" + pid + "/$everything")
	if total != 5 || len(matches) != 5 || next != "" || matches[0] != "Patient/"+pid {
		t.Fatalf("one page: total %v, %v, next %q", total, matches, next)
	}
	for _, m := range matches {
		if !want[m] {
			t.Errorf("%s is not in the patient's compartment", m)
		}
	}
	if !slices.Equal(includes, []string{"Practitioner/" + dr}) {
		t.Errorf("includes %v, want the practitioner", includes)
	}
	// Pages of 2 give each resource once.
	seen := map[string]bool{}
	for path, pages := "/fhir/Patient/"+pid+"/$everything?_count=2", 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("more pages than resources")
		}
		var got []string
		got, _, path, _ = page(path)
		for _, m := range got {
			if seen[m] || !want[m] {
				t.Fatalf("page %d: %s repeated or foreign", pages, m)
			}
			seen[m] = true
		}
	}
	if len(seen) != 5 {
		t.Fatalf("pages gave %d resources, want 5", len(seen))
	}
	if m, _, _, total := page("/fhir/Patient/" + pid + "/$everything?_type=Observation"); total != 3 || len(m) != 3 {
		t.Fatalf("_type=Observation: %v", m)
	}
	if m, _, _, total := page("/fhir/Patient/" + pid + "/$everything?_since=2999-01-01T00:00:00Z"); total != 0 || len(m) != 0 {
		t.Fatalf("_since in the future: %v", m)
	}
	for path, status := range map[string]int{
		"/fhir/Patient/" + pid + "/$everything?start=2020-01-01": 400,
		"/fhir/Patient/" + pid + "/$everything?shoe=9":           400,
		"/fhir/Patient/nobody/$everything":                       404,
	} {
		if res, out := call(t, ts, "GET", path, ""); res.StatusCode != status {
			t.Errorf("%s: %d, want %d: %v", path, res.StatusCode, status, out)
		}
	}
}

// Token :in and :not-in expand the project's own ValueSets.
func TestSearchInValueSet(t *testing.T) {
	ts := restFixture(t, Config{})
	for _, vs := range []string{
		`{"resourceType":"ValueSet","url":"http://x.test/vs/vitals","status":"active","compose":{"include":[{"system":"http://loinc.org","concept":[{"code":"8867-4"},{"code":"8480-6"}]}]}}`,
		`{"resourceType":"ValueSet","url":"http://x.test/vs/loinc","status":"active","compose":{"include":[{"system":"http://loinc.org"}]}}`,
		`{"resourceType":"ValueSet","url":"http://x.test/vs/nested","status":"active","compose":{"include":[{"valueSet":["http://x.test/vs/vitals"]},{"system":"http://snomed.info/sct","concept":[{"code":"111"}]}],
			"exclude":[{"system":"http://loinc.org","concept":[{"code":"8480-6"}]}]}}`,
		`{"resourceType":"ValueSet","url":"http://x.test/vs/expanded","status":"active","expansion":{"timestamp":"2026-01-01T00:00:00Z","contains":[{"system":"http://snomed.info/sct","code":"111"}]}}`,
		`{"resourceType":"ValueSet","url":"http://x.test/vs/filtered","status":"active","compose":{"include":[{"system":"http://snomed.info/sct","filter":[{"property":"concept","op":"is-a","value":"404684003"}]}]}}`,
	} {
		if res, out := call(t, ts, "POST", "/fhir/ValueSet", vs); res.StatusCode != 201 {
			t.Fatalf("ValueSet: %d %v", res.StatusCode, out)
		}
	}
	byCode := map[string]string{}
	for _, sc := range []string{"http://loinc.org|8867-4", "http://loinc.org|8480-6", "http://loinc.org|1234-5", "http://snomed.info/sct|111"} {
		sys, code, _ := strings.Cut(sc, "|")
		_, out := call(t, ts, "POST", "/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"`+sys+`","code":"`+code+`"}]}}`)
		byCode[out["id"].(string)] = code
	}
	codes := func(query string) string {
		t.Helper()
		res, out := call(t, ts, "GET", "/fhir/Observation?"+query, "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", query, res.StatusCode, out)
		}
		var got []string
		for _, e := range out["entry"].([]any) {
			got = append(got, byCode[e.(map[string]any)["resource"].(map[string]any)["id"].(string)])
		}
		slices.Sort(got)
		return strings.Join(got, ",")
	}
	for query, want := range map[string]string{
		"code:in=http://x.test/vs/vitals":                                          "8480-6,8867-4",
		"code:not-in=http://x.test/vs/vitals":                                      "111,1234-5",
		"code:in=http://x.test/vs/loinc":                                           "1234-5,8480-6,8867-4",
		"code:in=http://x.test/vs/nested":                                          "111,8867-4",
		"code:in=http://x.test/vs/expanded":                                        "111",
		"code:in=http://x.test/vs/expanded,http://x.test/vs/vitals":                "111,8480-6,8867-4",
		"code:in=http://x.test/vs/vitals&code=http://loinc.org|8867-4":             "8867-4",
		"_filter=code+in+http://x.test/vs/vitals+or+code+eq+111":                   "111,8480-6,8867-4",
		"_filter=code+ni+http://x.test/vs/loinc":                                   "111",
		"code:not-in=http://x.test/vs/loinc&code:not-in=http://x.test/vs/expanded": "",
		// R4 core value sets, when the project has none with the url
		"status:in=http://hl7.org/fhir/ValueSet/observation-status":     "111,1234-5,8480-6,8867-4",
		"status:not-in=http://hl7.org/fhir/ValueSet/observation-status": "",
		"code:in=http://hl7.org/fhir/ValueSet/administrative-gender":    "",
	} {
		if got := codes(query); got != want {
			t.Errorf("%s: codes %q, want %q", query, got, want)
		}
	}
	_, out := call(t, ts, "GET", "/fhir/Observation?code:in=http://x.test/vs/vitals", "")
	if self := mustJSON(out["link"]); !strings.Contains(self, "code:in=http") {
		t.Errorf("self link lost the :in: %s", self)
	}
	for query, msg := range map[string]string{
		"code:in=http://x.test/vs/none":                  "no ValueSet with url",
		"code:in=http://hl7.org/fhir/ValueSet/mimetypes": "cannot be expanded here",
		"code:in=http://x.test/vs/filtered":              "by filter",
		"code:below=http://snomed.info/sct|404684003":    "hierarchy",
	} {
		if res, out := call(t, ts, "GET", "/fhir/Observation?"+query, ""); res.StatusCode != 400 || !strings.Contains(mustJSON(out), msg) {
			t.Errorf("%s: %d %v", query, res.StatusCode, out)
		}
	}
}

// A chain may follow up to three references.
func TestSearchLongChain(t *testing.T) {
	ts := restFixture(t, Config{})
	post := func(body string) string {
		t.Helper()
		typ := strings.Split(strings.Split(body, `"resourceType":"`)[1], `"`)[0]
		res, out := call(t, ts, "POST", "/fhir/"+typ, body)
		if res.StatusCode != 201 {
			t.Fatalf("create: %d %v", res.StatusCode, out)
		}
		return out["id"].(string)
	}
	parent := post(`{"resourceType":"Organization","name":"Acme Health"}`)
	clinic := post(`{"resourceType":"Organization","name":"Clinic","partOf":{"reference":"Organization/` + parent + `"}}`)
	other := post(`{"resourceType":"Organization","name":"Other"}`)
	in := post(`{"resourceType":"Patient","managingOrganization":{"reference":"Organization/` + clinic + `"}}`)
	out := post(`{"resourceType":"Patient","managingOrganization":{"reference":"Organization/` + other + `"}}`)
	obsIn := post(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + in + `"}}`)
	post(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + out + `"}}`)
	for query, want := range map[string]string{
		"subject:Patient.organization.name=Clinic":             obsIn,
		"subject:Patient.organization.partof.name=Acme":        obsIn,
		"patient.organization.partof:Organization.name=acme":   obsIn,
		"subject:Patient.organization.partof.name=Nonexistent": "",
	} {
		res, body := call(t, ts, "GET", "/fhir/Observation?"+query, "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", query, res.StatusCode, body)
		}
		var got []string
		for _, e := range body["entry"].([]any) {
			got = append(got, e.(map[string]any)["resource"].(map[string]any)["id"].(string))
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s: %v, want %q", query, got, want)
		}
	}
}

// identifier:of-type=system|code|value finds identifiers by type and value.
func TestSearchIdentifierOfType(t *testing.T) {
	ts := restFixture(t, Config{})
	const v2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
	ids := map[string]string{}
	for name, ident := range map[string]string{
		"mr42":   `{"type":{"coding":[{"system":"` + v2 + `","code":"MR"}]},"system":"http://x.test/mrn","value":"42"}`,
		"ss42":   `{"type":{"coding":[{"system":"` + v2 + `","code":"SS"}],"text":"social"},"system":"http://x.test/ssn","value":"42"}`,
		"both43": `{"type":{"coding":[{"system":"` + v2 + `","code":"MR"},{"system":"` + v2 + `","code":"PI"}]},"value":"43"}`,
		"none42": `{"system":"http://x.test/mrn","value":"42"}`,
	} {
		res, out := call(t, ts, "POST", "/fhir/Patient", `{"resourceType":"Patient","identifier":[`+ident+`]}`)
		if res.StatusCode != 201 {
			t.Fatalf("create %s: %d %v", name, res.StatusCode, out)
		}
		ids[out["id"].(string)] = name
	}
	for value, want := range map[string]string{
		v2 + "|MR|42":                  "mr42",
		v2 + "|SS|42":                  "ss42",
		v2 + "|MR|43":                  "both43",
		v2 + "|PI|43":                  "both43",
		v2 + "|MR|42," + v2 + "|PI|43": "both43,mr42",
		v2 + "|SS|43":                  "",
		"|MR|42":                       "", // the type's system is part of it
	} {
		res, out := call(t, ts, "GET", "/fhir/Patient?identifier:of-type="+url.QueryEscape(value), "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", value, res.StatusCode, out)
		}
		var got []string
		for _, e := range out["entry"].([]any) {
			got = append(got, ids[e.(map[string]any)["resource"].(map[string]any)["id"].(string)])
		}
		slices.Sort(got)
		if strings.Join(got, ",") != want {
			t.Errorf("identifier:of-type=%s: %v, want %s", value, got, want)
		}
	}
	// The plain token search is unchanged by the type rows.
	if _, out := call(t, ts, "GET", "/fhir/Patient?identifier=42", ""); out["total"] != float64(3) {
		t.Errorf("identifier=42: %v, want 3", out["total"])
	}
}

// _text finds a phrase in the narrative, not in its markup.
func TestSearchNarrative(t *testing.T) {
	ts := restFixture(t, Config{})
	narrative := func(div string) string {
		return `{"resourceType":"Condition","subject":{"reference":"Patient/x"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">` + div + `</div>"}}`
	}
	ids := map[string]string{}
	for name, div := range map[string]string{
		"hf":     `<p>Chronic <b>heart</b>&#160;failure, NYHA class II</p>`,
		"asthma": `<p>Asthma since childhood; heart sounds normal</p>`,
		"none":   ``,
	} {
		res, out := call(t, ts, "POST", "/fhir/Condition", narrative(div))
		if res.StatusCode != 201 {
			t.Fatalf("create %s: %d %v", name, res.StatusCode, out)
		}
		ids[out["id"].(string)] = name
	}
	for query, want := range map[string]string{
		"heart failure":         "hf",
		"HEART":                 "asthma,hf",
		"chronic heart failure": "hf",
		"heart failure,asthma":  "asthma,hf",
		"div":                   "", // markup is not text
		"class ii":              "hf",
		"failure nyha":          "", // the comma is part of the text
	} {
		res, out := call(t, ts, "GET", "/fhir/Condition?_text="+url.QueryEscape(query), "")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %v", query, res.StatusCode, out)
		}
		var got []string
		for _, e := range out["entry"].([]any) {
			got = append(got, ids[e.(map[string]any)["resource"].(map[string]any)["id"].(string)])
		}
		slices.Sort(got)
		if strings.Join(got, ",") != want {
			t.Errorf("_text=%s: %v, want %s", query, got, want)
		}
	}
	if res, _ := call(t, ts, "GET", "/fhir/Condition?_text="+strings.Repeat("x", 200), ""); res.StatusCode != 400 {
		t.Errorf("a long phrase: %d, want 400", res.StatusCode)
	}
}

// TestFormats: Ward serves and reads FHIR JSON only; a request that
// accepts nothing else is 406 and a body in XML is 415, each an
// OperationOutcome, before any work is done.
func TestFormats(t *testing.T) {
	ts := restFixture(t, Config{})
	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
	}{
		{"no Accept", "GET", "/fhir/Patient", "", nil, 200},
		{"Accept FHIR JSON", "GET", "/fhir/Patient", "", []string{"Accept", "application/fhir+json"}, 200},
		{"Accept JSON with a version", "GET", "/fhir/Patient", "", []string{"Accept", "application/fhir+json; fhirVersion=4.0"}, 200},
		{"Accept anything", "GET", "/fhir/Patient", "", []string{"Accept", "*/*"}, 200},
		{"a browser's Accept", "GET", "/fhir/metadata", "", []string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, 200},
		{"Accept XML", "GET", "/fhir/Patient", "", []string{"Accept", "application/fhir+xml"}, 406},
		{"Accept XML on metadata", "GET", "/fhir/metadata", "", []string{"Accept", "application/xml"}, 406},
		{"Accept JSON only at q=0", "GET", "/fhir/Patient", "", []string{"Accept", "application/fhir+xml, application/fhir+json;q=0"}, 406},
		{"Accept XML, _format json", "GET", "/fhir/Patient?_format=json", "", []string{"Accept", "application/fhir+xml"}, 200},
		{"_format FHIR JSON, + unescaped", "GET", "/fhir/Patient?_format=application/fhir+json", "", nil, 200},
		{"_format xml", "GET", "/fhir/Patient?_format=xml", "", nil, 406},
		{"XML body", "POST", "/fhir/Patient", `<Patient xmlns="http://hl7.org/fhir"/>`, []string{"Content-Type", "application/fhir+xml"}, 415},
		{"XML body to update", "PUT", "/fhir/Patient/x1", `<Patient xmlns="http://hl7.org/fhir"/>`, []string{"Content-Type", "text/xml; charset=utf-8"}, 415},
		{"XML bundle", "POST", "/fhir", `<Bundle xmlns="http://hl7.org/fhir"/>`, []string{"Content-Type", "application/xml"}, 415},
		{"JSON body", "POST", "/fhir/Patient", `{"resourceType":"Patient"}`, []string{"Content-Type", "application/json"}, 201},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, out := call(t, ts, tc.method, tc.path, tc.body, tc.headers...)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", res.StatusCode, tc.status, out)
			}
			if tc.status >= 400 && out["resourceType"] != "OperationOutcome" {
				t.Fatalf("not an OperationOutcome: %v", out)
			}
		})
	}
}

// TestRefusedText: R4 JSON is UTF-8 and its strings hold no control
// characters but tab, line feed and return; a body breaking either is a
// 400, never stored with the character replaced or kept.
func TestRefusedText(t *testing.T) {
	ts := restFixture(t, Config{})
	for name, body := range map[string]string{
		"invalid UTF-8":      "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Gar\xe7ia\"}]}",
		"NUL":                `{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}`,
		"control":            `{"resourceType":"Patient","name":[{"family":"a\u0007b"}]}`,
		"unpaired surrogate": `{"resourceType":"Patient","name":[{"family":"a\ud800b"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/fhir/Patient", body},
				{"PUT", "/fhir/Patient/txt-1", strings.Replace(body, `"Patient",`, `"Patient","id":"txt-1",`, 1)},
				{"POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + body + `,"request":{"method":"POST","url":"Patient"}}]}`},
			} {
				res, out := call(t, ts, req.method, req.path, req.body)
				if res.StatusCode != 400 || out["resourceType"] != "OperationOutcome" {
					t.Fatalf("%s %s: %d %v, want 400", req.method, req.path, res.StatusCode, out)
				}
			}
		})
	}
	res, _ := call(t, ts, "GET", "/fhir/Patient?_summary=count", "")
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	if res, out := call(t, ts, "PUT", "/fhir/Patient/txt-2", `{"resourceType":"Patient","id":"txt-2","name":[{"family":"tab\there"}]}`); res.StatusCode != 201 {
		t.Fatalf("a tab: %d %v", res.StatusCode, out)
	}
	if res, out := call(t, ts, "PATCH", "/fhir/Patient/txt-2", `[{"op":"replace","path":"/name/0/family","value":"a\u0000b"}]`, "Content-Type", "application/json-patch+json"); res.StatusCode != 400 {
		t.Fatalf("a patch adding NUL: %d %v", res.StatusCode, out)
	}
}
