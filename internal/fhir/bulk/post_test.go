package bulk

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam/iamtest"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// post serves one POST kick-off with body as p.
func (f *fixture) post(p auth.Principal, target, contentType, body string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest("POST", base+target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(kickHeaders); i += 2 {
		req.Header.Set(kickHeaders[i], kickHeaders[i+1])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeFHIR(rec, req, p)
	return rec
}

// exportPost runs a whole POST-started export as p: its lines by type.
func (f *fixture) exportPost(p auth.Principal, target, body string) map[string][]string {
	f.t.Helper()
	rec := f.post(p, target, "application/fhir+json", body)
	status := rec.Header().Get("Content-Location")
	if rec.Code != http.StatusAccepted || status == "" {
		f.t.Fatalf("POST kick-off %s: %d %s", target, rec.Code, rec.Body)
	}
	f.runAll()
	rec = f.do(p, "GET", status)
	var m manifest
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
		f.t.Fatalf("status of %s: %d %s", target, rec.Code, rec.Body)
	}
	// IG: a POST's request URL is without its parameters.
	if m.Request != base+target {
		f.t.Errorf("manifest request %q, want %q", m.Request, base+target)
	}
	return f.lines(p, m)
}

// params is a Parameters body: name, value[x] name, JSON value, ...
func params(nv ...string) string {
	var ps []string
	for i := 0; i+2 < len(nv)+1; i += 3 {
		ps = append(ps, fmt.Sprintf(`{"name":%q,%q:%s}`, nv[i], nv[i+1], nv[i+2]))
	}
	return `{"resourceType":"Parameters","parameter":[` + strings.Join(ps, ",") + `]}`
}

func patientParam(id string) []string {
	return []string{"patient", "valueReference", fmt.Sprintf(`{"reference":"Patient/%s"}`, id)}
}

// The IG's POST kick-off: the same exports as GET, plus the patient
// parameter that narrows a Patient or Group export to some patients, each
// checked against the caller's access.
func TestExportPost(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{FileResources: 4, Batch: 3})
			pids := f.seed()

			got := f.exportPost(f.admin, "/$export", params("_type", "valueString", `"Patient,Observation"`, "_outputFormat", "valueString", `"application/fhir+ndjson"`))
			sameCounts(t, "system POST", got, map[string]int{"Patient": 5, "Observation": 35})
			got = f.exportPost(f.admin, "/$export", params("_type", "valueString", `"Observation"`, "_typeFilter", "valueString", `"Observation?code=a"`,
				"_since", "valueInstant", `"2000-01-01T00:00:00Z"`))
			sameCounts(t, "system POST with _typeFilter and _since", got, map[string]int{"Observation": 20})

			two := append(patientParam(pids[1]), patientParam(pids[3])...)
			got = f.exportPost(f.admin, "/Patient/$export", params(two...))
			sameCounts(t, "Patient POST of two patients", got, map[string]int{"Patient": 2, "Observation": 14, "Condition": 4})
			if ids := got["Patient"]; len(ids) != 2 || !strings.Contains(strings.Join(ids, ","), pids[1]) || !strings.Contains(strings.Join(ids, ","), pids[3]) {
				t.Errorf("Patient POST exported patients %v, want %s and %s", ids, pids[1], pids[3])
			}
			got = f.exportPost(f.admin, "/Patient/$export", params(append(patientParam(pids[0]), "_type", "valueString", `"Condition"`)...))
			sameCounts(t, "Patient POST of one patient, Conditions", got, map[string]int{"Condition": 2})
			got = f.exportPost(f.admin, "/Patient/$export", `{"resourceType":"Parameters"}`)
			sameCounts(t, "Patient POST without parameters", got, map[string]int{"Patient": 5, "Observation": 35, "Condition": 10})

			group := f.create("Group", fmt.Sprintf(`{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/%s"}},{"entity":{"reference":"Patient/%s"}}]}`, pids[0], pids[3]))
			got = f.exportPost(f.admin, "/Group/"+group+"/$export", params(append(patientParam(pids[3]), "_type", "valueString", `"Patient,Observation"`)...))
			sameCounts(t, "Group POST of one member", got, map[string]int{"Patient": 1, "Observation": 7})
			got = f.exportPost(f.admin, "/Group/"+group+"/$export", params("_type", "valueString", `"Patient"`))
			sameCounts(t, "Group POST of every member", got, map[string]int{"Patient": 2})

			// A principal that may search only patient 2: patient 2 is
			// exportable, patient 1 is as unknown as a made-up id.
			cond := f.m2m("cond", fmt.Sprintf(`{"resource":["FHIR:Patient:*"],"action":["FHIR:Search"],"effect":"Allow","condition":"Patient?_id=%s"},{"resource":["FHIR:Observation:*"],"action":["FHIR:Search"],"effect":"Allow"}`, pids[2]))
			got = f.exportPost(cond, "/Patient/$export", params(patientParam(pids[2])...))
			sameCounts(t, "conditional principal, own patient", got, map[string]int{"Patient": 1, "Observation": 7})
			hidden := f.post(cond, "/Patient/$export", "application/fhir+json", params(patientParam(pids[1])...))
			unknown := f.post(cond, "/Patient/$export", "application/fhir+json", params(patientParam("nope")...))
			if hidden.Code != 400 || unknown.Code != 400 || strings.ReplaceAll(hidden.Body.String(), pids[1], "X") != strings.ReplaceAll(unknown.Body.String(), "nope", "X") {
				t.Errorf("a hidden patient and an unknown one answer alike: %d %s / %d %s", hidden.Code, hidden.Body, unknown.Code, unknown.Body)
			}
			// Another project's patient is unknown here.
			stranger := iamtest.Project(t, f.authz, f.st, "other")
			if rec := f.post(stranger, "/Patient/$export", "application/fhir+json", params(patientParam(pids[0])...)); rec.Code != 400 {
				t.Errorf("another project's patient: %d %s", rec.Code, rec.Body)
			}
			noPatients := f.m2m("nopatients", `{"resource":["FHIR:Observation:*"],"action":["FHIR:Search"],"effect":"Allow"}`)
			if rec := f.post(noPatients, "/Patient/$export", "application/fhir+json", params(patientParam(pids[0])...)); rec.Code != 403 {
				t.Errorf("patient by a principal that may not search Patient: %d %s", rec.Code, rec.Body)
			}

			tooMany := make([]string, 0, 3*(maxPatients+1))
			for i := range maxPatients + 1 {
				tooMany = append(tooMany, patientParam(fmt.Sprintf("p%d", i))...)
			}
			for _, tc := range []struct {
				name, target, ct, body string
				hdr                    []string
				want                   int
			}{
				{"form body", "/$export", "application/x-www-form-urlencoded", "_type=Patient", nil, 415},
				{"XML body", "/$export", "application/fhir+xml", `<Parameters xmlns="http://hl7.org/fhir"/>`, nil, 415},
				{"no Content-Type", "/$export", "", params("_type", "valueString", `"Patient"`), nil, 415},
				{"plain JSON", "/$export", "application/json", params("_type", "valueString", `"Patient"`), nil, 202},
				{"huge body", "/$export", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"` + strings.Repeat("Patient,", maxKickoffBody/8+1) + `Patient"}]}`, nil, 413},
				{"too many patients", "/Patient/$export", "application/fhir+json", params(tooMany...), nil, 400},
				{"empty body", "/$export", "application/fhir+json", "", nil, 400},
				{"not JSON", "/$export", "application/fhir+json", "{", nil, 400},
				{"two JSON values", "/$export", "application/fhir+json", `{"resourceType":"Parameters"} {}`, nil, 400},
				{"wrong resourceType", "/$export", "application/fhir+json", `{"resourceType":"Patient","parameter":[]}`, nil, 400},
				{"Bundle", "/$export", "application/fhir+json", `{"resourceType":"Bundle","type":"batch"}`, nil, 400},
				{"parameter without a name", "/$export", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"valueString":"Patient"}]}`, nil, 400},
				{"parameter without a value", "/$export", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"name":"_type"}]}`, nil, 400},
				{"two values", "/$export", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient","valueCode":"Patient"}]}`, nil, 400},
				{"resource value", "/$export", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"name":"_type","resource":{"resourceType":"Patient"}}]}`, nil, 400},
				{"object value", "/$export", "application/fhir+json", params("_type", "valueCoding", `{"code":"Patient"}`), nil, 400},
				{"unknown type", "/$export", "application/fhir+json", params("_type", "valueString", `"DROP TABLE"`), nil, 400},
				{"bad _since", "/$export", "application/fhir+json", params("_since", "valueInstant", `"yesterday"`), nil, 400},
				{"unknown parameter", "/$export", "application/fhir+json", params("_elements", "valueString", `"id"`), nil, 400},
				{"includeAssociatedData refused", "/$export", "application/fhir+json", params("includeAssociatedData", "valueCode", `"LatestProvenanceResources"`), nil, 400},
				{"unknown parameter, lenient", "/$export", "application/fhir+json", params("includeAssociatedData", "valueCode", `"x"`, "_type", "valueString", `"Patient"`),
					[]string{"Prefer", "respond-async, handling=lenient"}, 202},
				{"query beside the body", "/$export?_type=Patient", "application/fhir+json", params(), nil, 400},
				{"patient at system level", "/$export", "application/fhir+json", params(patientParam(pids[0])...), nil, 400},
				{"patient as a string", "/Patient/$export", "application/fhir+json", params("patient", "valueString", `"Patient/`+pids[0]+`"`), nil, 400},
				{"patient of another type", "/Patient/$export", "application/fhir+json", params("patient", "valueReference", `{"reference":"Group/`+group+`"}`), nil, 400},
				{"patient absolute", "/Patient/$export", "application/fhir+json", params("patient", "valueReference", `{"reference":"http://evil/Patient/1"}`), nil, 400},
				{"patient id traversal", "/Patient/$export", "application/fhir+json", params("patient", "valueReference", `{"reference":"Patient/../x"}`), nil, 400},
				{"patient unknown", "/Patient/$export", "application/fhir+json", params(patientParam("nope")...), nil, 400},
				{"patient outside the Group", "/Group/" + group + "/$export", "application/fhir+json", params(patientParam(pids[1])...), nil, 400},
				{"no Prefer", "/$export", "application/fhir+json", params(), []string{"Prefer", ""}, 400},
			} {
				rec := f.post(f.admin, tc.target, tc.ct, tc.body, tc.hdr...)
				if rec.Code != tc.want {
					t.Errorf("%s: %d, want %d: %.300s", tc.name, rec.Code, tc.want, rec.Body)
					continue
				}
				if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"OperationOutcome"`) {
					t.Errorf("%s: the error is not an OperationOutcome: %.300s", tc.name, rec.Body)
				}
				if rec.Code == 202 {
					f.runAll()
				}
			}
		})
	}
}
