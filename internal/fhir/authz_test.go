package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestAuthorization runs FHIR interactions as principals with different
// roles, on every backend, against a small fixed data set.
func TestAuthorization(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, b, Config{})
			svc, authz, admin := f.svc, f.authz, f.admin
			put := func(body string) {
				var m map[string]any
				_ = json.Unmarshal([]byte(body), &m)
				if _, _, err := svc.Update(ctx, admin, m["resourceType"].(string), m["id"].(string), []byte(body), ""); err != nil {
					t.Fatal(err)
				}
			}
			put(`{"resourceType":"Practitioner","id":"dr1"}`)
			for _, id := range []string{"p1", "p2", "p3", "vip"} {
				gp := ""
				if id != "p3" {
					gp = `,"generalPractitioner":[{"reference":"Practitioner/dr1"}]`
				}
				put(`{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Test"}]` + gp + `}`)
				put(`{"resourceType":"Observation","id":"o-` + id + `","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + id + `"}}`)
			}
			principal := func(policy string) auth.Principal {
				name := "c" + time.Now().Format("150405.000000000")
				m, err := authz.CreateM2M(ctx, admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(policy)})
				if err != nil {
					t.Fatalf("policy %s: %v", policy, err)
				}
				return auth.Principal{ProjectID: admin.ProjectID, Kind: auth.KindM2M, ID: m.ID}
			}
			searchIDs := func(p auth.Principal, typ, query string) ([]string, int, error) {
				page, err := svc.Search(ctx, p, mustQuery(t, typ, query))
				var ids []string
				for _, r := range append(page.Matches, page.Included...) {
					ids = append(ids, r.Type+"/"+r.ID)
				}
				slices.Sort(ids)
				return ids, page.Total, err
			}
			forbidden := func(err error) bool { return errors.Is(err, fault.ErrForbidden) }

			readOnly := principal(`{"rule":[{"resource":"FHIR:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}`)
			if _, err := svc.Read(ctx, readOnly, "Patient", "p1"); err != nil {
				t.Fatalf("read-only read: %v", err)
			}
			if _, _, err := svc.Create(ctx, readOnly, "Patient", []byte(`{"resourceType":"Patient"}`), ""); !forbidden(err) {
				t.Fatalf("read-only create: %v", err)
			}
			if _, _, err := svc.Update(ctx, readOnly, "Patient", "p1", []byte(`{"resourceType":"Patient","id":"p1"}`), ""); !forbidden(err) {
				t.Fatalf("read-only update: %v", err)
			}
			if err := svc.Delete(ctx, readOnly, "Patient", "p1"); !forbidden(err) {
				t.Fatalf("read-only delete: %v", err)
			}

			patientsOnly := principal(`{"rule":[{"resource":"FHIR:Patient","action":["FHIR:Read","FHIR:Search","FHIR:Create"],"effect":"Allow"}]}`)
			if _, err := svc.Read(ctx, patientsOnly, "Observation", "o-p1"); !forbidden(err) {
				t.Fatalf("per-type role read of another type: %v", err)
			}
			if _, _, err := svc.Create(ctx, patientsOnly, "Patient", []byte(`{"resourceType":"Patient"}`), ""); err != nil {
				t.Fatalf("per-type role create: %v", err)
			}
			// _revinclude of a type the role cannot read includes nothing of it.
			ids, _, err := searchIDs(patientsOnly, "Patient", "_id=p1&_revinclude=Observation:subject")
			if err != nil || !slices.Equal(ids, []string{"Patient/p1"}) {
				t.Fatalf("revinclude leak: %v %v", ids, err)
			}
			ids, _, err = searchIDs(patientsOnly, "Patient", "_id=p1&_revinclude=*")
			if err != nil || !slices.Equal(ids, []string{"Patient/p1"}) {
				t.Fatalf("_revinclude=* leak: %v %v", ids, err)
			}

			// A condition: only the doctor's patients, with correct totals.
			gp := principal(`{"rule":[
				{"resource":"FHIR:Patient:*","action":["FHIR:Read","FHIR:Search","FHIR:Update"],"effect":"Allow","condition":"Patient?general-practitioner=Practitioner/dr1"},
				{"resource":"FHIR:Observation:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}`)
			ids, total, err := searchIDs(gp, "Patient", "family=test")
			if err != nil || total != 3 || !slices.Equal(ids, []string{"Patient/p1", "Patient/p2", "Patient/vip"}) {
				t.Fatalf("conditional search: %v total %d, %v", ids, total, err)
			}
			if _, err := svc.Read(ctx, gp, "Patient", "p3"); !forbidden(err) {
				t.Fatalf("read outside the condition: %v", err)
			}
			if _, _, err := svc.Update(ctx, gp, "Patient", "p1", []byte(`{"resourceType":"Patient","id":"p1","name":[{"family":"Test"}]}`), ""); !forbidden(err) {
				t.Fatalf("an update that leaves the condition must be refused: %v", err)
			}
			// _include of Patient from Observations reaches only covered patients.
			ids, _, err = searchIDs(gp, "Observation", "_include=Observation:subject")
			if err != nil || slices.Contains(ids, "Patient/p3") || !slices.Contains(ids, "Patient/p1") {
				t.Fatalf("include leak: %v %v", ids, err)
			}

			// A condition written as a _filter restricts as any other.
			filtered := principal(`{"rule":[{"resource":"FHIR:Patient:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow","condition":"Patient?_filter=_id eq p1 or _id eq p2"}]}`)
			ids, total, err = searchIDs(filtered, "Patient", "family=test")
			if err != nil || total != 2 || !slices.Equal(ids, []string{"Patient/p1", "Patient/p2"}) {
				t.Fatalf("_filter condition: %v total %d, %v", ids, total, err)
			}
			if _, err := svc.Read(ctx, filtered, "Patient", "p3"); !forbidden(err) {
				t.Fatalf("read outside a _filter condition: %v", err)
			}

			// A Deny on one id hides it from reads, searches and totals.
			deny := principal(`{"rule":[{"resource":"FHIR:Patient:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"},
				{"resource":"FHIR:Patient:vip","action":"FHIR:Read","effect":"Deny"}]}`)
			if _, err := svc.Read(ctx, deny, "Patient", "vip"); !forbidden(err) {
				t.Fatalf("denied read: %v", err)
			}
			ids, total, err = searchIDs(deny, "Patient", "family=test&_count=2")
			if err != nil || total != 3 || len(ids) != 2 || slices.Contains(ids, "Patient/vip") {
				t.Fatalf("deny in search: %v total %d, %v", ids, total, err)
			}

			// A chain or a _has filters on the other type's resources, so it
			// tells which of them match: it needs the right to search that
			// type and sees only what the caller could find there.
			obsOnly := principal(`{"rule":[{"resource":"FHIR:Observation:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}`)
			if _, _, err := searchIDs(obsOnly, "Observation", "subject:Patient.family=test"); !forbidden(err) {
				t.Fatalf("chain into a type the caller cannot search: %v", err)
			}
			if _, _, err := searchIDs(patientsOnly, "Patient", "_has:Observation:subject:status=final"); !forbidden(err) {
				t.Fatalf("_has into a type the caller cannot search: %v", err)
			}
			if _, _, err := searchIDs(obsOnly, "Observation", "code:in=http://x.test/vs"); !forbidden(err) {
				t.Fatalf(":in with a ValueSet the caller cannot search: %v", err)
			}
			if _, _, err := searchIDs(patientsOnly, "Patient", "_list=l1"); !forbidden(err) {
				t.Fatalf("_list of a List the caller cannot search: %v", err)
			}
			if _, _, err := searchIDs(gp, "Observation", "subject:Patient.general-practitioner:Practitioner.name=x"); !forbidden(err) {
				t.Fatalf("a chain's second reference into a type the caller cannot search: %v", err)
			}
			// gp sees Patients p1, p2, vip (the condition), all Observations.
			ids, total, err = searchIDs(gp, "Observation", "subject:Patient.family=test")
			if err != nil || total != 3 || slices.Contains(ids, "Observation/o-p3") {
				t.Fatalf("chain through a condition: %v total %d, %v", ids, total, err)
			}
			// $everything leaves out the types the caller may not read and
			// the resources it may not see, totals included.
			everything := func(p auth.Principal) ([]string, int) {
				t.Helper()
				page, err := svc.Everything(ctx, p, "p1", EverythingParams{Count: 100})
				if err != nil {
					t.Fatalf("everything: %v", err)
				}
				var ids []string
				for _, r := range page.Matches {
					ids = append(ids, r.Type+"/"+r.ID)
				}
				slices.Sort(ids)
				return ids, page.Total
			}
			if ids, total := everything(patientsOnly); total != 1 || !slices.Equal(ids, []string{"Patient/p1"}) {
				t.Fatalf("everything without Observation access: %v total %d", ids, total)
			}
			if ids, total := everything(readOnly); total != 2 || !slices.Equal(ids, []string{"Observation/o-p1", "Patient/p1"}) {
				t.Fatalf("everything: %v total %d", ids, total)
			}
			if _, err := svc.Everything(ctx, obsOnly, "p1", EverythingParams{Count: 10}); !forbidden(err) {
				t.Fatalf("everything of a patient the caller cannot read: %v", err)
			}
			obsDeny := principal(`{"rule":[{"resource":"FHIR:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"},
				{"resource":"FHIR:Observation:o-vip","action":"FHIR:Read","effect":"Deny"}]}`)
			ids, total, err = searchIDs(obsDeny, "Patient", "_has:Observation:subject:status=final")
			if err != nil || total != 3 || slices.Contains(ids, "Patient/vip") {
				t.Fatalf("_has through a Deny: %v total %d, %v", ids, total, err)
			}
			if page, err := svc.Everything(ctx, obsDeny, "vip", EverythingParams{Count: 10}); err != nil || page.Total != 1 || len(page.Matches) != 1 {
				t.Fatalf("everything through a Deny: %+v, %v", page.Matches, err)
			}
		})
	}
}

func mustQuery(t *testing.T, typ, query string) *search.Query {
	t.Helper()
	vals, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := search.ParseQuery(typ, vals, false)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
