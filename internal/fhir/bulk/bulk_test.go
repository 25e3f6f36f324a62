package bulk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/iam/iamtest"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/z3/blob"
)

const base = "http://ward.test/fhir"

// fixture is a store on one backend with a project, the IAM and FHIR
// services, real Z3 storage, and the export service on the FHIR handler.
type fixture struct {
	t      testing.TB
	st     *store.Store
	authz  *iam.Service
	fsvc   *fhir.Service
	h      *fhir.Handler
	svc    *Service
	files  *hookFiles
	z3     *z3.Service
	admin  auth.Principal
	offset atomic.Int64 // added to the clock (lease expiry)
}

// hookFiles is Z3's export store with a hook before each put (to fail one,
// or to act while a job runs).
type hookFiles struct {
	z3.Exports
	mu     sync.Mutex
	puts   int
	before func(n int) error
}

func (f *hookFiles) PutExport(ctx context.Context, projectID, path string, r io.Reader) error {
	f.mu.Lock()
	f.puts++
	n, hook := f.puts, f.before
	f.mu.Unlock()
	if hook != nil {
		if err := hook(n); err != nil {
			return err
		}
	}
	return f.Exports.PutExport(ctx, projectID, path, r)
}

func newFixture(t testing.TB, b storetest.Backend, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t}
	f.st = storetest.Open(t, b)
	f.authz = iam.New(f.st, "http://x/invite/", time.Now, iam.Deps{})
	f.admin = iamtest.Project(t, f.authz, f.st, "test")
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if f.z3, err = z3.New(ctx, z3.Config{PublicURL: "http://ward.test"}, f.st, sealtest.Setup(t, f.st), blobs, time.Now, log); err != nil {
		t.Fatal(err)
	}
	f.files = &hookFiles{Exports: f.z3.Exports()}
	f.fsvc = fhir.New(f.st, f.authz, fhir.Config{DefaultCount: 20, MaxCount: 1000}, time.Now)
	f.h = fhir.NewHandler(f.fsvc, base, log)
	now := func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }
	f.svc = New(cfg, f.st, f.fsvc, f.files, now, log)
	f.svc.Register(f.h)
	return f
}

// m2m makes a principal of the project with the policy's rules.
func (f *fixture) m2m(name, rules string) auth.Principal {
	f.t.Helper()
	m, err := f.authz.CreateM2M(context.Background(), f.admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(`{"rule":[` + rules + `]}`)})
	if err != nil {
		f.t.Fatal(err)
	}
	return auth.Principal{ProjectID: f.admin.ProjectID, Kind: auth.KindM2M, ID: m.ID}
}

func (f *fixture) create(typ, body string) string {
	f.t.Helper()
	r, _, err := f.fsvc.Create(context.Background(), f.admin, typ, []byte(body), "")
	if err != nil {
		f.t.Fatalf("create %s: %v", typ, err)
	}
	return r.ID
}

// do serves one request as p.
func (f *fixture) do(p auth.Principal, method, target string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = base + target
	}
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeFHIR(rec, req, p)
	return rec
}

var kickHeaders = []string{"Prefer", "respond-async", "Accept", "application/fhir+json"}

