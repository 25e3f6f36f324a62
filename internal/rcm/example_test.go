package rcm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/x12"
)

// example reads an official R4 example: from the package WARD_FHIR_EXAMPLES
// names, else from the copies in testdata/r4.
func example(t testing.TB, name string) map[string]any {
	t.Helper()
	dir := os.Getenv("WARD_FHIR_EXAMPLES")
	if dir == "" {
		dir = filepath.Join("testdata", "r4")
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// exampleClaim is Claim/860150 (the R4 professional claim example) and
// the resources it names, completed with what an 837P needs and the
// examples lack (NPIs, a tax id, US addresses, CPT and ICD-10 codes).
func exampleClaim(t testing.TB) (map[string]any, map[string]map[string]any) {
	claim := example(t, "Claim-860150")
	claim["item"].([]any)[0].(map[string]any)["productOrService"] = coding(SystemCPT, "99213")
	claim["item"].([]any)[0].(map[string]any)["locationCodeableConcept"] = coding(SystemPOS, "11")
	claim["item"].([]any)[0].(map[string]any)["diagnosisSequence"] = []any{1}
	claim["diagnosis"].([]any)[0].(map[string]any)["diagnosisCodeableConcept"] = coding(SystemICD10, "J06.9")

	billing := example(t, "Organization-1")
	billing["identifier"] = []any{ident(SystemNPI, "1234567893"), ident(SystemEIN, "12-3456789")}
	billing["address"] = []any{addr("100 Main St", "Springfield", "IL", "62701-1234")}
	payer := example(t, "Organization-2")
	payer["identifier"] = []any{map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/v2-0203", PayerIDType), "value": "XYZ01"}}
	patient := example(t, "Patient-pat1")
	patient["birthDate"] = "1980-02-29"
	patient["address"] = []any{addr("12 Elm St", "Springfield", "IL", "62704")}
	cov := example(t, "Coverage-9876B1")
	delete(cov, "subscriber") // the example's Patient/4 is not in the package: the patient is the subscriber
	cov["subscriberId"] = "W123456789"
	doc := example(t, "Practitioner-example")
	doc["identifier"] = []any{ident(SystemNPI, "1245319599")}
	return claim, map[string]map[string]any{
		"Organization/1": billing, "Organization/2": payer, "Patient/1": patient,
		"Coverage/9876B1": cov, "Practitioner/example": doc,
	}
}

func addr(line, city, state, zip string) map[string]any {
	return map[string]any{"line": []any{line}, "city": city, "state": state, "postalCode": zip}
}

func resolver(res map[string]map[string]any) Resolve {
	return func(_ context.Context, ref string) ([]byte, error) {
		r, ok := res[ref]
		if !ok {
			return nil, fmt.Errorf("%s: not found", ref)
		}
		return json.Marshal(r)
	}
}

func submitter(p *Professional) {
	p.Submitter = Provider{Name: Name{Last: V{Val: "WARD CLINIC"}}, NPI: V{Val: "WARD01"}, Contact: V{Val: "BILLING"}, Phone: V{Val: "5555550100"}}
	p.Receiver = Provider{Name: Name{Last: V{Val: "XYZ INSURANCE"}}, NPI: V{Val: "XYZ01"}}
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noSrc drops the sources: what an 837P carries is the values.
func noSrc(p Professional) Professional {
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if v.Type() == reflect.TypeOf(V{}) {
				v.FieldByName("Src").SetString("")
				return
			}
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i))
			}
		case reflect.Slice:
			if v.Len() == 0 && !v.IsNil() {
				v.Set(reflect.Zero(v.Type()))
			}
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(&p))
	return p
}

var env = x12.Envelope{SenderQual: "ZZ", SenderID: "WARD01", ReceiverQual: "ZZ", ReceiverID: "XYZ01", Control: 7,
	Time: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), Test: true}

// The R4 professional claim example, completed, makes an 837P that
// passes the validator and parses back to the same data.
func TestExampleClaimRoundTrip(t *testing.T) {
	claim, res := exampleClaim(t)
	p, err := FromFHIR(context.Background(), mustJSON(t, claim), resolver(res))
	if err != nil {
		t.Fatal(err)
	}
	submitter(&p)
	segs := Segments837P(p, "REF1", "20261207", "1200")
	if issues := Validate(segs); len(issues) > 0 {
		t.Fatalf("issues: %v", issues)
	}
	b, err := Interchange837P(segs, env).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NM1*85*2*Gastroenterology*****XX*1234567893~", "REF*EI*123456789~", "NM1*IL*1*Donald*Duck****MI*W123456789~",
		"DMG*D8*19800229*M~", "NM1*PR*2*XYZ Insurance*****PI*XYZ01~", "CLM*8612345*75***11:B:1*Y*A*Y*Y~", "HI*ABK:J069~",
		"NM1*82*1*Careful*Adam****XX*1245319599~", "SV1*HC:99213*75*UN*1***1~", "DTP*472*D8*20140816~"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("837P lacks %q:\n%s", want, b)
		}
	}
	ix, err := x12.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	sets := ix.Sets()
	if len(sets) != 1 || sets[0].GS.E(8) != Version837P {
		t.Fatalf("sets: %+v", sets)
	}
	back, err := Read837P(Loops837P(sets[0].Segments))
	if err != nil {
		t.Fatal(err)
	}
	if back, want := noSrc(back), noSrc(p); !reflect.DeepEqual(back, want) {
		t.Errorf("read back differs:\n got %+v\nwant %+v", back, want)
	}
	if issues := Validate(Loops837P(sets[0].Segments)); len(issues) > 0 {
		t.Errorf("the parsed 837P does not validate: %v", issues)
	}
}
