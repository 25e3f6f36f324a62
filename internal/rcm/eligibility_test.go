package rcm

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/x12"
)

// exampleInquiry is CoverageEligibilityRequest/52345 and what it names,
// with an NPI for the provider (the example's has none).
func exampleInquiry(t *testing.T) (map[string]any, map[string]map[string]any) {
	req := example(t, "CoverageEligibilityRequest-52345")
	prov := example(t, "Organization-1")
	prov["identifier"] = []any{ident(SystemNPI, "1234567893")}
	payer := example(t, "Organization-2")
	cov := example(t, "Coverage-9876B1")
	return req, map[string]map[string]any{"Organization/1": prov, "Organization/2": payer, "Patient/pat1": example(t, "Patient-pat1"), "Coverage/9876B1": cov}
}

func roundTrip(t *testing.T, segs []Seg, setID, version string) []x12.Segment {
	t.Helper()
	b, err := Interchange(segs, x12.Envelope{SenderQual: "ZZ", SenderID: "WARD", ReceiverQual: "ZZ", ReceiverID: "PAYER", Control: 3,
		Time: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), FunctionalID: "HS", Version: version}, setID).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	ix, err := x12.Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return ix.Sets()[0].Segments
}

func TestEligibilityRoundTrip(t *testing.T) {
	req, res := exampleInquiry(t)
	q, err := FromEligibilityRequest(context.Background(), mustJSON(t, req), resolver(res))
	if err != nil {
		t.Fatal(err)
	}
	q.Trace = "TRACE1"
	segs := Segments270(q, "20261207", "1200")
	if issues := ValidateInquiry(segs); len(issues) > 0 {
		t.Fatalf("issues: %v", issues)
	}
	back, err := ReadInquiry(roundTrip(t, segs, "270", Version270))
	if err != nil {
		t.Fatal(err)
	}
	want := q
	want.Provider.Person = false
	if got, want := noSrcQ(back), noSrcQ(want); !reflect.DeepEqual(got, want) {
		t.Fatalf("270 read back:\n got %+v\nwant %+v", got, want)
	}
	if q.Subscriber.MemberID.Val != "12345" || q.Date.Val != "20140816" || q.Payer.NPI.Val != "666666" {
		t.Errorf("inquiry = %+v", q)
	}

	cov := res["Coverage/9876B1"]
	refs := Refs{Request: "CoverageEligibilityRequest/52345", Patient: "Patient/pat1", Insurer: "Organization/2", Coverage: "Coverage/9876B1"}
	for _, tc := range []struct {
		name     string
		period   map[string]any
		covs     [][]byte
		inforce  bool
		outcome  string
		benefits int
	}{
		{"expired on the date", nil, [][]byte{mustJSON(t, cov)}, false, "complete", 0},
		{"active", map[string]any{"start": "2014-01-01", "end": "2014-12-31"}, nil, true, "complete", 2},
		{"not found", nil, [][]byte{}, false, "error", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			covs := tc.covs
			if tc.period != nil {
				c := map[string]any{}
				for k, v := range cov {
					c[k] = v
				}
				c["period"] = tc.period
				c["costToBeneficiary"] = []any{
					map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/coverage-copay-type", "gpvisit"), "valueMoney": map[string]any{"value": 20, "currency": "USD"}},
					map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/coverage-copay-type", "deductible"), "valueMoney": map[string]any{"value": 1500.5, "currency": "USD"}},
				}
				covs = [][]byte{mustJSON(t, c)}
			}
			a := AnswerFromCoverages(back, covs)
			got, err := Read271(roundTrip(t, Segments271(a, "20261207", "1200"), "271", Version271))
			if err != nil {
				t.Fatal(err)
			}
			if got.Trace != "TRACE1" || got.Active() != tc.inforce {
				t.Fatalf("271 = %+v", got)
			}
			r := Response(got, refs, time.Now())
			if r["outcome"] != tc.outcome {
				t.Fatalf("outcome = %v", r["outcome"])
			}
			if tc.outcome == "error" {
				if r["error"].([]any)[0].(map[string]any)["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"] != "75" {
					t.Errorf("error = %v", r["error"])
				}
				return
			}
			ins := r["insurance"].([]any)[0].(map[string]any)
			if ins["inforce"] != tc.inforce {
				t.Errorf("inforce = %v", ins["inforce"])
			}
			n := 0
			for _, it := range ins["item"].([]any) {
				bs, _ := it.(map[string]any)["benefit"].([]any)
				n += len(bs)
			}
			if n != tc.benefits {
				b, _ := json.Marshal(r)
				t.Errorf("%d benefits, want %d: %s", n, tc.benefits, b)
			}
		})
	}
}

func noSrcQ(q Inquiry) Inquiry {
	p := noSrc(Professional{Subscriber: q.Subscriber, Payer: q.Payer, Billing: q.Provider})
	q.Subscriber, q.Payer, q.Provider = p.Subscriber, p.Payer, p.Billing
	q.Date.Src = ""
	return q
}