// kick starts an export and returns its status URL.
func (f *fixture) kick(p auth.Principal, path string) string {
	f.t.Helper()
	rec := f.do(p, "GET", path, kickHeaders...)
	if rec.Code != http.StatusAccepted || rec.Header().Get("Content-Location") == "" {
		f.t.Fatalf("kick-off %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Header().Get("Content-Location")
}

// runAll runs jobs until none is left to claim.
func (f *fixture) runAll() {
	f.t.Helper()
	for {
		ran, err := f.svc.RunOnce(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		if !ran {
			return
		}
	}
}

// export runs a whole export as p and returns its lines by type (ids),
// failing on a repeated line.
func (f *fixture) export(p auth.Principal, path string) (map[string][]string, manifest) {
	f.t.Helper()
	status := f.kick(p, path)
	f.runAll()
	rec := f.do(p, "GET", status)
	if rec.Code != http.StatusOK {
		f.t.Fatalf("status of %s: %d %s", path, rec.Code, rec.Body)
	}
	var m manifest
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		f.t.Fatal(err)
	}
	if !m.RequiresAccessToken || m.TransactionTime == "" || !strings.HasSuffix(m.Request, path) {
		f.t.Fatalf("manifest: %+v", m)
	}
	return f.lines(p, m), m
}

func (f *fixture) lines(p auth.Principal, m manifest) map[string][]string {
	f.t.Helper()
	out := map[string][]string{}
	seen := map[string]bool{}
	for _, o := range m.Output {
		rec := f.do(p, "GET", o.URL)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/fhir+ndjson" {
			f.t.Fatalf("download %s: %d %s", o.URL, rec.Code, rec.Body)
		}
		n := 0
		sc := bufio.NewScanner(rec.Body)
		for sc.Scan() {
			var r struct{ ResourceType, ID string }
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ResourceType != o.Type {
				f.t.Fatalf("line of %s: %q %v", o.Type, sc.Text(), err)
			}
			if k := r.ResourceType + "/" + r.ID; seen[k] {
				f.t.Fatalf("%s written twice", k)
			} else {
				seen[k] = true
			}
			out[o.Type] = append(out[o.Type], r.ID)
			n++
		}
		if n != o.Count {
			f.t.Fatalf("%s holds %d lines, the manifest says %d", o.URL, n, o.Count)
		}
	}
	return out
}

func counts(lines map[string][]string) map[string]int {
	out := map[string]int{}
	for k, v := range lines {
		out[k] = len(v)
	}
	return out
}

func sameCounts(t *testing.T, what string, got map[string][]string, want map[string]int) {
	t.Helper()
	c := counts(got)
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("%s: counts %v, want %v", what, c, want)
	}
}

// seed makes 5 patients with 7 Observations (codes a and b alternating)
// and 2 Conditions each, and 3 Organizations (in no patient's
// compartment). It returns the patients' ids.
func (f *fixture) seed() []string {
	var pids []string
	for i := range 5 {
		pid := f.create("Patient", fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"P%d"}]}`, i))
		pids = append(pids, pid)
		for k := range 7 {
			code := []string{"a", "b"}[k%2]
			f.create("Observation", fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"s","code":%q}]},"subject":{"reference":"Patient/%s"}}`, code, pid))
		}
		for range 2 {
			f.create("Condition", fmt.Sprintf(`{"resourceType":"Condition","subject":{"reference":"Patient/%s"}}`, pid))
		}
	}
	for i := range 3 {
		f.create("Organization", fmt.Sprintf(`{"resourceType":"Organization","name":"O%d"}`, i))
	}
	return pids
}

