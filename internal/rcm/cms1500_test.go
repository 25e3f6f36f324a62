package rcm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/x12"
)

var noResolve Resolve = func(context.Context, string) ([]byte, error) {
	return nil, errors.New("no references outside the claim")
}

func form(t testing.TB) CMS1500 {
	b, err := os.ReadFile("testdata/cms1500.json")
	if err != nil {
		t.Fatal(err)
	}
	var f CMS1500
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func formIssues(t testing.TB, f CMS1500) ([]Issue, Professional) {
	t.Helper()
	claim, err := ClaimFromCMS1500(f, "XYZ01", []byte(`{"resourceType":"Organization","id":"p1","name":"XYZ Insurance"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := FromFHIR(context.Background(), claim, noResolve)
	if err != nil {
		t.Fatal(err)
	}
	submitter(&p)
	return Validate(Segments837P(p, "R", "20261207", "1200")), p
}

func TestCMS1500(t *testing.T) {
	issues, p := formIssues(t, form(t))
	if len(issues) > 0 {
		t.Fatalf("issues: %v", issues)
	}
	b, err := Interchange837P(Segments837P(p, "R", "20261207", "1200"), env).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NM1*IL*1*Doe*Jane****MI*W123456789~", "SBR*P*18*GRP001******CI~", "CLM*ACCT-1001*155.5***11:B:1*Y*A*Y*Y~",
		"REF*G1*PA123~", "HI*ABK:J069*ABF:R051~", "NM1*DN*1*Referrer*Ada****XX*1245319599~", "SV1*HC:99213:25*120.5*UN*1***1:2~",
		"NM1*77*2*Springfield Clinic~", "NM1*PR*2*XYZ Insurance*****PI*XYZ01~", "DMG*D8*19850415*F~"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("837P lacks %q:\n%s", want, b)
		}
	}
}

func TestCMS1500Broken(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		breakIt                  func(f *CMS1500)
		loop, element, src, code string
	}{
		{"billing NPI", func(f *CMS1500) { f.Billing.NPI = "1234567890" }, "2010AA", "NM109", "Claim.contained[billing].identifier[0].value", "npi"},
		{"total", func(f *CMS1500) { f.TotalCharge = 100 }, "2300", "CLM02", "Claim.total.value", "total"},
		{"pointer letter past the codes", func(f *CMS1500) { f.Services[1].Pointer = "C" }, "2400", "SV107-1", "Claim.item[1].diagnosisSequence[0]", "pointer"},
		{"pointer not a letter", func(f *CMS1500) { f.Services[1].Pointer = "Z" }, "2400", "SV107-1", "Claim.item[1].diagnosisSequence[0]", "pointer"},
		{"birth date", func(f *CMS1500) { f.PatientBirth = FormDate{Day: "31", Month: "2", Year: "1985"} }, "2010BA", "DMG02", "Claim.contained[patient].birthDate", "date"},
		{"state", func(f *CMS1500) { f.PatientAddress.State = "Illinois" }, "2010BA", "N402", "Claim.contained[patient].address[0].state", "format"},
		{"member id", func(f *CMS1500) { f.InsuredID = "" }, "2010BA", "NM109", "Claim.contained[coverage].subscriberId", "required"},
		{"procedure", func(f *CMS1500) { f.Services[0].Procedures.Code = "9921" }, "2400", "SV101-2", "Claim.item[0].productOrService.coding[0].code", "code"},
		{"modifier", func(f *CMS1500) { f.Services[0].Procedures.Modifiers = []string{"2"} }, "2400", "SV101-3", "Claim.item[0].modifier[0].coding[0].code", "format"},
		{"units", func(f *CMS1500) { f.Services[0].Units = 0 }, "2400", "SV104", "Claim.item[0].quantity.value", "format"},
		{"rendering without a name", func(f *CMS1500) { f.Services[0].Rendering.NPI = "1245319599" }, "2310B", "NM103", "Claim.contained[rendering-1].name[0].family", "required"},
		{"resubmission without original", func(f *CMS1500) {
			f.Resubmission = &struct {
				Code     string `json:"code"`
				Original string `json:"originalReferenceNumber"`
			}{Code: "7"}
		}, "2300", "REF02", "Claim.related[0].reference.value", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := form(t)
			tc.breakIt(&f)
			issues, _ := formIssues(t, f)
			for _, i := range issues {
				if i.Loop == tc.loop && i.Element == tc.element && i.Src == tc.src && i.Code == tc.code {
					return
				}
			}
			t.Errorf("no issue %s %s (%s) %s; got %v", tc.loop, tc.element, tc.src, tc.code, issues)
		})
	}
}

// FuzzCMS1500: any form the SDK could send either gives issues or an 837P
// that writes and parses back with the same segments.
func FuzzCMS1500(f *testing.F) {
	b, _ := os.ReadFile("testdata/cms1500.json")
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var fm CMS1500
		if json.Unmarshal(data, &fm) != nil {
			return
		}
		claim, err := ClaimFromCMS1500(fm, "XYZ01", nil, time.Now())
		if err != nil {
			return
		}
		p, err := FromFHIR(context.Background(), claim, noResolve)
		if err != nil {
			return
		}
		submitter(&p)
		p.Payer.Name.Last = V{Val: "PAYER"}
		segs := Segments837P(p, "R", "20261207", "1200")
		if len(Validate(segs)) > 0 {
			return
		}
		b, err := Interchange837P(segs, env).Bytes()
		if err != nil {
			t.Fatalf("a valid claim does not write: %v", err)
		}
		ix, err := x12.Parse(b)
		if err != nil {
			t.Fatalf("a valid claim's 837P does not parse: %v\n%s", err, b)
		}
		if issues := Validate(Loops837P(ix.Sets()[0].Segments)); len(issues) > 0 {
			t.Fatalf("a valid claim's parsed 837P has issues: %v", issues)
		}
	})
}

// Fuzz271: a clearinghouse's answer never panics the reader, and what it
// reads makes a response.
func Fuzz271(f *testing.F) {
	q := Inquiry{Trace: "T1", Payer: Provider{Name: Name{Last: V{Val: "P"}}, NPI: V{Val: "P1"}}, Subscriber: Person{MemberID: V{Val: "M1"}}}
	for _, a := range []Answer{AnswerFromCoverages(q, nil), {Inquiry: q, Benefits: []Benefit{{Code: "1", Plan: "Gold"}, {Code: "C", Amount: "500", Period: "23"}}}} {
		b, _ := Interchange(Segments271(a, "20261207", "1200"), env, "271").Bytes()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := x12.Parse(data)
		if err != nil {
			return
		}
		for _, s := range ix.Sets() {
			if a, err := Read271(s.Segments); err == nil {
				if _, err := json.Marshal(Response(a, Refs{}, time.Now())); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// FuzzTransactions: whatever interchange a clearinghouse or a caller sends,
// the 837P, 270, 271 and 277CA readers and the validator answer without
// panicking.
func FuzzTransactions(f *testing.F) {
	claim, res := exampleClaim(f)
	p, err := FromFHIR(context.Background(), mustJSON(f, claim), resolver(res))
	if err != nil {
		f.Fatal(err)
	}
	submitter(&p)
	for _, segs := range [][]Seg{Segments837P(p, "R", "20261207", "1200"), Segments277CA(p, true, "P1", "20261207", "1200"),
		Segments277CA(p, false, "", "20261207", "1200")} {
		b, _ := Interchange(segs, env, "837").Bytes()
		f.Add(b)
	}
	f.Add([]byte(era))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := x12.Parse(data)
		if err != nil {
			return
		}
		for _, s := range ix.Sets() {
			if remits, err := Read835(s.Segments); err == nil {
				for _, r := range remits {
					if _, err := json.Marshal(RemitClaimResponse(r, "Claim/c", time.Now())); err != nil {
						t.Fatal(err)
					}
				}
			}
			segs := Loops837P(s.Segments)
			_ = Validate(segs)
			_, _ = Read837P(segs)
			_, _ = ReadInquiry(s.Segments)
			_, _ = Read277CA(s.Segments)
		}
	})
}
