package rcm

import (
	"context"
	"testing"
)

func TestValidNPI(t *testing.T) {
	for _, tc := range []struct {
		npi  string
		want bool
	}{{"1234567893", true}, {"1245319599", true}, {"1234567890", false}, {"123456789", false}, {"12345678a3", false}, {"", false}} {
		if got := ValidNPI(tc.npi); got != tc.want {
			t.Errorf("ValidNPI(%q) = %v", tc.npi, got)
		}
	}
}

// Broken claims: each gives an issue naming the loop, the element and the
// FHIR element the value came from.
func TestBrokenClaims(t *testing.T) {
	type res = map[string]map[string]any
	item := func(c map[string]any) map[string]any { return c["item"].([]any)[0].(map[string]any) }
	for _, tc := range []struct {
		name                     string
		breakIt                  func(c map[string]any, r res)
		loop, element, src, code string
	}{
		{"bad billing NPI check digit", func(c map[string]any, r res) {
			r["Organization/1"]["identifier"] = []any{ident(SystemNPI, "1234567890"), ident(SystemEIN, "123456789")}
		}, "2010AA", "NM109", "Organization/1.identifier[0].value", "npi"},
		{"billing ZIP not 9 digits", func(c map[string]any, r res) {
			r["Organization/1"]["address"] = []any{addr("100 Main St", "Springfield", "IL", "62701")}
		}, "2010AA", "N403", "Organization/1.address[0].postalCode", "format"},
		{"billing address a PO box", func(c map[string]any, r res) {
			r["Organization/1"]["address"] = []any{addr("P.O. Box 12", "Springfield", "IL", "627011234")}
		}, "2010AA", "N301", "Organization/1.address[0].line[0]", "format"},
		{"no tax id", func(c map[string]any, r res) {
			r["Organization/1"]["identifier"] = []any{ident(SystemNPI, "1234567893")}
		}, "2010AA", "REF02", "Organization/1.identifier", "required"},
		{"no birth date", func(c map[string]any, r res) { delete(r["Patient/1"], "birthDate") }, "2010BA", "DMG02", "Patient/1.birthDate", "required"},
		{"impossible birth date", func(c map[string]any, r res) { r["Patient/1"]["birthDate"] = "1981-02-29" }, "2010BA", "DMG02", "Patient/1.birthDate", "date"},
		{"no member id", func(c map[string]any, r res) {
			delete(r["Coverage/9876B1"], "subscriberId")
			delete(r["Coverage/9876B1"], "identifier")
		},
			"2010BA", "NM109", "Coverage/9876B1.subscriberId", "required"},
		{"no payer id", func(c map[string]any, r res) { delete(r["Organization/2"], "identifier") }, "2010BB", "NM109", "Organization/2.identifier[0].value", "required"},
		{"total is not the sum", func(c map[string]any, r res) { c["total"] = map[string]any{"value": 80, "currency": "USD"} },
			"2300", "CLM02", "Claim.total.value", "total"},
		{"place of service", func(c map[string]any, r res) { item(c)["locationCodeableConcept"] = coding(SystemPOS, "1") },
			"2300", "CLM05-1", "Claim.item[0].locationCodeableConcept.coding[0].code", "code"},
		{"diagnosis not ICD-10", func(c map[string]any, r res) {
			c["diagnosis"].([]any)[0].(map[string]any)["diagnosisCodeableConcept"] = coding(SystemICD10, "654456")
		}, "2300", "HI01-2", "Claim.diagnosis[0].diagnosisCodeableConcept.coding[0].code", "code"},
		{"pointer to no diagnosis", func(c map[string]any, r res) { item(c)["diagnosisSequence"] = []any{2} },
			"2400", "SV107-1", "Claim.item[0].diagnosisSequence[0]", "pointer"},
		{"not a CPT code", func(c map[string]any, r res) { item(c)["productOrService"] = coding(SystemCPT, "exam") },
			"2400", "SV101-2", "Claim.item[0].productOrService.coding[0].code", "code"},
		{"negative charge", func(c map[string]any, r res) {
			item(c)["net"] = map[string]any{"value": -5}
			c["total"] = map[string]any{"value": -5}
		},
			"2400", "SV102", "Claim.item[0].net.value", "format"},
		{"no service date", func(c map[string]any, r res) { delete(item(c), "servicedDate") }, "2400", "DTP03", "Claim.item[0].servicedPeriod.start", "required"},
		{"service period backwards", func(c map[string]any, r res) {
			delete(item(c), "servicedDate")
			item(c)["servicedPeriod"] = map[string]any{"start": "2014-08-16", "end": "2014-08-01"}
		}, "2400", "DTP03", "Claim.item[0].servicedPeriod.start", "date"},
		{"rendering NPI", func(c map[string]any, r res) { r["Practitioner/example"]["identifier"] = []any{ident(SystemNPI, "99")} },
			"2310B", "NM109", "Practitioner/example.identifier[0].value", "npi"},
		{"separator in a name", func(c map[string]any, r res) {
			r["Patient/1"]["name"] = []any{map[string]any{"family": "Do*e", "given": []any{"J"}}}
		},
			"2010BA", "NM103", "Patient/1.name[0].family", "separator"},
		{"filing indicator", func(c map[string]any, r res) { r["Coverage/9876B1"]["type"] = coding(SystemFiling, "XX") },
			"2000B", "SBR09", "Coverage/9876B1.type.coding[0].code", "code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claim, r := exampleClaim(t)
			tc.breakIt(claim, r)
			p, err := FromFHIR(context.Background(), mustJSON(t, claim), resolver(r))
			if err != nil {
				t.Fatal(err)
			}
			submitter(&p)
			issues := Validate(Segments837P(p, "R", "20261207", "1200"))
			for _, i := range issues {
				if i.Loop == tc.loop && i.Element == tc.element && i.Src == tc.src && i.Code == tc.code {
					return
				}
			}
			t.Errorf("no issue %s %s (%s) %s; got %v", tc.loop, tc.element, tc.src, tc.code, issues)
		})
	}
}

// A received 837P that lacks a required segment says which and where.
func TestMissingSegments(t *testing.T) {
	claim, r := exampleClaim(t)
	p, err := FromFHIR(context.Background(), mustJSON(t, claim), resolver(r))
	if err != nil {
		t.Fatal(err)
	}
	submitter(&p)
	for _, drop := range []string{"2010AA/N3", "2010AA/REF", "2010BA/DMG", "2300/HI", "2400/DTP", "1000A/PER"} {
		var segs []Seg
		for _, s := range Segments837P(p, "R", "20261207", "1200") {
			if s.Loop+"/"+s.ID != drop {
				segs = append(segs, s)
			}
		}
		found := false
		for _, i := range Validate(segs) {
			found = found || i.Loop+"/"+i.Segment == drop && i.Code == "required"
		}
		if !found {
			t.Errorf("no issue for the missing %s: %v", drop, Validate(segs))
		}
	}
}