func TestExport(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{FileResources: 4, Batch: 3})
			pids := f.seed()

			got, m := f.export(f.admin, "/$export?_type=Patient,Observation,Condition,Organization")
			sameCounts(t, "system", got, map[string]int{"Patient": 5, "Observation": 35, "Condition": 10, "Organization": 3})
			if files := len(m.Output); files != 2+9+3+1 {
				t.Errorf("%d files, want 15 (at most 4 resources each)", files)
			}
			// Without _type: every type the admin may search.
			got, _ = f.export(f.admin, "/$export")
			sameCounts(t, "system, every type", got, map[string]int{"Patient": 5, "Observation": 35, "Condition": 10, "Organization": 3})

			// An Observation about a device is in no patient's compartment.
			f.create("Observation", `{"resourceType":"Observation","status":"final","code":{"text":"battery"},"subject":{"reference":"Device/d1"}}`)
			got, _ = f.export(f.admin, "/Patient/$export")
			sameCounts(t, "Patient level", got, map[string]int{"Patient": 5, "Observation": 35, "Condition": 10})

			group := f.create("Group", fmt.Sprintf(`{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/%s"}},{"entity":{"reference":"Patient/%s"}},{"entity":{"reference":"Organization/x"}}]}`, pids[0], pids[3]))
			got, _ = f.export(f.admin, "/Group/"+group+"/$export")
			// The Group is in its members' compartments (Group.member).
			sameCounts(t, "Group", got, map[string]int{"Patient": 2, "Observation": 14, "Condition": 4, "Group": 1})
			empty := f.create("Group", `{"resourceType":"Group","type":"person","actual":true}`)
			got, _ = f.export(f.admin, "/Group/"+empty+"/$export")
			sameCounts(t, "empty Group", got, map[string]int{})

			got, _ = f.export(f.admin, "/$export?_type=Observation&_typeFilter=Observation%3Fcode%3Da")
			sameCounts(t, "_typeFilter", got, map[string]int{"Observation": 20})
			got, _ = f.export(f.admin, "/$export?_type=Observation,Condition&_typeFilter=Observation%3Fcode%3Db,Observation%3Fsubject%3DPatient/"+pids[0])
			sameCounts(t, "two _typeFilters (ORed)", got, map[string]int{"Observation": 15 + 4, "Condition": 10})

			since := time.Now().UTC()
			f.create("Observation", fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"late"},"subject":{"reference":"Patient/%s"}}`, pids[1]))
			got, _ = f.export(f.admin, "/$export?_type=Observation,Patient&_since="+since.Format(time.RFC3339Nano))
			sameCounts(t, "_since", got, map[string]int{"Observation": 1})

			// A principal that may not search Observations gets none, and
			// no Observation file; asking for them is a 403.
			limited := f.m2m("limited", `{"resource":["FHIR:Patient:*","FHIR:Condition:*"],"action":["FHIR:Search","FHIR:Read"],"effect":"Allow"}`)
			got, _ = f.export(limited, "/$export")
			sameCounts(t, "limited", got, map[string]int{"Patient": 5, "Condition": 10})
			if rec := f.do(limited, "GET", "/$export?_type=Observation", kickHeaders...); rec.Code != 403 {
				t.Errorf("limited asking for Observation: %d %s", rec.Code, rec.Body)
			}
			// Conditions of the policy hold: only Conditions of patient 2.
			cond := f.m2m("conditional", fmt.Sprintf(`{"resource":["FHIR:Condition:*"],"action":["FHIR:Search"],"effect":"Allow","condition":"Condition?subject=Patient/%s"}`, pids[2]))
			got, _ = f.export(cond, "/$export")
			sameCounts(t, "conditional", got, map[string]int{"Condition": 2})
			// Group export needs FHIR:Export on the Group.
			if rec := f.do(limited, "GET", "/Group/"+group+"/$export", kickHeaders...); rec.Code != 403 {
				t.Errorf("Group export without FHIR:Export: %d %s", rec.Code, rec.Body)
			}
			exporter := f.m2m("exporter", `{"resource":["FHIR:Group:*"],"action":["FHIR:Export"],"effect":"Allow"},{"resource":["FHIR:Patient:*"],"action":["FHIR:Search"],"effect":"Allow"}`)
			got, _ = f.export(exporter, "/Group/"+group+"/$export")
			sameCounts(t, "Group export with FHIR:Export", got, map[string]int{"Patient": 2})
		})
	}
}

// A job that stops mid-way (a failed file write here, a crash in the e2e
// test) continues from its last checkpoint once its lease runs out, and
// writes no line twice.
func TestExportResumes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{FileResources: 4, Batch: 3, Lease: time.Minute})
			f.seed()
			status := f.kick(f.admin, "/$export?_type=Observation,Condition")
			f.files.before = func(n int) error {
				if n == 4 {
					return fmt.Errorf("disk full")
				}
				return nil
			}
			if ran, err := f.svc.RunOnce(context.Background()); !ran || err == nil {
				t.Fatalf("run with a failing write: %v %v", ran, err)
			}
			if rec := f.do(f.admin, "GET", status); rec.Code != 202 || !strings.Contains(rec.Header().Get("X-Progress"), "12 resources in 3 files") {
				t.Fatalf("status after the failure: %d %q", rec.Code, rec.Header().Get("X-Progress"))
			}
			// The lease holds: nobody takes the job before it runs out.
			if ran, err := f.svc.RunOnce(context.Background()); ran || err != nil {
				t.Fatalf("claim under the lease: %v %v", ran, err)
			}
			f.offset.Store(int64(2 * time.Minute))
			f.runAll()
			rec := f.do(f.admin, "GET", status)
			var m manifest
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
				t.Fatalf("status: %d %s", rec.Code, rec.Body)
			}
			sameCounts(t, "resumed", f.lines(f.admin, m), map[string]int{"Observation": 35, "Condition": 10})
		})
	}
}

// Cancelling deletes the job and its files, also while a runner writes:
// the runner's next checkpoint fails and it deletes the file it wrote.
func TestExportCancel(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{FileResources: 4, Batch: 4})
			f.seed()
			status := f.kick(f.admin, "/$export?_type=Observation")
			f.files.before = func(n int) error {
				if n == 3 {
					if rec := f.do(f.admin, "DELETE", status); rec.Code != 202 {
						t.Errorf("cancel: %d %s", rec.Code, rec.Body)
					}
				}
				return nil
			}
			f.runAll()
			if rec := f.do(f.admin, "GET", status); rec.Code != 404 {
				t.Errorf("status after cancel: %d %s", rec.Code, rec.Body)
			}
			if rec := f.do(f.admin, "DELETE", status); rec.Code != 404 {
				t.Errorf("second cancel: %d %s", rec.Code, rec.Body)
			}
			objs, err := f.st.ListObjects(context.Background(), f.admin.ProjectID, "_fhir-export", "", 0)
			if err != nil || len(objs) != 0 {
				t.Errorf("files left after cancel: %d %v", len(objs), err)
			}
		})
	}
}

// A job acts as its principal when it runs: one that lost its access (or
// was deleted) fails the job, which keeps no output.
func TestExportRevoked(t *testing.T) {
	f := newFixture(t, storetest.Backends()[0], Config{FileResources: 4})
	f.seed()
	p := f.m2m("reader", `{"resource":["FHIR:*"],"action":["FHIR:Search","FHIR:Read"],"effect":"Allow"}`)
	status := f.kick(p, "/$export?_type=Observation")
	if err := f.authz.DeleteM2M(context.Background(), p.ProjectID, p.ID); err != nil {
		t.Fatal(err)
	}
	f.runAll()
	sj, err := f.st.GetExportJob(context.Background(), p.ProjectID, status[strings.LastIndexByte(status, '/')+1:])
	if err != nil || sj.Status != store.ExportFailed || sj.ErrorStatus != 403 {
		t.Fatalf("job of a deleted principal: %+v %v", sj, err)
	}
	objs, err := f.st.ListObjects(context.Background(), f.admin.ProjectID, "_fhir-export", "", 0)
	if err != nil || len(objs) != 0 {
		t.Errorf("files left by a failed job: %d %v", len(objs), err)
	}
}

func TestExportHostile(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{})
			f.seed()
			status := f.kick(f.admin, "/$export?_type=Patient")
			f.runAll()
			var m manifest
			_ = json.Unmarshal(f.do(f.admin, "GET", status).Body.Bytes(), &m)
			if len(m.Output) != 1 {
				t.Fatalf("manifest: %+v", m)
			}
			file := m.Output[0].URL

			huge := strings.Repeat("Patient,", 10000) + "Patient"
			bogus := strings.Repeat("Nope,", 10000)
			for _, tc := range []struct {
				name, target string
				hdr          []string
				want         int
			}{
				{"no Prefer", "/$export", []string{"Accept", "application/fhir+json"}, 400},
				{"no Accept", "/$export", []string{"Prefer", "respond-async"}, 400},
				{"Accept ndjson", "/$export", []string{"Prefer", "respond-async", "Accept", "application/fhir+ndjson"}, 400},
				{"bad _outputFormat", "/$export?_outputFormat=text/csv", kickHeaders, 400},
				{"ndjson _outputFormat", "/$export?_outputFormat=ndjson", kickHeaders, 202},
				{"malformed _since", "/$export?_since=yesterday", kickHeaders, 400},
				{"_since without zone", "/$export?_since=2026-01-01T00:00:00", kickHeaders, 400},
				{"_since twice", "/$export?_since=2026-01-01T00:00:00Z&_since=2026-01-01T00:00:00Z", kickHeaders, 400},
				{"_typeFilter outside _type", "/$export?_type=Patient&_typeFilter=Observation%3Fcode%3Da", kickHeaders, 400},
				{"_typeFilter without ?", "/$export?_typeFilter=Observation", kickHeaders, 400},
				{"_typeFilter unknown param", "/$export?_typeFilter=Observation%3Fnope%3D1", kickHeaders, 400},
				{"_typeFilter _count", "/$export?_typeFilter=Observation%3F_count%3D1", kickHeaders, 400},
				{"_typeFilter not in compartment", "/Patient/$export?_typeFilter=Organization%3Fname%3Dx", kickHeaders, 400},
				{"huge _type of one type", "/$export?_type=" + huge, kickHeaders, 202},
				{"huge _type of unknown types", "/$export?_type=" + bogus, kickHeaders, 400},
				{"unknown type", "/$export?_type=Patient,DROP%20TABLE", kickHeaders, 400},
				{"type outside the compartment", "/Patient/$export?_type=Organization", kickHeaders, 400},
				{"unsupported parameter", "/$export?patient=Patient/1", kickHeaders, 400},
				{"unsupported parameter, lenient", "/$export?patient=Patient/1", []string{"Prefer", "respond-async, handling=lenient", "Accept", "application/fhir+json"}, 202},
				{"PUT kick-off", "/$export", kickHeaders, 0},
				{"unknown Group", "/Group/nope/$export", kickHeaders, 404},
				{"malformed Group id", "/Group/..%2F..%2Fx/$export", kickHeaders, 404},
				{"unknown job", "/$export-poll/00000000-0000-0000-0000-000000000000", nil, 404},
				{"malformed job", "/$export-poll/'%20OR%201=1", nil, 404},
				{"job path traversal", "/$export-file/../../x/0", nil, 404},
				{"file not a number", strings.TrimSuffix(file, "/0") + "/zero", nil, 404},
				{"file out of range", strings.TrimSuffix(file, "/0") + "/9", nil, 404},
			} {
				method := "GET"
				if tc.want == 0 {
					method, tc.want = "PUT", 501
				}
				rec := f.do(f.admin, method, tc.target, tc.hdr...)
				if rec.Code != tc.want {
					t.Errorf("%s: %d, want %d: %.300s", tc.name, rec.Code, tc.want, rec.Body)
					continue
				}
				if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"OperationOutcome"`) {
					t.Errorf("%s: the error is not an OperationOutcome: %s", tc.name, rec.Body)
				}
			}

			// Another project never sees the job or its files, nor does
			// another principal of the same project.
			stranger := iamtest.Project(t, f.authz, f.st, "other")
			colleague := f.m2m("colleague", `{"resource":["FHIR:*"],"action":["FHIR:*"],"effect":"Allow"}`)
			for _, p := range []auth.Principal{stranger, colleague} {
				for _, req := range [][2]string{{"GET", status}, {"GET", file}, {"DELETE", status}} {
					if rec := f.do(p, req[0], req[1]); rec.Code != 404 {
						t.Errorf("%s %s by %s: %d %s", req[0], req[1], p.ProjectID, rec.Code, rec.Body)
					}
				}
			}
			if rec := f.do(f.admin, "GET", file); rec.Code != 200 || bytes.Count(rec.Body.Bytes(), []byte("\n")) != 5 {
				t.Errorf("the owner's download after the attempts: %d", rec.Code)
			}
		})
	}
}

