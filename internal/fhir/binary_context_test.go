package fhir

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// A user whose policy allows Binary but only some of the resources Binaries
// name as their securityContext: searches leave the others out inside the
// SQL, so Bundle.total counts only what the caller sees and every page but
// the last is full (issue 29: the total counted them and pages came out
// short). The same holds for a system search and an export.
func TestBinarySearchTotals(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{DefaultCount: 20, MaxCount: 100})
			ctx := context.Background()
			create := func(typ, body string) string {
				t.Helper()
				r, _, err := f.svc.Create(ctx, f.admin, typ, []byte(body), "")
				if err != nil {
					t.Fatalf("create %s: %v", typ, err)
				}
				return r.ID
			}
			var pats []string
			for i := range 4 {
				pats = append(pats, create("Patient", fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"F%d"}]}`, i)))
			}
			drOK := create("DocumentReference", `{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"contentType":"text/plain"}}]}`)
			drHidden := create("DocumentReference", `{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"contentType":"text/plain"}}]}`)
			obs := create("Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`)
			name := "some-patients"
			policy := fmt.Sprintf(`{"rule":[{"resource":"FHIR:Binary:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"},`+
				`{"resource":"FHIR:Patient:*","action":["FHIR:Read"],"effect":"Allow","condition":"Patient?_id=%s,%s"},`+
				`{"resource":"FHIR:DocumentReference:*","action":["FHIR:Read"],"effect":"Allow"},`+
				`{"resource":"FHIR:DocumentReference:%s","action":["FHIR:Read"],"effect":"Deny"}]}`, pats[0], pats[1], drHidden)
			m, err := f.authz.CreateM2M(ctx, f.admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(policy)})
			if err != nil {
				t.Fatal(err)
			}
			user := auth.Principal{ProjectID: f.admin.ProjectID, Kind: auth.KindM2M, ID: m.ID}

			binary := func(context string) string {
				sc := ""
				if context != "" {
					sc = fmt.Sprintf(`,"securityContext":{"reference":%q}`, context)
				}
				return create("Binary", `{"resourceType":"Binary","contentType":"text/plain","data":"aGk="`+sc+`}`)
			}
			var visible, hidden []string
			for _, c := range []struct {
				context string
				shows   bool
			}{
				{"Patient/" + pats[0], true}, {"Patient/" + pats[0], true}, {"Patient/" + pats[1], true},
				{"Patient/" + pats[2], false}, {"Patient/" + pats[3], false}, // outside the condition
				{"", true},                                        // no context
				{"DocumentReference/" + drOK, true},               // read unconditionally
				{"DocumentReference/" + drHidden, false},          // a single-id Deny
				{"Observation/" + obs, false},                     // a type the user may not read
				{"http://elsewhere.example/fhir/Patient/x", true}, // not here: nothing to check
				{"Patient/" + pats[1] + "/_history/1", true},      // a version of a readable one
				{"Patient/" + pats[3] + "/_history/1", false},     // a version of a hidden one
			} {
				id := binary(c.context)
				if c.shows {
					visible = append(visible, id)
				} else {
					hidden = append(hidden, id)
				}
			}
			slices.Sort(visible)

			h := NewHandler(f.svc, "http://ward.test/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))
			get := func(p auth.Principal, target string) (total int, ids []string, next string) {
				t.Helper()
				rec := httptest.NewRecorder()
				h.ServeFHIR(rec, httptest.NewRequest("GET", target, nil), p)
				var b struct {
					Total int
					Link  []struct{ Relation, URL string }
					Entry []struct{ Resource struct{ ID string } }
				}
				if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &b) != nil {
					t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
				}
				for _, e := range b.Entry {
					ids = append(ids, e.Resource.ID)
				}
				for _, l := range b.Link {
					if l.Relation == "next" {
						next = l.URL
					}
				}
				return b.Total, ids, next
			}
			for _, start := range []string{"http://ward.test/fhir/Binary?_count=3", "http://ward.test/fhir?_type=Binary&_count=3"} {
				var all []string
				pages := 0
				for target := start; target != ""; pages++ {
					total, ids, next := get(user, target)
					if total != len(visible) {
						t.Errorf("%s: total %d, want %d (what the user sees)", target, total, len(visible))
					}
					if next != "" && len(ids) != 3 {
						t.Errorf("%s: a page of %d before the last, want 3", target, len(ids))
					}
					all = append(all, ids...)
					target = next
				}
				slices.Sort(all)
				if !slices.Equal(all, visible) || pages != 3 {
					t.Errorf("%s: %d pages of %v, want 3 of %v", start, pages, all, visible)
				}
			}
			if total, _, _ := get(user, "http://ward.test/fhir/Binary?_summary=count"); total != len(visible) {
				t.Errorf("_summary=count: %d, want %d", total, len(visible))
			}
			if total, _, _ := get(f.admin, "http://ward.test/fhir/Binary?_summary=count"); total != len(visible)+len(hidden) {
				t.Errorf("admin's count: %d, want %d", total, len(visible)+len(hidden))
			}
			// The context is a search parameter too.
			if total, ids, _ := get(user, "http://ward.test/fhir/Binary?securitycontext=Patient/"+pats[0]); total != 2 || len(ids) != 2 {
				t.Errorf("securitycontext=Patient/%s: total %d, %v", pats[0], total, ids)
			}
			if total, _, _ := get(user, "http://ward.test/fhir/Binary?securitycontext=Patient/"+pats[2]); total != 0 {
				t.Errorf("securitycontext of a hidden patient: total %d", total)
			}
			page, err := f.svc.ExportBatch(ctx, user, ExportScope{Type: "Binary"}, "", 100)
			if err != nil || len(page.Resources) != len(visible) {
				t.Errorf("export: %d resources, want %d (%v)", len(page.Resources), len(visible), err)
			}
		})
	}
}
