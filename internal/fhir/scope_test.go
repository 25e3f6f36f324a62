package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestScopes checks that SMART scopes narrow a principal's policy: each
// permission letter and v1 form against the interactions it allows, the
// patient compartment with correct totals, ?filter scopes, and scopes
// meeting a policy condition.
func TestScopes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, b, Config{})
			svc, admin := f.svc, f.admin
			put := func(body string) {
				t.Helper()
				var m map[string]any
				_ = json.Unmarshal([]byte(body), &m)
				if _, _, err := svc.Update(ctx, admin, m["resourceType"].(string), m["id"].(string), []byte(body), ""); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{"p1", "p2"} {
				put(`{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Scope"}]}`)
				for i, cat := range []string{"laboratory", "vital-signs", "laboratory"} {
					put(`{"resourceType":"Observation","id":"o-` + id + `-` + string(rune('a'+i)) + `","status":"final","code":{"text":"x"},` +
						`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"` + cat + `"}]}],` +
						`"subject":{"reference":"Patient/` + id + `"}}`)
				}
			}
			put(`{"resourceType":"Medication","id":"m1","code":{"text":"aspirin"}}`)

			// The principal's policy allows everything (or a condition);
			// only the scopes differ between cases.
			principal := func(policy, scopes, patient string) auth.Principal {
				name := "s" + time.Now().Format("150405.000000000")
				m, err := f.authz.CreateM2M(ctx, admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(policy)})
				if err != nil {
					t.Fatal(err)
				}
				return auth.Principal{ProjectID: admin.ProjectID, Kind: auth.KindM2M, ID: m.ID, Scopes: strings.Fields(scopes), Patient: patient}
			}
			const all = `{"rule":[{"resource":"FHIR:*","action":"FHIR:*","effect":"Allow"}]}`
			obs := []byte(`{"resourceType":"Observation","status":"final","code":{"text":"new"},"subject":{"reference":"Patient/p1"}}`)

			// Every interaction under every letter and v1 form.
			type op func(p auth.Principal) error
			ops := map[string]op{
				"create": func(p auth.Principal) error { _, _, err := svc.Create(ctx, p, "Observation", obs, ""); return err },
				"read":   func(p auth.Principal) error { _, err := svc.Read(ctx, p, "Observation", "o-p1-a"); return err },
				"vread":  func(p auth.Principal) error { _, err := svc.VRead(ctx, p, "Observation", "o-p1-a", "1"); return err },
				"instance-history": func(p auth.Principal) error {
					_, _, err := svc.History(ctx, p, "Observation", "o-p1-a", HistoryParams{Count: 10})
					return err
				},
				"update": func(p auth.Principal) error {
					_, _, err := svc.Update(ctx, p, "Observation", "o-p1-b", []byte(`{"resourceType":"Observation","id":"o-p1-b","status":"amended","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`), "")
					return err
				},
				"patch": func(p auth.Principal) error {
					_, err := svc.Patch(ctx, p, "Observation", "o-p1-b", []byte(`[{"op":"replace","path":"/status","value":"final"}]`), "")
					return err
				},
				"delete": func(p auth.Principal) error {
					_, _, _ = svc.Update(ctx, admin, "Observation", "gone", []byte(`{"resourceType":"Observation","id":"gone","status":"final","code":{"text":"x"}}`), "")
					return svc.Delete(ctx, p, "Observation", "gone")
				},
				"search": func(p auth.Principal) error {
					_, err := svc.Search(ctx, p, mustQuery(t, "Observation", "status=final"))
					return err
				},
				"type-history": func(p auth.Principal) error {
					_, _, err := svc.History(ctx, p, "Observation", "", HistoryParams{Count: 10})
					return err
				},
			}
			tests := []struct {
				scope string
				allow []string
			}{
				{"system/Observation.c", []string{"create"}},
				{"system/Observation.r", []string{"read", "vread", "instance-history"}},
				{"system/Observation.u", []string{"update", "patch"}},
				{"system/Observation.d", []string{"delete"}},
				{"system/Observation.s", []string{"search", "type-history"}},
				{"system/Observation.cruds", []string{"create", "read", "vread", "instance-history", "update", "patch", "delete", "search", "type-history"}},
				{"user/*.rs", []string{"read", "vread", "instance-history", "search", "type-history"}},
				{"system/Observation.read", []string{"read", "vread", "instance-history", "search", "type-history"}},
				{"system/Observation.write", []string{"create", "update", "patch", "delete"}},
				{"user/Observation.*", []string{"create", "read", "vread", "instance-history", "update", "patch", "delete", "search", "type-history"}},
				{"system/Patient.cruds openid", nil},
				{"openid fhirUser", nil},
			}
			for _, tt := range tests {
				p := principal(all, tt.scope, "")
				for name, run := range ops {
					err := run(p)
					want := slices.Contains(tt.allow, name)
					if want && err != nil {
						t.Errorf("scope %q, %s: %v", tt.scope, name, err)
					}
					if !want && !errors.Is(err, fault.ErrForbidden) {
						t.Errorf("scope %q, %s: err = %v, want 403", tt.scope, name, err)
					}
				}
			}

			ids := func(p auth.Principal, typ, query string) ([]string, int, error) {
				page, err := svc.Search(ctx, p, mustQuery(t, typ, query))
				var out []string
				for _, r := range append(page.Matches, page.Included...) {
					out = append(out, r.Type+"/"+r.ID)
				}
				slices.Sort(out)
				return out, page.Total, err
			}
			forbidden := func(err error) bool { return errors.Is(err, fault.ErrForbidden) }

			// patient/ scopes confine reads and searches to the compartment.
			pat := principal(all, "patient/*.rs launch/patient", "p1")
			want, wantTotal, _ := ids(admin, "Observation", "subject=Patient/p1&_total=accurate&_count=100")
			got, total, err := ids(pat, "Observation", "_total=accurate&_count=100")
			if err != nil || total != wantTotal || !slices.Equal(got, want) || !slices.Contains(got, "Observation/o-p1-a") {
				t.Fatalf("patient compartment search: %v total %d, want %v (%d), %v", got, total, want, wantTotal, err)
			}
			if got, total, err = ids(pat, "Patient", "family=scope"); err != nil || total != 1 || !slices.Equal(got, []string{"Patient/p1"}) {
				t.Fatalf("patient search: %v total %d, %v", got, total, err)
			}
			if _, err := svc.Read(ctx, pat, "Patient", "p2"); !forbidden(err) {
				t.Fatalf("another patient's record: %v", err)
			}
			if _, err := svc.Read(ctx, pat, "Observation", "o-p2-a"); !forbidden(err) {
				t.Fatalf("another patient's observation: %v", err)
			}
			if _, err := svc.Read(ctx, pat, "Medication", "m1"); err != nil {
				t.Fatalf("a type outside the compartment: %v", err)
			}
			// _include cannot reach outside the compartment either.
			if got, _, err = ids(pat, "Observation", "_include=Observation:subject"); err != nil || slices.Contains(got, "Patient/p2") || !slices.Contains(got, "Patient/p1") {
				t.Fatalf("include: %v %v", got, err)
			}
			// Creating for another patient is outside the compartment.
			patW := principal(all, "patient/Observation.c", "p1")
			if _, _, err := svc.Create(ctx, patW, "Observation", []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p2"}}`), ""); !forbidden(err) {
				t.Fatalf("create for another patient: %v", err)
			}
			if _, _, err := svc.Create(ctx, patW, "Observation", obs, ""); err != nil {
				t.Fatalf("create for the patient: %v", err)
			}
			if _, err := svc.Read(ctx, principal(all, "patient/*.rs", ""), "Observation", "o-p1-a"); !forbidden(err) {
				t.Fatalf("patient scope without context: %v", err)
			}

			// ?filter scopes AND into searches and guard reads.
			lab := principal(all, "user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "")
			if got, total, err = ids(lab, "Observation", "subject=Patient/p2&_total=accurate"); err != nil || total != 2 {
				t.Fatalf("filtered search: %v total %d, %v", got, total, err)
			}
			if _, err := svc.Read(ctx, lab, "Observation", "o-p1-b"); !forbidden(err) {
				t.Fatalf("read outside the filter: %v", err)
			}
			// Two scopes union: lab anywhere plus everything of p1's.
			union := principal(all, "patient/Observation.rs user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "p1")
			_, p1Total, _ := ids(admin, "Observation", "subject=Patient/p1&_total=accurate")
			if _, total, err = ids(union, "Observation", "_total=accurate"); err != nil || total != p1Total+2 {
				t.Fatalf("union of scopes: total %d, %v", total, err)
			}

			// Scopes never widen: the policy's condition still applies, and
			// a policy without FHIR:Delete is not rescued by a d scope.
			cond := principal(`{"rule":[{"resource":"FHIR:Observation:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow","condition":"Observation?subject=Patient/p2"}]}`,
				"user/Observation.cruds", "")
			if _, total, err = ids(cond, "Observation", "_total=accurate"); err != nil || total != 3 {
				t.Fatalf("condition and scope: total %d, %v", total, err)
			}
			if err := ops["delete"](cond); !forbidden(err) {
				t.Fatalf("a scope widened the policy: %v", err)
			}
			both := principal(`{"rule":[{"resource":"FHIR:Observation:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow","condition":"Observation?subject=Patient/p2"}]}`,
				"patient/Observation.rs", "p1")
			if _, total, err = ids(both, "Observation", "_total=accurate"); err != nil || total != 0 {
				t.Fatalf("disjoint condition and compartment: total %d, %v", total, err)
			}
		})
	}
}