// A SMART token's scopes narrow the export as they narrow a search, and
// the CapabilityStatement lists the operations.
func TestExportScopesAndCapability(t *testing.T) {
	f := newFixture(t, storetest.Backends()[0], Config{})
	f.seed()
	scoped := f.admin
	scoped.Scopes = []string{"system/Condition.rs", "system/Patient.r"}
	got, _ := f.export(scoped, "/$export")
	sameCounts(t, "system/Condition.rs", got, map[string]int{"Condition": 10})
	if rec := f.do(scoped, "GET", "/$export?_type=Observation", kickHeaders...); rec.Code != 403 {
		t.Errorf("a type outside the scopes: %d %s", rec.Code, rec.Body)
	}

	rec := f.do(auth.Principal{}, "GET", "/metadata")
	for _, want := range []string{"http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data",
		"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
		"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
		"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("the CapabilityStatement lacks %s", want)
		}
	}
}

// A project has at most MaxRunning exports running; finished ones are
// deleted with their files after Keep.
func TestExportLimitAndExpiry(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{MaxRunning: 2, Keep: time.Hour})
			f.seed()
			first := f.kick(f.admin, "/$export?_type=Patient")
			f.kick(f.admin, "/$export?_type=Condition")
			rec := f.do(f.admin, "GET", "/$export?_type=Patient", kickHeaders...)
			if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("a third running export: %d %v %s", rec.Code, rec.Header(), rec.Body)
			}
			f.runAll()
			f.kick(f.admin, "/$export?_type=Patient") // room again
			f.runAll()
			if n, err := f.svc.Expire(context.Background()); n != 0 || err != nil {
				t.Fatalf("expire before Keep: %d %v", n, err)
			}
			f.offset.Store(int64(2 * time.Hour))
			if n, err := f.svc.Expire(context.Background()); n != 3 || err != nil {
				t.Fatalf("expire after Keep: %d %v", n, err)
			}
			if rec := f.do(f.admin, "GET", first); rec.Code != 404 {
				t.Errorf("an expired job's status: %d", rec.Code)
			}
			objs, err := f.st.ListObjects(context.Background(), f.admin.ProjectID, "_fhir-export", "", 0)
			if err != nil || len(objs) != 0 {
				t.Errorf("files left after expiry: %d %v", len(objs), err)
			}
		})
	}
}

