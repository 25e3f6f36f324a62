package rcm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Code systems and identifier systems Ward reads and writes.
const (
	SystemNPI = "http://hl7.org/fhir/sid/us-npi"
	SystemEIN = "urn:oid:2.16.840.1.113883.4.4"
	SystemSSN = "http://hl7.org/fhir/sid/us-ssn"
	SystemPOS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
	// SystemFiling and SystemFrequency carry X12 codes that FHIR R4 has no
	// element for: the claim filing indicator (SBR09, on Coverage.type)
	// and the claim frequency (CLM05-3, on Claim.related.relationship).
	SystemFiling    = "urn:ward:x12:claim-filing-indicator"
	SystemFrequency = "urn:ward:x12:claim-frequency"
	SystemICD10     = "http://hl7.org/fhir/sid/icd-10-cm"
	SystemCPT       = "http://www.ama-assn.org/go/cpt"
	SystemHCPCS     = "urn:oid:2.16.840.1.113883.6.285"
	// PayerIDType is the v2-0203 identifier type of a payer's id.
	PayerIDType = "NIIP"
)

// ErrReference is returned (wrapped) when a reference cannot be resolved;
// the resolver's own errors (not found, forbidden) pass through.
var ErrReference = errors.New("rcm: reference")

// Resolve reads a referenced resource ("Patient/1") as the caller.
type Resolve func(ctx context.Context, reference string) ([]byte, error)

type reader struct {
	ctx       context.Context
	claim     obj
	contained map[string]obj
	resolve   Resolve
	cache     map[string]obj
}

// ref follows a Reference element to its resource: contained ("#id") or
// read through resolve.
func (r *reader) ref(ref obj) (obj, error) {
	s := ref.str("reference")
	if s.Val == "" {
		return obj{}, fmt.Errorf("%w: %s is required", ErrReference, s.Src)
	}
	if strings.HasPrefix(s.Val, "#") {
		c, ok := r.contained[s.Val[1:]]
		if !ok {
			return obj{}, fmt.Errorf("%w: %s %q names no contained resource", ErrReference, s.Src, s.Val)
		}
		return c, nil
	}
	if c, ok := r.cache[s.Val]; ok {
		return c, nil
	}
	typ, id, ok := strings.Cut(s.Val, "/")
	if !ok || id == "" || strings.Contains(id, "/") || strings.Contains(s.Val, "://") {
		return obj{}, fmt.Errorf("%w: %s %q is not a local reference (Type/id)", ErrReference, s.Src, s.Val)
	}
	b, err := r.resolve(r.ctx, s.Val)
	if err != nil {
		return obj{}, fmt.Errorf("%s %q: %w", s.Src, s.Val, err)
	}
	m, err := decode(b)
	if err != nil {
		return obj{}, fmt.Errorf("%s %q: %w", s.Src, s.Val, err)
	}
	o := obj{m: m, path: typ + "/" + id}
	r.cache[s.Val] = o
	return o, nil
}

