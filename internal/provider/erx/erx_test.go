package erx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/policy/policytest"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func newService(t testing.TB, b storetest.Backend) (*Service, *fhir.Service) {
	t.Helper()
	f := fhir.New(storetest.Open(t, b), policytest.AllowAll{}, fhir.Config{}, time.Now)
	return New(Deps{FHIR: f, Local: &Local{Catalog: f, PublicURL: "http://ward.test"},
		Providers: func(context.Context, string) (map[string]string, error) { return nil, nil }}), f
}

func create(t testing.TB, f *fhir.Service, project, body string) {
	t.Helper()
	if _, err := f.SystemCreate(context.Background(), project, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func medJSON(rxcui int, name string) string {
	return fmt.Sprintf(`{"resourceType":"Medication","code":{"text":%q,"coding":[{"system":%q,"code":"%d"}]}}`, name, RxNorm, rxcui)
}

// TestDirectories: the local provider's directories on both backends,
// each project's own (the e2e test drives the same through the SDK).
func TestDirectories(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s, f := newService(t, b)
			ctx := context.Background()
			create(t, f, "p1", medJSON(314076, "lisinopril 10 MG Oral Tablet"))
			create(t, f, "p1", `{"resourceType":"Medication","code":{"text":"lisinopril, no RxCUI"}}`)
			create(t, f, "p2", medJSON(314077, "lisinopril 20 MG Oral Tablet"))
			create(t, f, "p1", `{"resourceType":"Organization","name":"Corner Pharmacy","identifier":[{"system":"`+NCPDP+`","value":"0000042"}],"address":[{"city":"Oak Park"}]}`)
			create(t, f, "p1", `{"resourceType":"Organization","name":"Corner Clinic","address":[{"city":"Oak Park"}]}`)
			p1 := auth.Principal{ProjectID: "p1", Kind: auth.KindM2M, ID: "m"}
			meds, err := s.SearchMedications(ctx, p1, "lisinopril")
			if err != nil || len(meds) != 1 || meds[0].ID != 314076 {
				t.Fatalf("p1 lisinopril = %+v, %v", meds, err)
			}
			ph, err := s.SearchPharmacies(ctx, p1, url.Values{"city": {"oak park"}})
			if err != nil || len(ph.Data) != 1 || ph.Data[0].ID != 42 || ph.Data[0].NCPDPID != "0000042" {
				t.Fatalf("pharmacies = %+v, %v", ph, err)
			}
			if one, err := s.GetPharmacy(ctx, p1, "42"); err != nil || one.Name != "Corner Pharmacy" {
				t.Fatalf("pharmacy 42 = %+v, %v", one, err)
			}
			p2 := auth.Principal{ProjectID: "p2", Kind: auth.KindM2M, ID: "m"}
			if _, err := s.GetPharmacy(ctx, p2, "42"); err == nil {
				t.Fatal("project p2 sees p1's pharmacy")
			}
		})
	}
}

func TestMissingDemographics(t *testing.T) {
	for _, tc := range []struct {
		patient string
		want    []string
	}{
		{`{"name":[{"family":"Shaw","given":["Amy"]}],"birthDate":"1987-02-20","gender":"female","telecom":[{"system":"phone","value":"+1"}]}`, nil},
		{`{}`, []string{"first name", "last name", "birthDate", "gender", "phone number"}},
		{`{"name":[{"family":"Shaw"},{"given":["Amy"]}],"birthDate":"1987","gender":"other","telecom":[{"system":"email","value":"a@b"}]}`, []string{"phone number"}},
		{`{"name":"not a list","telecom":[{"system":"phone"}]}`, []string{"first name", "last name", "birthDate", "gender", "phone number"}},
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(tc.patient), &m); err != nil {
			t.Fatal(err)
		}
		if got := missingDemographics(m); !slices.Equal(got, tc.want) {
			t.Errorf("missingDemographics(%s) = %v, want %v", tc.patient, got, tc.want)
		}
	}
}

func TestSearchTextAndIDs(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"lisinopril", ""}, {"  am  ", ""}, {"", "required"}, {"a", "at least 2"}, {strings.Repeat("x", 201), "longer than 200"},
		{"a\x00b", "text"}, {"\xff\xfe", "text"},
	} {
		_, err := searchText(tc.in)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("searchText(%q) = %v, want %q", tc.in, err, tc.err)
		}
	}
	for id, ok := range map[string]bool{"abc-1.2": true, "": false, "a/b": false, "../x": false, strings.Repeat("a", 65): false, "a b": false} {
		if err := fhirID(id, "id"); (err == nil) != ok {
			t.Errorf("fhirID(%q) = %v", id, err)
		}
	}
}

