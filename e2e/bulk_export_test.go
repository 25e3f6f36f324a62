package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// bulkDo sends one FHIR request with a bearer token and returns the
// response with its body read.
func (w *ward) bulkDo(t *testing.T, tok, method, target, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = w.URL + "/fhir" + target
	}
	req, _ := http.NewRequest(method, target, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

var kickOff = []string{"Prefer", "respond-async", "Accept", "application/fhir+json"}

type exportManifest struct {
	TransactionTime     string `json:"transactionTime"`
	Request             string `json:"request"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
	Output              []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"output"`
	Error []any `json:"error"`
}

var progressRE = regexp.MustCompile(`(\d+) resources in (\d+) files`)

// TestBulkExport drives FHIR Bulk Data $export as a client does (kick-off,
// poll, download every file) against a real `ward serve`, killed and
// started again while a job runs.
func TestBulkExport(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			// Small files and a short lease: a job of a few thousand
			// resources spans hundreds of checkpoints, and a job whose
			// server was killed continues soon after the restart.
			w := startWardWith(t, b, "--export-file-resources", "10", "--export-lease", "2s")
			tok := w.token(t, w.Admin)

			// Data: 10 patients with 300 Observations and 2 Conditions
			// each, and Organizations in no patient's compartment.
			var pids []string
			for i := range 10 {
				res, body := w.bulkDo(t, tok, "POST", "/Patient", fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"Bulk%d"}]}`, i))
				var p struct{ ID string }
				if res.StatusCode != 201 || json.Unmarshal(body, &p) != nil {
					t.Fatalf("create patient: %d %s", res.StatusCode, body)
				}
				pids = append(pids, p.ID)
			}
			for _, pid := range pids {
				var entries []string
				for k := range 300 {
					entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"s","code":"c%d"}]},"subject":{"reference":"Patient/%s"}},"request":{"method":"POST","url":"Observation"}}`, k%3, pid))
				}
				for range 2 {
					entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Condition","subject":{"reference":"Patient/%s"}},"request":{"method":"POST","url":"Condition"}}`, pid))
				}
				entries = append(entries, `{"resource":{"resourceType":"Organization","name":"O"},"request":{"method":"POST","url":"Organization"}}`)
				res, body := w.bulkDo(t, tok, "POST", "", `{"resourceType":"Bundle","type":"batch","entry":[`+strings.Join(entries, ",")+`]}`)
				if res.StatusCode != 200 || strings.Contains(string(body), `"status":"4`) {
					t.Fatalf("seed batch: %d %.500s", res.StatusCode, body)
				}
			}
			count := func(tok, query string) int {
				t.Helper()
				res, body := w.bulkDo(t, tok, "GET", query+"&_summary=count", "")
				var b struct{ Total int }
				if res.StatusCode != 200 || json.Unmarshal(body, &b) != nil {
					t.Fatalf("count %s: %d %s", query, res.StatusCode, body)
				}
				return b.Total
			}
			kick := func(tok, path string) string {
				t.Helper()
				res, body := w.bulkDo(t, tok, "GET", path, "", kickOff...)
				if res.StatusCode != 202 || res.Header.Get("Content-Location") == "" {
					t.Fatalf("kick-off %s: %d %s", path, res.StatusCode, body)
				}
				return res.Header.Get("Content-Location")
			}
			poll := func(tok, status string) exportManifest {
				t.Helper()
				deadline := time.Now().Add(2 * time.Minute)
				for {
					res, body := w.bulkDo(t, tok, "GET", status, "")
					switch res.StatusCode {
					case 200:
						var m exportManifest
						if err := json.Unmarshal(body, &m); err != nil || !m.RequiresAccessToken || m.Error == nil {
							t.Fatalf("manifest: %v %s", err, body)
						}
						return m
					case 202:
						if res.Header.Get("Retry-After") == "" || !progressRE.MatchString(res.Header.Get("X-Progress")) {
							t.Fatalf("in progress without Retry-After or X-Progress: %v", res.Header)
						}
					default:
						t.Fatalf("status: %d %s", res.StatusCode, body)
					}
					if time.Now().After(deadline) {
						t.Fatal("the export did not finish in 2 minutes")
					}
					time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
				}
			}
			// download fetches every file with tok and counts lines by
			// type, failing on a line written twice.
			download := func(tok string, m exportManifest) map[string]int {
				t.Helper()
				out := map[string]int{}
				seen := map[string]bool{}
				for _, o := range m.Output {
					req, _ := http.NewRequest("GET", o.URL, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/fhir+ndjson" {
						res.Body.Close()
						t.Fatalf("download %s: %d", o.URL, res.StatusCode)
					}
					n := 0
					sc := bufio.NewScanner(res.Body)
					sc.Buffer(make([]byte, 1<<20), 1<<20)
					for sc.Scan() {
						var r struct{ ResourceType, ID string }
						if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ResourceType != o.Type {
							t.Fatalf("a line of %s: %v %.200s", o.Type, err, sc.Text())
						}
						if seen[r.ResourceType+"/"+r.ID] {
							t.Fatalf("%s/%s written twice", r.ResourceType, r.ID)
						}
						seen[r.ResourceType+"/"+r.ID] = true
						n++
					}
					res.Body.Close()
					if n != o.Count {
						t.Fatalf("%s: %d lines, the manifest says %d", o.URL, n, o.Count)
					}
					out[o.Type] += n
				}
				return out
			}
			want := map[string]int{
				"Observation":  count(tok, "/Observation?"),
				"Patient":      count(tok, "/Patient?"),
				"Condition":    count(tok, "/Condition?"),
				"Organization": count(tok, "/Organization?"),
			}
			if want["Observation"] != 3000 {
				t.Fatalf("seeded %d Observations", want["Observation"])
			}

			// A system export, its server killed mid-way: started again on
			// the same data, the job continues from its last file.
			status := kick(tok, "/$export?_type=Observation,Patient,Condition,Organization")
			deadline := time.Now().Add(time.Minute)
			for {
				res, _ := w.bulkDo(t, tok, "GET", status, "")
				if res.StatusCode == 200 {
					t.Fatal("the export finished before the server could be killed mid-way: seed more data")
				}
				if m := progressRE.FindStringSubmatch(res.Header.Get("X-Progress")); m != nil && m[1] != "0" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the export did not start in a minute")
				}
				time.Sleep(2 * time.Millisecond) // polling interval, bounded by the deadline
			}
			w.kill9(t)
			w.launch(t)
			tok = w.token(t, w.Admin)
			if res, _ := w.bulkDo(t, tok, "GET", status, ""); res.StatusCode != 202 {
				t.Fatalf("status after the restart: %d, want 202 (still running)", res.StatusCode)
			}
			m := poll(tok, status)
			if got := download(tok, m); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("system export after a restart: %v, searches count %v", got, want)
			}

			// The files need the token of the principal that asked.
			if res, _ := w.bulkDo(t, "", "GET", m.Output[0].URL, ""); res.StatusCode != 401 {
				t.Errorf("download without a token: %d", res.StatusCode)
			}
			other := w.createProject(t, "other")
			otherTok := w.token(t, other)
			for _, u := range []string{status, m.Output[0].URL} {
				if res, _ := w.bulkDo(t, otherTok, "GET", u, ""); res.StatusCode != 404 {
					t.Errorf("another project's GET %s: %d, want 404", u, res.StatusCode)
				}
			}

			// A principal without access to Observations: no Observation
			// lines, no Observation file.
			var role struct{ ID string }
			if st := w.api(t, tok, "POST", "/iam/role", `{"name":"no-obs","accessPolicy":{"rule":[{"resource":["FHIR:Patient:*","FHIR:Condition:*","FHIR:Organization:*"],"action":["FHIR:Search","FHIR:Read"],"effect":"Allow"}]}}`, &role); st != 200 {
				t.Fatalf("create role: %d", st)
			}
			limited := newClient(t, w, tok, `{"name":"limited","roles":["`+role.ID+`"]}`)
			limitedTok := w.token(t, limited.creds)
			lm := poll(limitedTok, kick(limitedTok, "/$export"))
			got := download(limitedTok, lm)
			if got["Observation"] != 0 || got["Patient"] != want["Patient"] || got["Condition"] != want["Condition"] {
				t.Errorf("limited export: %v", got)
			}
			for _, o := range lm.Output {
				if o.Type == "Observation" {
					t.Errorf("limited export has an Observation file: %s", o.URL)
				}
			}
			if res, _ := w.bulkDo(t, limitedTok, "GET", m.Output[0].URL, ""); res.StatusCode != 404 {
				t.Errorf("another principal's file: %d, want 404", res.StatusCode)
			}
			if res, body := w.bulkDo(t, limitedTok, "GET", "/$export?_type=Observation", "", kickOff...); res.StatusCode != 403 {
				t.Errorf("limited asking for Observations: %d %s", res.StatusCode, body)
			}

			// Patient level: the compartments of every patient.
			got = download(tok, poll(tok, kick(tok, "/Patient/$export")))
			if got["Observation"] != want["Observation"] || got["Patient"] != 10 || got["Condition"] != 20 || got["Organization"] != 0 {
				t.Errorf("Patient-level export: %v", got)
			}
			// Group: its members' compartments, as a search of the same
			// scope counts them.
			res, body := w.bulkDo(t, tok, "POST", "/Group", fmt.Sprintf(`{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/%s"}},{"entity":{"reference":"Patient/%s"}}]}`, pids[2], pids[7]))
			var g struct{ ID string }
			if res.StatusCode != 201 || json.Unmarshal(body, &g) != nil {
				t.Fatalf("create group: %d %s", res.StatusCode, body)
			}
			got = download(tok, poll(tok, kick(tok, "/Group/"+g.ID+"/$export?_type=Observation,Condition&_typeFilter="+
				"Observation%3Fcode%3Ds%7Cc1")))
			members := "Patient/" + pids[2] + ",Patient/" + pids[7]
			wantObs, wantCond := count(tok, "/Observation?code=s%7Cc1&subject="+members), count(tok, "/Condition?subject="+members)
			if got["Observation"] != wantObs || got["Condition"] != wantCond || wantObs != 200 {
				t.Errorf("Group export: %v, searches count %d Observations, %d Conditions", got, wantObs, wantCond)
			}

			// POST kick-off (IG 2.0): a Parameters body, with the patient
			// parameter narrowing a Patient export to two patients and a
			// Group export to one member; counts as searches of the same
			// scope.
			kickPost := func(tok, path, body string) string {
				t.Helper()
				res, rb := w.bulkDo(t, tok, "POST", path, body, kickOff...)
				if res.StatusCode != 202 || res.Header.Get("Content-Location") == "" {
					t.Fatalf("POST kick-off %s: %d %s", path, res.StatusCode, rb)
				}
				return res.Header.Get("Content-Location")
			}
			ref := func(pid string) string {
				return `{"name":"patient","valueReference":{"reference":"Patient/` + pid + `"}}`
			}
			pm := poll(tok, kickPost(tok, "/Patient/$export", `{"resourceType":"Parameters","parameter":[`+
				`{"name":"_type","valueString":"Patient,Observation"},`+ref(pids[1])+`,`+ref(pids[4])+`]}`))
			if pm.Request != w.URL+"/fhir/Patient/$export" {
				t.Errorf("POST manifest request %q", pm.Request)
			}
			two := "Patient/" + pids[1] + ",Patient/" + pids[4]
			got = download(tok, pm)
			if wantObs := count(tok, "/Observation?subject="+two); got["Observation"] != wantObs || got["Patient"] != 2 || wantObs != 600 {
				t.Errorf("POST Patient export of two patients: %v, a search counts %d Observations", got, wantObs)
			}
			got = download(tok, poll(tok, kickPost(tok, "/Group/"+g.ID+"/$export", `{"resourceType":"Parameters","parameter":[`+
				`{"name":"_type","valueString":"Condition"},`+ref(pids[7])+`]}`)))
			if wantCond := count(tok, "/Condition?subject=Patient/"+pids[7]); got["Condition"] != wantCond || len(got) != 1 {
				t.Errorf("POST Group export of one member: %v, a search counts %d Conditions", got, wantCond)
			}
			for name, tc := range map[string]struct {
				path, body, ct string
				want           int
			}{
				"form body":          {"/$export", "_type=Patient", "application/x-www-form-urlencoded", 415},
				"not Parameters":     {"/$export", `{"resourceType":"Patient"}`, "", 400},
				"another's patient":  {"/Patient/$export", `{"resourceType":"Parameters","parameter":[` + ref("nope") + `]}`, "", 400},
				"not a Group member": {"/Group/" + g.ID + "/$export", `{"resourceType":"Parameters","parameter":[` + ref(pids[0]) + `]}`, "", 400},
				"huge body":          {"/$export", `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"` + strings.Repeat("Patient,", 200000) + `Patient"}]}`, "", 413},
			} {
				hdr := kickOff
				if tc.ct != "" {
					hdr = append(append([]string{}, kickOff...), "Content-Type", tc.ct)
				}
				res, body := w.bulkDo(t, tok, "POST", tc.path, tc.body, hdr...)
				if res.StatusCode != tc.want || !strings.Contains(string(body), "OperationOutcome") {
					t.Errorf("POST %s: %d %.300s, want %d", name, res.StatusCode, body, tc.want)
				}
			}

			// Cancel: 202, then the status URL is gone.
			status = kick(tok, "/$export?_type=Observation")
			if res, body := w.bulkDo(t, tok, "DELETE", status, ""); res.StatusCode != 202 {
				t.Fatalf("cancel: %d %s", res.StatusCode, body)
			}
			if res, _ := w.bulkDo(t, tok, "GET", status, ""); res.StatusCode != 404 {
				t.Errorf("status after cancel: %d, want 404", res.StatusCode)
			}

			// Bad requests are OperationOutcomes.
			for q, hdr := range map[string][]string{
				"/$export":                   {"Accept", "application/fhir+json"},
				"/$export?_outputFormat=csv": kickOff,
				"/$export?_since=yesterday":  kickOff,
				"/$export?_type=Patient&_typeFilter=Observation%3Fcode%3Dx": kickOff,
			} {
				res, body := w.bulkDo(t, tok, "GET", q, "", hdr...)
				if res.StatusCode != 400 || !strings.Contains(string(body), "OperationOutcome") {
					t.Errorf("%s: %d %s", q, res.StatusCode, body)
				}
			}
		})
	}
}