// FromFHIR reads a professional Claim (JSON) and the resources it refers
// to into the 837P's data. Only a missing or unreadable reference is an
// error; missing values are left empty for the validator to name.
func FromFHIR(ctx context.Context, claim []byte, resolve Resolve) (Professional, error) {
	m, err := decode(claim)
	if err != nil {
		return Professional{}, fmt.Errorf("%w: the Claim is not JSON: %v", ErrReference, err)
	}
	if m["resourceType"] != "Claim" {
		return Professional{}, fmt.Errorf("%w: not a Claim", ErrReference)
	}
	r := &reader{ctx: ctx, claim: obj{m: m, path: "Claim"}, contained: map[string]obj{}, resolve: resolve, cache: map[string]obj{}}
	for _, c := range r.claim.list("contained") {
		id := c.str("id").Val
		c.path = "Claim.contained[" + id + "]"
		r.contained[id] = c
	}
	c := r.claim
	var p Professional

	p.ControlNo = c.str("identifier[0].value")
	if p.ControlNo.Val == "" {
		p.ControlNo = c.str("id")
	}
	billing, err := r.ref(c.get("provider"))
	if err != nil {
		return p, err
	}
	p.Billing = provider(billing)
	payer, err := r.ref(c.get("insurer"))
	if err != nil {
		return p, err
	}
	p.Payer = Provider{Name: Name{Last: payer.str("name")}, NPI: payerID(payer)}

	var ins obj
	for _, i := range c.list("insurance") {
		if i.str("focal").Val == "true" || !ins.ok() {
			ins = i
		}
	}
	cov, err := r.ref(ins.get("coverage"))
	if err != nil {
		return p, err
	}
	p.PriorAuth = ins.str("preAuthRef[0]")
	patient, err := r.ref(c.get("patient"))
	if err != nil {
		return p, err
	}
	subscriber := patient
	if cov.get("subscriber").ok() && cov.str("subscriber.reference").Val != c.str("patient.reference").Val {
		if subscriber, err = r.ref(cov.get("subscriber")); err != nil {
			return p, err
		}
	}
	p.Subscriber = person(subscriber)
	p.Subscriber.MemberID = cov.str("subscriberId")
	if id := cov.str("identifier[0].value"); p.Subscriber.MemberID.Val == "" && id.Val != "" {
		p.Subscriber.MemberID = id
	}
	rel := cov.str("relationship.coding[0].code")
	p.Relationship = V{Val: map[string]string{"self": "18", "spouse": "01", "child": "19", "other": "G8", "injured": "G8", "common": "01", "parent": "G8"}[rel.Val], Src: rel.Src}
	if rel.Val == "" {
		p.Relationship.Val = "18"
	}
	if p.Relationship.Val != "18" {
		pp := person(patient)
		p.Patient = &pp
	}
	for _, cl := range cov.list("class") {
		switch cl.str("type.coding[0].code").Val {
		case "group":
			// SBR04, the group's name, only goes when its number does not.
			p.Group, p.PlanName = cl.str("value"), cl.str("name")
			if p.Group.Val != "" {
				p.PlanName = V{}
			}
		}
	}
	p.Filing = V{Val: "CI", Src: cov.path + ".type"}
	for _, cd := range cov.get("type").list("coding") {
		if cd.str("system").Val == SystemFiling {
			p.Filing = cd.str("code")
		}
	}

	if c.get("facility").ok() {
		loc, err := r.ref(c.get("facility"))
		if err != nil {
			return p, err
		}
		f := provider(loc)
		p.Facility = &Provider{Name: f.Name, NPI: f.NPI, Address: f.Address}
	}
	if c.get("referral").ok() {
		sr, err := r.ref(c.get("referral"))
		if err != nil {
			return p, err
		}
		doc, err := r.ref(sr.get("requester"))
		if err != nil {
			return p, err
		}
		f := provider(doc)
		p.Referring = &Provider{Name: f.Name, Person: f.Person, NPI: f.NPI}
	}
	team := map[string]obj{}
	for _, ct := range c.list("careTeam") {
		team[ct.str("sequence").Val] = ct
	}

	p.ICD = V{Val: "10", Src: "Claim.diagnosis"}
	diagPos := map[string]int{}
	for i, d := range c.list("diagnosis") {
		code := d.str("diagnosisCodeableConcept.coding[0].code")
		if d.str("diagnosisCodeableConcept.coding[0].system").Val == "http://hl7.org/fhir/sid/icd-9-cm" {
			p.ICD = d.str("diagnosisCodeableConcept.coding[0].system")
			p.ICD.Val = "9"
		}
		code.Val = strings.ReplaceAll(code.Val, ".", "")
		p.Diagnoses = append(p.Diagnoses, code)
		diagPos[d.str("sequence").Val] = i + 1
	}

	var sum big.Rat
	for i, it := range c.list("item") {
		var l Line
		l.Procedure = it.str("productOrService.coding[0].code")
		for _, md := range it.list("modifier") {
			l.Modifiers = append(l.Modifiers, md.str("coding[0].code"))
		}
		l.Charge = it.str("net.value")
		if l.Charge.Val == "" {
			l.Charge = it.str("unitPrice.value")
		}
		l.Units = it.str("quantity.value")
		if l.Units.Val == "" {
			l.Units = V{Val: "1", Src: it.path + ".quantity"}
		}
		pos := it.str("locationCodeableConcept.coding[0].code")
		if i == 0 {
			p.POS = pos
		} else if pos.Val != p.POS.Val {
			l.POS = pos
		}
		for k := range it.list("diagnosisSequence") {
			seq := it.str(fmt.Sprintf("diagnosisSequence[%d]", k))
			ptr := seq
			if n, ok := diagPos[seq.Val]; ok {
				ptr.Val = fmt.Sprint(n)
			} else {
				ptr.Val = "0" // names no diagnosis: the validator says so
			}
			l.Pointers = append(l.Pointers, ptr)
		}
		if len(l.Pointers) == 0 && len(p.Diagnoses) > 0 {
			// The example claims point nowhere: the first diagnosis is
			// the principal one.
			l.Pointers = []V{{Val: "1", Src: it.path + ".diagnosisSequence"}}
		}
		if d := it.str("servicedDate"); d.Val != "" {
			l.From = ccyymmdd(d)
		} else {
			l.From, l.To = ccyymmdd(it.str("servicedPeriod.start")), ccyymmdd(it.str("servicedPeriod.end"))
		}
		if seqs, _ := it.m["careTeamSequence"].([]any); len(seqs) > 0 {
			ct := team[it.str("careTeamSequence[0]").Val]
			if ct.ok() {
				doc, err := r.ref(ct.get("provider"))
				if err != nil {
					return p, err
				}
				full := provider(doc)
				rp := Provider{Name: full.Name, Person: full.Person, NPI: full.NPI}
				switch {
				case p.Rendering == nil && rp.NPI.Val != p.Billing.NPI.Val:
					p.Rendering = &rp
				case p.Rendering != nil && rp.NPI.Val != p.Rendering.NPI.Val:
					l.Rendering = &rp
				}
			}
		}
		if x, ok := new(big.Rat).SetString(l.Charge.Val); ok {
			sum.Add(&sum, x)
		}
		p.Lines = append(p.Lines, l)
	}
	p.Total = c.str("total.value")
	if p.Total.Val == "" {
		p.Total = V{Val: sum.FloatString(2), Src: "Claim.item.net"}
	}
	p.Total.Val = money(p.Total.Val)
	for i := range p.Lines {
		p.Lines[i].Charge.Val = money(p.Lines[i].Charge.Val)
	}
	p.Frequency = V{Val: "1", Src: "Claim.related"}
	for _, rl := range c.list("related") {
		for _, cd := range rl.get("relationship").list("coding") {
			if cd.str("system").Val == SystemFrequency {
				p.Frequency = cd.str("code")
				p.OriginalRef = rl.str("reference.value")
			}
		}
	}
	p.Assignment = V{Val: "A", Src: "Claim.payee.type"}
	if c.str("payee.type.coding[0].code").Val == "subscriber" {
		p.Assignment.Val = "C"
	}
	for _, si := range c.list("supportingInfo") {
		if si.str("category.coding[0].code").Val == "onset" {
			p.OnsetDate = ccyymmdd(si.str("timingDate"))
		}
	}
	return p, nil
}