// FuzzMedication: any stored Medication either is not in the directory or
// has a positive id that is its RxCUI (never a panic, never id 0).
func FuzzMedication(f *testing.F) {
	f.Add([]byte(medJSON(314076, "x")))
	f.Add([]byte(`{"code":{"coding":[{"system":"` + RxNorm + `","code":"-1"},{"system":"` + RxNorm + `","code":"7"}]},"ingredient":[{"strength":{"numerator":{"value":1e400}}}]}`))
	f.Add([]byte(`{"ingredient":[{"strength":{"numerator":{"value":"x"},"denominator":{"value":2,"unit":"mL"}}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := medication(b)
		if ok && (m.ID <= 0 || m.RxCUI == nil || *m.RxCUI != m.ID || m.RoutedDoseFormDrugID != m.ID) {
			t.Fatalf("medication(%q) = %+v", b, m)
		}
	})
}

// FuzzPharmacy: an Organization is a pharmacy only with a positive NCPDP
// id, and its specialties are never nil (the SDK's array).
func FuzzPharmacy(f *testing.F) {
	f.Add([]byte(`{"name":"x","identifier":[{"system":"` + NCPDP + `","value":"0000042"}],"type":[{"text":"Retail"}],"address":[{"line":["a","b","c"]}]}`))
	f.Add([]byte(`{"identifier":[{"system":"` + NCPDP + `","value":"-5"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := pharmacy(fhir.Resource{ID: "o1", Content: b})
		if ok && (p.ID <= 0 || p.Specialties == nil || p.Ref != "Organization/o1") {
			t.Fatalf("pharmacy(%q) = %+v", b, p)
		}
	})
}

// BenchmarkSearchMedications measures erx.searchMedications over a 2,000
// drug directory against its peer in the same run: the same FHIR search
// (Medication?code:text=) through the FHIR API's policy-checked path, which
// a client would otherwise run.
//
//	go test -run XXX -bench SearchMedications ./internal/provider/erx/
func BenchmarkSearchMedications(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s, f := newService(b, be)
			for i := range 2000 {
				create(b, f, "p1", medJSON(100000+i, fmt.Sprintf("drug%04d %d MG Oral Tablet", i, 5+i%40)))
			}
			p := auth.Principal{ProjectID: "p1", Kind: auth.KindM2M, ID: "m"}
			ctx := context.Background()
			b.Run("erx", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					meds, err := s.SearchMedications(ctx, p, fmt.Sprintf("drug%04d", i%2000))
					if err != nil || len(meds) != 1 {
						b.Fatalf("%d results, %v", len(meds), err)
					}
				}
			})
			b.Run("fhir-search", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					q, err := search.ParseQuery("Medication", url.Values{"code:text": {fmt.Sprintf("drug%04d", i%2000)}}, false)
					if err != nil {
						b.Fatal(err)
					}
					page, err := f.Search(ctx, p, q)
					if err != nil || len(page.Matches) != 1 {
						b.Fatalf("%d results, %v", len(page.Matches), err)
					}
				}
			})
		})
	}
}

// TestConnectAsPractitioner: a user whose profile is a Practitioner gets a
// link only once enrolled; enrollment is one PractitionerRole, updated.
func TestConnectAsPractitioner(t *testing.T) {
	s, f := newService(t, storetest.Backends()[0])
	ctx := context.Background()
	res, err := f.SystemCreate(ctx, "p1", []byte(`{"resourceType":"Practitioner"}`))
	if err != nil {
		t.Fatal(err)
	}
	doc := auth.Principal{ProjectID: "p1", Kind: auth.KindUser, ID: "u1", FHIRUser: "Practitioner/" + res.ID}
	if _, err := s.Connect(ctx, doc, "", ""); err == nil || !strings.Contains(err.Error(), "not enrolled") {
		t.Fatalf("connect before enrollment: %v", err)
	}
	for _, prescribing := range []bool{true, false, true} {
		if err := s.Enroll(ctx, doc, res.ID, prescribing); err != nil {
			t.Fatal(err)
		}
	}
	e, err := s.CheckEnrollment(ctx, doc, res.ID)
	if err != nil || !e.Active || !e.IsPrescribing || e.IdentityVerified {
		t.Fatalf("enrollment = %+v, %v", e, err)
	}
	roles, err := s.search(ctx, doc, "PractitionerRole", url.Values{})
	if err != nil || len(roles) != 1 {
		t.Fatalf("%d enrollment roles, %v", len(roles), err)
	}
	link, err := s.Connect(ctx, doc, "", "")
	if err != nil || link != "http://ward.test/console/fhir/MedicationRequest/new" {
		t.Fatalf("connect = %q, %v", link, err)
	}
	if err := s.Unenroll(ctx, doc, res.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Connect(ctx, doc, "", ""); err == nil {
		t.Fatal("connect after unenrolling")
	}
}
