package fhir

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// BenchmarkBinaryContextSearch: a page of 20 Binaries with its total, by a
// user who may read only half of the Patients the Binaries name as
// securityContext (filtered in the SQL), against the same search by the
// project's admin (no filter) in the same run: report the ratio.
//
//	go test ./internal/fhir -run '^$' -bench BinaryContextSearch -benchtime 2s
func BenchmarkBinaryContextSearch(b *testing.B) {
	const patients, perPatient = 500, 4
	f := newFixture(b, storetest.Backends()[0], Config{DefaultCount: 20, MaxCount: 100})
	ctx := context.Background()
	for i := range patients {
		family := []string{"keep", "other"}[i%2]
		pr, _, err := f.svc.Create(ctx, f.admin, "Patient", fmt.Appendf(nil, `{"resourceType":"Patient","name":[{"family":%q}]}`, family), "")
		if err != nil {
			b.Fatal(err)
		}
		for range perPatient {
			body := fmt.Appendf(nil, `{"resourceType":"Binary","contentType":"text/plain","data":"aGk=","securityContext":{"reference":"Patient/%s"}}`, pr.ID)
			if _, _, err := f.svc.Create(ctx, f.admin, "Binary", body, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	name := "half"
	m, err := f.authz.CreateM2M(ctx, f.admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(
		`{"rule":[{"resource":"FHIR:Binary:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"},` +
			`{"resource":"FHIR:Patient:*","action":["FHIR:Read"],"effect":"Allow","condition":"Patient?family=keep"}]}`)})
	if err != nil {
		b.Fatal(err)
	}
	user := auth.Principal{ProjectID: f.admin.ProjectID, Kind: auth.KindM2M, ID: m.ID}
	q, err := search.ParseQuery("Binary", nil, false)
	if err != nil {
		b.Fatal(err)
	}
	per := map[string]float64{}
	for _, c := range []struct {
		name  string
		p     auth.Principal
		total int
	}{{"admin", f.admin, patients * perPatient}, {"restricted", user, patients * perPatient / 2}} {
		b.Run(c.name, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				page, err := f.svc.Search(ctx, c.p, q)
				if err != nil || page.Total != c.total || len(page.Matches) != 20 {
					b.Fatalf("total %d, %d matches, %v; want %d", page.Total, len(page.Matches), err, c.total)
				}
			}
			per[c.name] = float64(time.Since(start).Nanoseconds()) / float64(b.N)
		})
	}
	if per["admin"] > 0 && per["restricted"] > 0 {
		b.Logf("restricted/admin: %.2fx (%.0f vs %.0f µs a page with its total of %d Binaries)", per["restricted"]/per["admin"],
			per["restricted"]/1e3, per["admin"]/1e3, patients*perPatient)
	}
}
