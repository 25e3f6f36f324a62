package rcm

import (
	"context"
	"fmt"
	"strings"

	"github.com/wardhealth/ward/internal/x12"
)

// Versions of the eligibility guides.
const (
	Version270 = "005010X279A1"
	Version271 = "005010X279A1"
)

// Inquiry is what a 270 asks: is this subscriber covered by this payer
// on this date, for this provider.
type Inquiry struct {
	Payer      Provider // 2100A
	Provider   Provider // 2100B
	Subscriber Person   // 2100C
	Date       V        // DTP*291, CCYYMMDD
	Trace      string   // TRN02: echoed in the 271
	// ServiceType is EQ01 (30: health benefit plan coverage).
	ServiceType string
}

// FromEligibilityRequest reads a CoverageEligibilityRequest and what it
// names (patient, focal coverage, insurer, provider).
func FromEligibilityRequest(ctx context.Context, req []byte, resolve Resolve) (Inquiry, error) {
	m, err := decode(req)
	if err != nil || m["resourceType"] != "CoverageEligibilityRequest" {
		return Inquiry{}, fmt.Errorf("%w: not a CoverageEligibilityRequest", ErrReference)
	}
	r := &reader{ctx: ctx, claim: obj{m: m, path: "CoverageEligibilityRequest"}, contained: map[string]obj{}, resolve: resolve, cache: map[string]obj{}}
	for _, c := range r.claim.list("contained") {
		id := c.str("id").Val
		c.path = "CoverageEligibilityRequest.contained[" + id + "]"
		r.contained[id] = c
	}
	c := r.claim
	var q Inquiry
	payer, err := r.ref(c.get("insurer"))
	if err != nil {
		return q, err
	}
	q.Payer = Provider{Name: Name{Last: payer.str("name")}, NPI: payerID(payer)}
	prov, err := r.ref(c.get("provider"))
	if err != nil {
		return q, err
	}
	pp := provider(prov)
	q.Provider = Provider{Name: pp.Name, Person: pp.Person, NPI: pp.NPI}
	patient, err := r.ref(c.get("patient"))
	if err != nil {
		return q, err
	}
	q.Subscriber = person(patient)
	q.Subscriber.Address = Address{}
	var ins obj
	for _, i := range c.list("insurance") {
		if i.str("focal").Val == "true" || !ins.ok() {
			ins = i
		}
	}
	if !ins.ok() {
		return q, fmt.Errorf("%w: CoverageEligibilityRequest.insurance names no Coverage", ErrReference)
	}
	cov, err := r.ref(ins.get("coverage"))
	if err != nil {
		return q, err
	}
	q.Subscriber.MemberID = cov.str("subscriberId")
	if id := cov.str("identifier[0].value"); q.Subscriber.MemberID.Val == "" && id.Val != "" {
		q.Subscriber.MemberID = id
	}
	q.Date = ccyymmdd(c.str("servicedDate"))
	if q.Date.Val == "" {
		q.Date = ccyymmdd(c.str("created"))
	}
	q.ServiceType = "30"
	return q, nil
}

// ValidateInquiry names what a 270 cannot go without.
func ValidateInquiry(segs []Seg) []Issue {
	var out []Issue
	for _, s := range segs {
		for n, val := range s.Vals {
			if strings.ContainsAny(val.Val, "*~^:") {
				out = append(out, Issue{Loop: s.Loop, Segment: s.ID, Element: fmt.Sprintf("%s%02d", s.ID, n+1), Src: val.Src, Value: clip(val.Val), Code: "separator", Message: "holds an X12 separator character"})
				continue
			}
			var checks []check
			switch fmt.Sprintf("%s/%s%02d", s.Loop, s.ID, n+1) {
			case "2100A/NM103", "2100A/NM109", "2100B/NM103", "2100C/NM103", "2100C/NM109":
				checks = []check{required, maxLen(80)}
			case "2100B/NM109":
				checks = []check{required, npi}
			case "2100C/DMG02":
				checks = []check{pastDate}
			case "2100C/DTP03":
				checks = []check{required, date}
			}
			for _, c := range checks {
				if code, msg := c(val.Val); code != "" {
					out = append(out, Issue{Loop: s.Loop, Segment: s.ID, Element: fmt.Sprintf("%s%02d", s.ID, n+1), Src: val.Src, Value: clip(val.Val), Code: code, Message: msg})
					break
				}
			}
		}
	}
	return out
}