// A graceful stop releases the job at once: any replica continues it
// without waiting for the lease, from the last file recorded.
func TestExportReleasedOnStop(t *testing.T) {
	f := newFixture(t, storetest.Backends()[0], Config{FileResources: 4, Batch: 4, Lease: time.Hour})
	f.seed()
	status := f.kick(f.admin, "/$export?_type=Observation")
	ctx, stop := context.WithCancel(context.Background())
	f.files.before = func(n int) error {
		if n == 3 {
			stop()
		}
		return nil
	}
	if ran, err := f.svc.RunOnce(ctx); !ran || err != nil {
		t.Fatalf("a stopped run: %v %v", ran, err)
	}
	f.files.before = nil
	sj, err := f.st.GetExportJob(context.Background(), f.admin.ProjectID, status[strings.LastIndexByte(status, '/')+1:])
	if err != nil || sj.Status != store.ExportRunning || sj.LeaseOwner != "" || sj.Written != 8 {
		t.Fatalf("the stopped job: %+v %v", sj, err)
	}
	f.runAll() // no clock change: the lease was given back
	rec := f.do(f.admin, "GET", status)
	var m manifest
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
		t.Fatalf("status: %d %s", rec.Code, rec.Body)
	}
	sameCounts(t, "after a stop", f.lines(f.admin, m), map[string]int{"Observation": 35})
}

