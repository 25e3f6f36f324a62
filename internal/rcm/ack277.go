package rcm

import (
	"fmt"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/x12"
)

// Version277CA is the claim acknowledgment guide.
const Version277CA = "005010X214"

// Ack is what a 277CA says of one claim.
type Ack struct {
	ControlNo    string // TRN02 at the patient level: the claim's CLM01
	Category     string // STC01-1: A1/A2 accepted, A3/A4/A6/A7/A8 rejected
	Status       string // STC01-2 claim status code
	Total        string // STC04
	PayerClaimNo string // REF*1K
	Date         string // STC02
}

// Accepted reports whether the claim went on to adjudication.
func (a Ack) Accepted() bool { return a.Category == "A1" || a.Category == "A2" }

// Segments277CA acknowledges one claim as a payer would: accepted (A2/20)
// with payerClaimNo, or rejected (A3/21).
func Segments277CA(p Professional, accepted bool, payerClaimNo, date, hhmm string) []Seg {
	b := &builder{loop: "Header"}
	b.add("BHT", fixed("0085"), fixed("08"), fixed(p.ControlNo.Val), fixed(date), fixed(hhmm), fixed("TH"))
	b.loop = "2000A"
	b.add("HL", fixed("1"), V{}, fixed("20"), fixed("1"))
	b.loop = "2100A"
	b.name("PR", p.Payer, "PI")
	b.add("TRN", fixed("1"), fixed(p.ControlNo.Val))
	b.add("DTP", fixed("050"), fixed("D8"), fixed(date))
	b.add("DTP", fixed("009"), fixed("D8"), fixed(date))
	b.loop = "2000B"
	b.add("HL", fixed("2"), fixed("1"), fixed("21"), fixed("1"))
	b.loop = "2100B"
	b.name("41", p.Submitter, "46")
	b.loop = "2000C"
	b.add("HL", fixed("3"), fixed("2"), fixed("19"), fixed("1"))
	b.loop = "2100C"
	b.name("85", p.Billing, "XX")
	b.loop = "2000D"
	b.add("HL", fixed("4"), fixed("3"), fixed("PT"))
	b.loop = "2100D"
	s := p.Subscriber
	b.add("NM1", fixed("QC"), fixed("1"), s.Name.Last, s.Name.First, V{}, V{}, V{}, fixed("MI"), s.MemberID)
	b.loop = "2200D"
	b.add("TRN", fixed("2"), p.ControlNo)
	cat, code := "A2", "20"
	if !accepted {
		cat, code = "A3", "21"
	}
	b.add("STC", composite(fixed(cat), fixed(code), fixed("PR")), fixed(date), fixed("WQ"), p.Total)
	if accepted && payerClaimNo != "" {
		b.add("REF", fixed("1K"), fixed(payerClaimNo))
	}
	return b.segs
}

// Read277CA reads the claim-level acknowledgments of a 277CA.
func Read277CA(set []x12.Segment) ([]Ack, error) {
	var out []Ack
	var cur *Ack
	for _, s := range set {
		switch s.ID {
		case "HL":
			cur = nil
		case "TRN":
			if s.E(1) == "2" {
				out = append(out, Ack{ControlNo: s.E(2)})
				cur = &out[len(out)-1]
			}
		case "STC":
			if cur != nil && cur.Category == "" {
				parts := strings.Split(s.E(1), ":")
				cur.Category = parts[0]
				if len(parts) > 1 {
					cur.Status = parts[1]
				}
				cur.Date, cur.Total = s.E(2), s.E(4)
			}
		case "REF":
			if cur != nil && s.E(1) == "1K" {
				cur.PayerClaimNo = s.E(2)
			}
		}
	}
	for _, a := range out {
		if a.Category == "" {
			return nil, fmt.Errorf("%w: the 277CA's claim %q has no STC", x12.ErrSyntax, clip(a.ControlNo))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the 277CA acknowledges no claim", x12.ErrSyntax)
	}
	return out, nil
}

// ClaimResponse turns a 277CA acknowledgment into a ClaimResponse: an
// accepted claim is queued for adjudication, a rejected one is an error.
func ClaimResponse(a Ack, claimRef, patientRef, insurerRef, requestorRef string, created time.Time) map[string]any {
	r := map[string]any{
		"resourceType": "ClaimResponse",
		"status":       "active",
		"type":         coding("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
		"use":          "claim",
		"patient":      ref(patientRef),
		"created":      created.UTC().Format(time.RFC3339),
		"insurer":      ref(insurerRef),
		"request":      ref(claimRef),
		"identifier":   []any{map[string]any{"system": "urn:ward:x12:clm01", "value": a.ControlNo}},
	}
	if requestorRef != "" {
		r["requestor"] = ref(requestorRef)
	}
	if a.PayerClaimNo != "" {
		r["identifier"] = append(r["identifier"].([]any), map[string]any{"system": "urn:ward:x12:payer-claim-number", "value": a.PayerClaimNo})
	}
	if a.Accepted() {
		r["outcome"] = "queued"
		r["disposition"] = "Accepted for adjudication (277CA " + a.Category + ":" + a.Status + ")."
	} else {
		r["outcome"] = "error"
		r["disposition"] = "Rejected (277CA " + a.Category + ":" + a.Status + ")."
		r["error"] = []any{map[string]any{"code": coding("https://x12.org/codes/claim-status-codes", a.Status)}}
	}
	return r
}
