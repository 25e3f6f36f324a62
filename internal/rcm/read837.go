package rcm

import (
	"fmt"
	"strings"

	"github.com/wardhealth/ward/internal/x12"
)

// Loops837P assigns each segment of an 837P transaction set (ST to SE)
// its loop, the way the guide nests them: HL levels (20 billing, 22
// subscriber, 23 patient), NM1 entity codes and LX service lines. Values
// get no FHIR source: they come from X12.
func Loops837P(set []x12.Segment) []Seg {
	out := make([]Seg, 0, len(set))
	loop := "Header"
	for _, s := range set {
		switch s.ID {
		case "ST", "SE":
			continue
		case "HL":
			loop = map[string]string{"20": "2000A", "22": "2000B", "23": "2000C"}[s.E(3)]
		case "CLM":
			loop = "2300"
		case "LX":
			loop = "2400"
		case "NM1":
			switch s.E(1) {
			case "41":
				loop = "1000A"
			case "40":
				loop = "1000B"
			case "85":
				loop = "2010AA"
			case "IL":
				loop = "2010BA"
			case "PR":
				loop = "2010BB"
			case "QC":
				loop = "2010CA"
			case "DN":
				loop = "2310A"
			case "82":
				if strings.HasPrefix(loop, "24") {
					loop = "2420A"
				} else {
					loop = "2310B"
				}
			case "77":
				loop = "2310C"
			}
		}
		vals := make([]V, len(s.Elements))
		for i, e := range s.Elements {
			vals[i] = V{Val: e}
		}
		// Elements the writer dropped as trailing empties are empty.
		if need := map[string]int{"CLM": 9, "SV1": 7, "NM1": 9, "SBR": 9}[s.ID]; len(vals) < need {
			vals = append(vals, make([]V, need-len(vals))...)
		}
		out = append(out, Seg{Loop: loop, ID: s.ID, Vals: vals})
	}
	return out
}

// Read837P reads an 837P's loops back into the claim's data (sources
// empty): the inverse of Segments837P.
func Read837P(segs []Seg) (Professional, error) {
	var p Professional
	var cur *Provider
	var per *Person
	var line *Line
	val := func(s Seg, n int) V {
		if n <= len(s.Vals) {
			return V{Val: s.Vals[n-1].Val}
		}
		return V{}
	}
	comp := func(s Seg, n int) []V {
		var out []V
		for _, c := range strings.Split(val(s, n).Val, string(x12.Default.Component)) {
			out = append(out, V{Val: c})
		}
		return out
	}
	name := func(s Seg) Name {
		return Name{Last: val(s, 3), First: val(s, 4), Middle: val(s, 5), Suffix: val(s, 7)}
	}
	for _, s := range segs {
		switch s.Loop + "/" + s.ID {
		case "1000A/NM1", "1000B/NM1", "2010AA/NM1", "2010BB/NM1", "2310A/NM1", "2310B/NM1", "2310C/NM1", "2420A/NM1":
			pr := Provider{Name: name(s), Person: val(s, 2).Val == "1", NPI: val(s, 9)}
			switch s.Loop {
			case "1000A":
				p.Submitter = pr
				cur = &p.Submitter
			case "1000B":
				p.Receiver = pr
				cur = &p.Receiver
			case "2010AA":
				p.Billing = pr
				cur = &p.Billing
			case "2010BB":
				p.Payer = pr
				cur = &p.Payer
			case "2310A":
				p.Referring = &pr
				cur = p.Referring
			case "2310B":
				p.Rendering = &pr
				cur = p.Rendering
			case "2310C":
				p.Facility = &pr
				cur = p.Facility
			case "2420A":
				if line == nil {
					return p, fmt.Errorf("rcm: 2420A outside a service line")
				}
				line.Rendering = &pr
				cur = line.Rendering
			}
			per = nil
		case "1000A/PER":
			p.Submitter.Contact, p.Submitter.Phone = val(s, 2), val(s, 4)
		case "2010BA/NM1", "2010CA/NM1":
			pp := Person{Name: name(s), MemberID: val(s, 9)}
			if s.Loop == "2010BA" {
				p.Subscriber = pp
				per = &p.Subscriber
			} else {
				p.Patient = &pp
				per = p.Patient
			}
			cur = nil
		case "2010AA/N3", "2010BA/N3", "2010CA/N3", "2310C/N3":
			if per != nil {
				per.Address.Line = val(s, 1)
			} else if cur != nil {
				cur.Address.Line = val(s, 1)
			}
		case "2010AA/N4", "2010BA/N4", "2010CA/N4", "2310C/N4":
			a := Address{City: val(s, 1), State: val(s, 2), Zip: val(s, 3)}
			if per != nil {
				a.Line = per.Address.Line
				per.Address = a
			} else if cur != nil {
				a.Line = cur.Address.Line
				cur.Address = a
			}
		case "2010BA/DMG", "2010CA/DMG":
			if per != nil {
				per.Birth, per.Sex = val(s, 2), val(s, 3)
			}
		case "2010AA/PER":
			p.Billing.Phone = val(s, 4)
		case "2010AA/REF":
			p.Billing.TaxType, p.Billing.TaxID = val(s, 1), val(s, 2)
		case "2000B/SBR":
			p.Relationship, p.Group, p.PlanName, p.Filing = val(s, 2), val(s, 3), val(s, 4), val(s, 9)
		case "2000C/PAT":
			p.Relationship = val(s, 1)
		case "2300/CLM":
			p.ControlNo, p.Total, p.Assignment = val(s, 1), val(s, 2), val(s, 7)
			c := comp(s, 5)
			p.POS = c[0]
			if len(c) > 2 {
				p.Frequency = c[2]
			}
		case "2300/DTP":
			if val(s, 1).Val == "431" {
				p.OnsetDate = val(s, 3)
			}
		case "2300/REF":
			switch val(s, 1).Val {
			case "G1":
				p.PriorAuth = val(s, 2)
			case "F8":
				p.OriginalRef = val(s, 2)
			}
		case "2300/HI":
			p.ICD = V{Val: "10"}
			for i := range s.Vals {
				c := comp(s, i+1)
				if c[0].Val == "BK" || c[0].Val == "BF" {
					p.ICD = V{Val: "9"}
				}
				if len(c) > 1 {
					p.Diagnoses = append(p.Diagnoses, c[1])
				}
			}
		case "2400/LX":
			p.Lines = append(p.Lines, Line{})
			line = &p.Lines[len(p.Lines)-1]
		case "2400/SV1":
			if line == nil {
				return p, fmt.Errorf("rcm: SV1 outside a service line")
			}
			proc := comp(s, 1)
			if len(proc) > 1 {
				line.Procedure = proc[1]
				line.Modifiers = proc[2:]
			}
			line.Charge, line.Units, line.POS = val(s, 2), val(s, 4), val(s, 5)
			if val(s, 7).Val != "" {
				line.Pointers = comp(s, 7)
			}
		case "2400/DTP":
			if line != nil {
				d := val(s, 3).Val
				from, to, _ := strings.Cut(d, "-")
				line.From, line.To = V{Val: from}, V{Val: to}
			}
		}
	}
	if p.Patient == nil {
		p.Relationship = V{Val: "18"}
	}
	return p, nil
}
