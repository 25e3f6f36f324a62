package rcm

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/x12"
)

// Benefit is one EB segment of a 271.
type Benefit struct {
	Code          string // EB01: 1 active, 6 inactive, A coinsurance, B copay, C deductible, G out-of-pocket
	Level         string // EB02: IND, FAM
	ServiceType   string // EB03
	InsuranceType string // EB04
	Plan          string // EB05 plan description
	Period        string // EB06: 23 calendar year, 27 visit, 29 remaining
	Amount        string // EB07
	Percent       string // EB08, 0.2 for 20%
	InNetwork     string // EB12: Y, N, W
}

// Reject is an AAA segment: the payer could not answer.
type Reject struct {
	Loop   string
	Code   string // AAA03: 72 bad member id, 75 subscriber not found, 42 unable to respond
	Action string // AAA04
}

// Answer is what a 271 says of one subscriber.
type Answer struct {
	Inquiry
	Rejects    []Reject
	Benefits   []Benefit
	PlanBegin  string // DTP*346
	PlanEnd    string // DTP*347
	GroupOrPol string // REF*6P group number
}

// Active reports whether the payer says the subscriber is covered.
func (a Answer) Active() bool {
	for _, b := range a.Benefits {
		if b.Code == "1" {
			return true
		}
	}
	return false
}

// Segments271 lays an answer out as a 271's body.
func Segments271(a Answer, date, hhmm string) []Seg {
	b := &builder{loop: "Header"}
	b.add("BHT", fixed("0022"), fixed("11"), fixed(a.Trace), fixed(date), fixed(hhmm))
	b.loop = "2000A"
	b.add("HL", fixed("1"), V{}, fixed("20"), fixed("1"))
	b.loop = "2100A"
	b.name("PR", a.Payer, "PI")
	b.loop = "2000B"
	b.add("HL", fixed("2"), fixed("1"), fixed("21"), fixed("1"))
	b.loop = "2100B"
	b.name("1P", a.Provider, "XX")
	b.loop = "2000C"
	b.add("HL", fixed("3"), fixed("2"), fixed("22"), fixed("0"))
	b.add("TRN", fixed("2"), fixed(a.Trace), fixed("9WARDHLTH00"))
	b.loop = "2100C"
	s := a.Subscriber
	b.add("NM1", fixed("IL"), fixed("1"), s.Name.Last, s.Name.First, s.Name.Middle, V{}, s.Name.Suffix, fixed("MI"), s.MemberID)
	for _, r := range a.Rejects {
		b.add("AAA", fixed("N"), V{}, fixed(r.Code), fixed(r.Action))
	}
	if a.GroupOrPol != "" {
		b.add("REF", fixed("6P"), fixed(a.GroupOrPol))
	}
	if s.Birth.Val != "" {
		b.add("DMG", fixed("D8"), s.Birth, s.Sex)
	}
	if a.PlanBegin != "" {
		b.add("DTP", fixed("346"), fixed("D8"), fixed(a.PlanBegin))
	}
	if a.PlanEnd != "" {
		b.add("DTP", fixed("347"), fixed("D8"), fixed(a.PlanEnd))
	}
	b.loop = "2110C"
	for _, e := range a.Benefits {
		b.add("EB", fixed(e.Code), fixed(e.Level), fixed(e.ServiceType), fixed(e.InsuranceType), fixed(e.Plan), fixed(e.Period),
			fixed(e.Amount), fixed(e.Percent), V{}, V{}, V{}, fixed(e.InNetwork))
	}
	return b.segs
}

// Read271 reads a 271 transaction set (ST to SE).
func Read271(set []x12.Segment) (Answer, error) {
	var a Answer
	level, loop := "", ""
	for _, s := range set {
		switch s.ID {
		case "HL":
			level = s.E(3)
			loop = map[string]string{"20": "2000A", "21": "2000B", "22": "2000C"}[level]
		case "NM1":
			loop = map[string]string{"20": "2100A", "21": "2100B", "22": "2100C"}[level]
			switch level {
			case "20":
				a.Payer = Provider{Name: Name{Last: V{Val: s.E(3)}}, NPI: V{Val: s.E(9)}}
			case "21":
				a.Provider = Provider{Name: Name{Last: V{Val: s.E(3)}, First: V{Val: s.E(4)}}, Person: s.E(2) == "1", NPI: V{Val: s.E(9)}}
			case "22":
				a.Subscriber.Name = Name{Last: V{Val: s.E(3)}, First: V{Val: s.E(4)}, Middle: V{Val: s.E(5)}, Suffix: V{Val: s.E(7)}}
				a.Subscriber.MemberID = V{Val: s.E(9)}
			}
		case "AAA":
			a.Rejects = append(a.Rejects, Reject{Loop: loop, Code: s.E(3), Action: s.E(4)})
		case "TRN":
			if a.Trace == "" || s.E(1) == "2" {
				a.Trace = s.E(2)
			}
		case "REF":
			if s.E(1) == "6P" || s.E(1) == "18" {
				a.GroupOrPol = s.E(2)
			}
		case "DMG":
			a.Subscriber.Birth, a.Subscriber.Sex = V{Val: s.E(2)}, V{Val: s.E(3)}
		case "DTP":
			switch s.E(1) {
			case "346":
				a.PlanBegin = s.E(3)
			case "347":
				a.PlanEnd = s.E(3)
			case "291", "307":
				if from, to, ok := strings.Cut(s.E(3), "-"); ok && s.E(2) == "RD8" {
					a.PlanBegin, a.PlanEnd = from, to
				}
			}
		case "EB":
			a.Benefits = append(a.Benefits, Benefit{Code: s.E(1), Level: s.E(2), ServiceType: s.E(3), InsuranceType: s.E(4), Plan: s.E(5),
				Period: s.E(6), Amount: s.E(7), Percent: s.E(8), InNetwork: s.E(12)})
		}
	}
	if len(a.Benefits) == 0 && len(a.Rejects) == 0 {
		return a, fmt.Errorf("%w: the 271 has neither benefits (EB) nor rejections (AAA)", x12.ErrSyntax)
	}
	return a, nil
}