// GET $export-poll lists the caller's own jobs, newest first, with
// progress or error; another principal's jobs are not in it.
func TestExportList(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{FileResources: 4, Batch: 4})
			f.seed()
			first := f.kick(f.admin, "/$export?_type=Patient")
			f.runAll()
			second := f.kick(f.admin, "/$export?_type=Observation")
			other := f.m2m("other", `{"resource":["FHIR:*"],"action":["FHIR:Search","FHIR:Read"],"effect":"Allow"}`)
			theirs := f.kick(other, "/$export?_type=Patient")
			list := func(p auth.Principal) []jobItem {
				t.Helper()
				rec := f.do(p, "GET", base+"/$export-poll")
				var out struct{ Jobs []jobItem }
				if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
					t.Fatalf("list: %d %s", rec.Code, rec.Body)
				}
				return out.Jobs
			}
			jobs := list(f.admin)
			if len(jobs) != 2 || jobs[0].StatusURL != second || jobs[1].StatusURL != first {
				t.Fatalf("admin's jobs: %+v (want %s, %s)", jobs, second, first)
			}
			if jobs[0].Status != "running" || !strings.Contains(jobs[0].Progress, "Observation") || jobs[1].Status != "done" || jobs[1].Written == 0 {
				t.Errorf("admin's jobs: %+v", jobs)
			}
			if got := list(other); len(got) != 1 || got[0].StatusURL != theirs {
				t.Errorf("other's jobs: %+v, want only %s", got, theirs)
			}
			// Pages: _count and _offset, the total in each.
			rec := f.do(f.admin, "GET", base+"/$export-poll?_count=1&_offset=1")
			var page struct {
				Total int
				Jobs  []jobItem
			}
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &page) != nil || page.Total != 2 || len(page.Jobs) != 1 || page.Jobs[0].StatusURL != first {
				t.Errorf("second page of one: %d %s", rec.Code, rec.Body)
			}
			for _, q := range []string{"_count=0", "_count=1001", "_count=x", "_offset=-1"} {
				if rec := f.do(f.admin, "GET", base+"/$export-poll?"+q); rec.Code != 400 {
					t.Errorf("%s: %d %s", q, rec.Code, rec.Body)
				}
			}
		})
	}
}