// Segments270 lays an inquiry out as a 270's body.
func Segments270(q Inquiry, date, hhmm string) []Seg {
	b := &builder{loop: "Header"}
	b.add("BHT", fixed("0022"), fixed("13"), fixed(q.Trace), fixed(date), fixed(hhmm))
	b.loop = "2000A"
	b.add("HL", fixed("1"), V{}, fixed("20"), fixed("1"))
	b.loop = "2100A"
	b.name("PR", q.Payer, "PI")
	b.loop = "2000B"
	b.add("HL", fixed("2"), fixed("1"), fixed("21"), fixed("1"))
	b.loop = "2100B"
	b.name("1P", q.Provider, "XX")
	b.loop = "2000C"
	b.add("HL", fixed("3"), fixed("2"), fixed("22"), fixed("0"))
	b.add("TRN", fixed("1"), fixed(q.Trace), fixed("9WARDHLTH00"))
	b.loop = "2100C"
	b.add("NM1", fixed("IL"), fixed("1"), q.Subscriber.Name.Last, q.Subscriber.Name.First, q.Subscriber.Name.Middle, V{}, q.Subscriber.Name.Suffix, fixed("MI"), q.Subscriber.MemberID)
	if q.Subscriber.Birth.Val != "" || q.Subscriber.Sex.Val != "" {
		b.add("DMG", fixed("D8"), q.Subscriber.Birth, q.Subscriber.Sex)
	}
	b.add("DTP", fixed("291"), fixed("D8"), q.Date)
	b.loop = "2110C"
	b.add("EQ", fixed(q.ServiceType))
	return b.segs
}

// Interchange wraps a transaction set's segments.
func Interchange(segs []Seg, env x12.Envelope, setID string) *x12.Interchange {
	body := make([]x12.Segment, len(segs))
	for i, s := range segs {
		body[i] = s.segment()
	}
	return x12.Wrap(env, setID, body)
}

// ReadInquiry reads a 270 transaction set (ST to SE).
func ReadInquiry(set []x12.Segment) (Inquiry, error) {
	var q Inquiry
	level := ""
	for _, s := range set {
		switch s.ID {
		case "HL":
			level = s.E(3)
		case "NM1":
			switch level {
			case "20":
				q.Payer = Provider{Name: Name{Last: V{Val: s.E(3)}}, NPI: V{Val: s.E(9)}}
			case "21":
				q.Provider = Provider{Name: Name{Last: V{Val: s.E(3)}, First: V{Val: s.E(4)}}, Person: s.E(2) == "1", NPI: V{Val: s.E(9)}}
			case "22":
				q.Subscriber.Name = Name{Last: V{Val: s.E(3)}, First: V{Val: s.E(4)}, Middle: V{Val: s.E(5)}, Suffix: V{Val: s.E(7)}}
				q.Subscriber.MemberID = V{Val: s.E(9)}
			}
		case "TRN":
			q.Trace = s.E(2)
		case "DMG":
			q.Subscriber.Birth, q.Subscriber.Sex = V{Val: s.E(2)}, V{Val: s.E(3)}
		case "DTP":
			if s.E(1) == "291" {
				q.Date = V{Val: s.E(3)}
			}
		case "EQ":
			q.ServiceType = s.E(1)
		}
	}
	if q.Subscriber.MemberID.Val == "" || q.Payer.NPI.Val == "" {
		return q, fmt.Errorf("%w: the 270 names no payer or member id", x12.ErrSyntax)
	}
	return q, nil
}