// Systems of the codes a CoverageEligibilityResponse carries.
const (
	SystemServiceType = "https://x12.org/codes/service-type-codes"
	SystemBenefitType = "http://terminology.hl7.org/CodeSystem/benefit-type"
	SystemNetwork     = "http://terminology.hl7.org/CodeSystem/benefit-network"
	SystemUnit        = "http://terminology.hl7.org/CodeSystem/benefit-unit"
	SystemTerm        = "http://terminology.hl7.org/CodeSystem/benefit-term"
	// SystemReject holds a 271's AAA03 reject reasons (FHIR R4 binds
	// CoverageEligibilityResponse.error.code to an example value set only).
	SystemReject = "urn:ward:x12:aaa-reject-reason"
)

var rejectText = map[string]string{
	"42": "unable to respond at current time", "72": "invalid or missing member id", "73": "invalid or missing subscriber name",
	"75": "subscriber or insured not found", "76": "duplicate subscriber or insured id", "58": "invalid or missing date of birth",
}

// Refs names the resources a CoverageEligibilityResponse points at.
type Refs struct {
	Request, Patient, Insurer, Coverage, Provider string
}

// Response turns a 271's answer into a CoverageEligibilityResponse.
func Response(a Answer, refs Refs, created time.Time) map[string]any {
	r := map[string]any{
		"resourceType": "CoverageEligibilityResponse",
		"status":       "active",
		"purpose":      []any{"validation", "benefits"},
		"patient":      map[string]any{"reference": refs.Patient},
		"created":      created.UTC().Format(time.RFC3339),
		"request":      map[string]any{"reference": refs.Request},
		"insurer":      map[string]any{"reference": refs.Insurer},
		"identifier":   []any{map[string]any{"system": "urn:ward:x12:trn", "value": a.Trace}},
	}
	if refs.Provider != "" {
		r["requestor"] = map[string]any{"reference": refs.Provider}
	}
	if len(a.Rejects) > 0 {
		r["outcome"] = "error"
		var errs []any
		var texts []string
		for _, rj := range a.Rejects {
			t := rejectText[rj.Code]
			if t == "" {
				t = "rejected (AAA03 " + rj.Code + ")"
			}
			texts = append(texts, t)
			errs = append(errs, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": SystemReject, "code": rj.Code, "display": t}}}})
		}
		r["error"] = errs
		r["disposition"] = "The payer could not answer: " + strings.Join(texts, "; ")
		return r
	}
	r["outcome"] = "complete"
	ins := map[string]any{"coverage": map[string]any{"reference": refs.Coverage}, "inforce": a.Active()}
	if a.Active() {
		r["disposition"] = "Coverage is active."
	} else {
		r["disposition"] = "Coverage is not active."
	}
	if p := period(a.PlanBegin, a.PlanEnd); p != nil {
		ins["benefitPeriod"] = p
	}
	// One item per service type and plan; its benefits are the EBs with an
	// amount or a percentage.
	var items []any
	byKey := map[string]map[string]any{}
	for _, e := range a.Benefits {
		st := e.ServiceType
		if st == "" {
			st = "30"
		}
		it, ok := byKey[st]
		if !ok {
			it = map[string]any{"category": map[string]any{"coding": []any{map[string]any{"system": SystemServiceType, "code": st}}}}
			byKey[st] = it
			items = append(items, it)
		}
		if e.Plan != "" {
			it["name"] = e.Plan
		}
		if e.InNetwork == "Y" || e.InNetwork == "N" {
			it["network"] = coded(SystemNetwork, map[string]string{"Y": "in", "N": "out"}[e.InNetwork])
		}
		if e.Level != "" {
			it["unit"] = coded(SystemUnit, map[string]string{"IND": "individual", "FAM": "family"}[e.Level])
		}
		typ := map[string]string{"A": "copay-percent", "B": "copay", "C": "deductible", "G": "benefit"}[e.Code]
		if typ == "" {
			continue
		}
		ben := map[string]any{"type": coded(SystemBenefitType, typ)}
		if e.Amount != "" {
			if f, ok := new(big.Rat).SetString(e.Amount); ok {
				v, _ := f.Float64()
				ben["allowedMoney"] = map[string]any{"value": v, "currency": "USD"}
			}
		}
		if e.Percent != "" {
			if f, ok := new(big.Rat).SetString(e.Percent); ok {
				pct, _ := new(big.Rat).Mul(f, big.NewRat(100, 1)).Float64()
				ben["allowedUnsignedInt"] = int(pct + 0.5)
			}
		}
		if e.Period == "23" {
			it["term"] = coded(SystemTerm, "annual")
		}
		bs, _ := it["benefit"].([]any)
		it["benefit"] = append(bs, ben)
	}
	if len(items) > 0 {
		ins["item"] = items
	}
	r["insurance"] = []any{ins}
	return r
}

func coded(system, code string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
}

func period(from, to string) map[string]any {
	p := map[string]any{}
	if t, ok := parseDate(from); ok {
		p["start"] = t.Format("2006-01-02")
	}
	if t, ok := parseDate(to); ok {
		p["end"] = t.Format("2006-01-02")
	}
	if len(p) == 0 {
		return nil
	}
	return p
}
