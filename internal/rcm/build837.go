package rcm

import (
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/x12"
)

// Version837P is the 837 professional implementation guide.
const Version837P = "005010X222A1"

// Seg is a segment as built, with the loop it belongs to and, per
// element, the FHIR element its value came from ("" for fixed values).
type Seg struct {
	Loop string
	ID   string
	Vals []V
}

func (s Seg) segment() x12.Segment {
	el := make([]string, len(s.Vals))
	for i, v := range s.Vals {
		el[i] = v.Val
	}
	// Trailing empty elements are not written (X12 syntax rule).
	for len(el) > 0 && el[len(el)-1] == "" {
		el = el[:len(el)-1]
	}
	return x12.Segment{ID: s.ID, Elements: el}
}

// fixed is a value the guide prescribes, not taken from the claim.
func fixed(s string) V { return V{Val: s} }

type builder struct {
	segs []Seg
	loop string
}

func (b *builder) add(id string, vals ...V) {
	b.segs = append(b.segs, Seg{Loop: b.loop, ID: id, Vals: vals})
}

// composite joins components with the component separator; its source is
// the first component's that has one.
func composite(parts ...V) V {
	for len(parts) > 1 && parts[len(parts)-1].Val == "" {
		parts = parts[:len(parts)-1]
	}
	var b strings.Builder
	src := ""
	srcs := make([]string, len(parts))
	for i, p := range parts {
		srcs[i] = p.Src
		if i > 0 {
			b.WriteByte(x12.Default.Component)
		}
		b.WriteString(p.Val)
		if src == "" {
			src = p.Src
		}
	}
	return V{Val: b.String(), Src: src, Parts: srcs}
}

func (b *builder) name(entity string, p Provider, idQual string) {
	kind := "2"
	if p.Person {
		kind = "1"
	}
	q := fixed(idQual)
	if p.NPI.Val == "" && idQual != "" {
		q = V{}
	}
	b.add("NM1", fixed(entity), fixed(kind), p.Name.Last, p.Name.First, p.Name.Middle, V{}, p.Name.Suffix, q, p.NPI)
}

func (b *builder) address(a Address) {
	b.add("N3", a.Line)
	b.add("N4", a.City, a.State, a.Zip)
}

func (b *builder) person(entity string, p Person, withID bool) {
	q, id := V{}, V{}
	if withID {
		q, id = fixed("MI"), p.MemberID
	}
	b.add("NM1", fixed(entity), fixed("1"), p.Name.Last, p.Name.First, p.Name.Middle, V{}, p.Name.Suffix, q, id)
	b.address(p.Address)
	b.add("DMG", fixed("D8"), p.Birth, p.Sex)
}

// Segments837P lays the claim out as the 837P's loops and segments (the
// transaction set's body, between ST and SE). refID is BHT03 and created
// BHT04/05 (CCYYMMDD, HHMM).
func Segments837P(c Professional, refID, date, hhmm string) []Seg {
	b := &builder{loop: "Header"}
	b.add("BHT", fixed("0019"), fixed("00"), fixed(refID), fixed(date), fixed(hhmm), fixed("CH"))
	b.loop = "1000A"
	b.name("41", c.Submitter, "46")
	b.add("PER", fixed("IC"), c.Submitter.Contact, fixed("TE"), c.Submitter.Phone)
	b.loop = "1000B"
	b.name("40", c.Receiver, "46")

	b.loop = "2000A"
	b.add("HL", fixed("1"), V{}, fixed("20"), fixed("1"))
	b.loop = "2010AA"
	b.name("85", c.Billing, "XX")
	b.address(c.Billing.Address)
	b.add("REF", fixed(c.Billing.TaxType.Val), c.Billing.TaxID)
	b.segs[len(b.segs)-1].Vals[0].Src = c.Billing.TaxType.Src
	if c.Billing.Phone.Val != "" {
		b.add("PER", fixed("IC"), V{}, fixed("TE"), c.Billing.Phone)
	}

	b.loop = "2000B"
	child := "0"
	if c.Patient != nil {
		child = "1"
	}
	rel := fixed("")
	if c.Patient == nil {
		rel = V{Val: "18", Src: c.Relationship.Src}
	}
	b.add("HL", fixed("2"), fixed("1"), fixed("22"), fixed(child))
	b.add("SBR", fixed("P"), rel, c.Group, c.PlanName, V{}, V{}, V{}, V{}, c.Filing)
	b.loop = "2010BA"
	b.person("IL", c.Subscriber, true)
	b.loop = "2010BB"
	b.name("PR", c.Payer, "PI")
	if c.Patient != nil {
		b.loop = "2000C"
		b.add("HL", fixed("3"), fixed("2"), fixed("23"), fixed("0"))
		b.add("PAT", c.Relationship)
		b.loop = "2010CA"
		b.person("QC", *c.Patient, false)
	}

	b.loop = "2300"
	b.add("CLM", c.ControlNo, c.Total, V{}, V{}, composite(c.POS, fixed("B"), c.Frequency), fixed("Y"), c.Assignment, fixed("Y"), fixed("Y"))
	if c.OnsetDate.Val != "" {
		b.add("DTP", fixed("431"), fixed("D8"), c.OnsetDate)
	}
	if c.PriorAuth.Val != "" {
		b.add("REF", fixed("G1"), c.PriorAuth)
	}
	if c.OriginalRef.Val != "" || c.Frequency.Val == "7" || c.Frequency.Val == "8" {
		b.add("REF", fixed("F8"), c.OriginalRef)
	}
	hi := make([]V, 0, len(c.Diagnoses))
	for i, d := range c.Diagnoses {
		q := "ABF"
		if i == 0 {
			q = "ABK"
		}
		if c.ICD.Val == "9" {
			q = strings.TrimPrefix(q, "A")
		}
		hi = append(hi, composite(V{Val: q, Src: c.ICD.Src}, d))
	}
	b.add("HI", hi...)
	for _, p := range []struct {
		loop, entity string
		p            *Provider
	}{{"2310A", "DN", c.Referring}, {"2310B", "82", c.Rendering}, {"2310C", "77", c.Facility}} {
		if p.p == nil {
			continue
		}
		b.loop = p.loop
		b.name(p.entity, *p.p, "XX")
		if p.loop == "2310C" {
			b.address(p.p.Address)
		}
	}
	for i, l := range c.Lines {
		b.loop = "2400"
		b.add("LX", fixed(strconv.Itoa(i+1)))
		proc := append([]V{fixed("HC"), l.Procedure}, l.Modifiers...)
		ptrs := make([]V, len(l.Pointers))
		copy(ptrs, l.Pointers)
		b.add("SV1", composite(proc...), l.Charge, fixed("UN"), l.Units, l.POS, V{}, composite(ptrs...))
		date := l.From
		if l.To.Val != "" && l.To.Val != l.From.Val {
			b.add("DTP", fixed("472"), fixed("RD8"), V{Val: l.From.Val + "-" + l.To.Val, Src: l.From.Src})
		} else {
			b.add("DTP", fixed("472"), fixed("D8"), date)
		}
		if l.Rendering != nil {
			b.loop = "2420A"
			b.name("82", *l.Rendering, "XX")
		}
	}
	return b.segs
}

// Interchange837P wraps the segments in an interchange.
func Interchange837P(segs []Seg, env x12.Envelope) *x12.Interchange {
	env.FunctionalID, env.Version = "HC", Version837P
	body := make([]x12.Segment, len(segs))
	for i, s := range segs {
		body[i] = s.segment()
	}
	return x12.Wrap(env, "837", body)
}