// money writes an exact decimal amount the way X12 wants it: no trailing
// zeros after the point, no point for whole amounts (75.00 -> 75).
func money(s string) string {
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "eE/") {
		return s
	}
	out := r.FloatString(2)
	out = strings.TrimRight(strings.TrimRight(out, "0"), ".")
	if out == "" || out == "-" {
		return "0"
	}
	return out
}

func ccyymmdd(d V) V {
	if len(d.Val) >= 10 && d.Val[4] == '-' && d.Val[7] == '-' {
		d.Val = d.Val[:4] + d.Val[5:7] + d.Val[8:10]
	}
	return d
}

func person(p obj) Person {
	out := Person{Name: humanName(p), Birth: ccyymmdd(p.str("birthDate")), Address: address(p)}
	g := p.str("gender")
	out.Sex = V{Val: map[string]string{"male": "M", "female": "F", "other": "U", "unknown": "U"}[g.Val], Src: g.Src}
	return out
}

func humanName(p obj) Name {
	return Name{Last: p.str("name[0].family"), First: p.str("name[0].given[0]"), Middle: p.str("name[0].given[1]"), Suffix: p.str("name[0].suffix[0]")}
}

func address(p obj) Address {
	a := p.get("address[0]")
	if !a.ok() {
		a = p.get("address") // Location.address is one Address
	}
	zip := a.str("postalCode")
	zip.Val = strings.ReplaceAll(zip.Val, "-", "")
	return Address{Line: a.str("line[0]"), City: a.str("city"), State: a.str("state"), Zip: zip}
}

// provider reads an Organization, Practitioner or Location.
func provider(o obj) Provider {
	p := Provider{Address: address(o)}
	if o.str("resourceType").Val == "Practitioner" {
		p.Person = true
		p.Name = humanName(o)
	} else {
		p.Name = Name{Last: o.str("name")}
	}
	p.NPI = V{Src: o.path + ".identifier"}
	for i, id := range o.list("identifier") {
		switch id.str("system").Val {
		case SystemNPI:
			p.NPI = o.str(fmt.Sprintf("identifier[%d].value", i))
		case SystemEIN:
			p.TaxID, p.TaxType = id.str("value"), V{Val: "EI", Src: id.path + ".system"}
		case SystemSSN:
			p.TaxID, p.TaxType = id.str("value"), V{Val: "SY", Src: id.path + ".system"}
		}
	}
	p.TaxID.Val = strings.ReplaceAll(p.TaxID.Val, "-", "")
	p.Phone = V{Src: o.path + ".telecom"}
	for i, t := range o.list("telecom") {
		if t.str("system").Val == "phone" {
			p.Phone = o.str(fmt.Sprintf("telecom[%d].value", i))
			p.Phone.Val = phoneDigits(p.Phone.Val)
			break
		}
	}
	if p.TaxType.Val == "" {
		p.TaxType = V{Val: "EI", Src: o.path + ".identifier"}
		p.TaxID.Src = o.path + ".identifier"
	}
	return p
}

// payerID is the payer's id: its identifier of type NIIP, else its first.
func payerID(o obj) V {
	for _, id := range o.list("identifier") {
		if id.str("type.coding[0].code").Val == PayerIDType {
			return id.str("value")
		}
	}
	return o.str("identifier[0].value")
}

// PayerIDOf is an Organization's payer id (JSON): its identifier of type
// NIIP, else its first.
func PayerIDOf(org []byte) string {
	m, err := decode(org)
	if err != nil {
		return ""
	}
	return payerID(obj{m: m}).Val
}

// phoneDigits keeps a US number's ten digits (+1 and punctuation go).
func phoneDigits(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	d := b.String()
	if len(d) == 11 && d[0] == '1' {
		d = d[1:]
	}
	if d == "" {
		return s
	}
	return d
}
