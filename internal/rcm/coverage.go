package rcm

import (
	"strings"
)

// AnswerFromCoverages answers a 270 the way a payer would, from the
// Coverage resources that may be the subscriber's (as JSON): the one whose
// subscriberId or identifier is the member id. Active and in force on the
// date: EB*1 with the plan, its period and its costs to the beneficiary
// (copay B, percentage A, deductible C, out-of-pocket maximum G); otherwise
// EB*6. None: AAA 75 (subscriber not found).
func AnswerFromCoverages(q Inquiry, coverages [][]byte) Answer {
	a := Answer{Inquiry: q}
	var cov obj
	for _, b := range coverages {
		m, err := decode(b)
		if err != nil || m["resourceType"] != "Coverage" {
			continue
		}
		c := obj{m: m, path: "Coverage"}
		member := q.Subscriber.MemberID.Val
		match := c.str("subscriberId").Val == member
		for _, id := range c.list("identifier") {
			match = match || id.str("value").Val == member
		}
		if match && member != "" {
			cov = c
			break
		}
	}
	if !cov.ok() {
		a.Rejects = []Reject{{Loop: "2100C", Code: "75", Action: "C"}}
		return a
	}
	start := strings.ReplaceAll(cov.str("period.start").Val, "-", "")
	end := strings.ReplaceAll(cov.str("period.end").Val, "-", "")
	if len(start) > 8 {
		start = start[:8]
	}
	if len(end) > 8 {
		end = end[:8]
	}
	a.PlanBegin, a.PlanEnd = start, end
	plan := ""
	for _, cl := range cov.list("class") {
		switch cl.str("type.coding[0].code").Val {
		case "plan":
			plan = cl.str("name").Val
			if plan == "" {
				plan = cl.str("value").Val
			}
		case "group":
			a.GroupOrPol = cl.str("value").Val
		}
	}
	plan = strings.NewReplacer("*", " ", "~", " ", "^", " ", ":", " ").Replace(plan)
	a.GroupOrPol = strings.NewReplacer("*", " ", "~", " ", "^", " ", ":", " ").Replace(a.GroupOrPol)
	d := q.Date.Val
	inForce := cov.str("status").Val == "active" && (start == "" || d == "" || d >= start) && (end == "" || d == "" || d <= end)
	if !inForce {
		a.Benefits = []Benefit{{Code: "6", Level: "IND", ServiceType: "30", Plan: plan}}
		return a
	}
	a.Benefits = []Benefit{{Code: "1", Level: "IND", ServiceType: "30", InsuranceType: insuranceType(cov), Plan: plan}}
	for _, ct := range cov.list("costToBeneficiary") {
		typ := ct.str("type.coding[0].code").Val
		amt := money(ct.str("valueMoney.value").Val)
		pct := ct.str("valueQuantity.value").Val
		switch {
		case typ == "copaypct" && pct != "":
			a.Benefits = append(a.Benefits, Benefit{Code: "A", Level: "IND", ServiceType: "30", Percent: percent(pct), InNetwork: "Y"})
		case typ == "deductible" && amt != "":
			a.Benefits = append(a.Benefits, Benefit{Code: "C", Level: "IND", ServiceType: "30", Period: "23", Amount: amt, InNetwork: "Y"})
		case typ == "maxoutofpocket" && amt != "":
			a.Benefits = append(a.Benefits, Benefit{Code: "G", Level: "IND", ServiceType: "30", Period: "23", Amount: amt, InNetwork: "Y"})
		case amt != "":
			// copay, gpvisit, spvisit, emergency, urgentcare, televisit...
			a.Benefits = append(a.Benefits, Benefit{Code: "B", Level: "IND", ServiceType: serviceTypeOf(typ), Period: "27", Amount: amt, InNetwork: "Y"})
		}
	}
	return a
}

// percent turns 20 (a Quantity in %) into EB08's 0.2.
func percent(v string) string {
	r := money(v)
	if r == "" {
		return ""
	}
	f, ok := ratOf(r)
	if !ok {
		return ""
	}
	return money(f.Quo(f, ratInt(100)).FloatString(4))
}

func serviceTypeOf(copayType string) string {
	switch copayType {
	case "gpvisit", "spvisit", "televisit":
		return "98" // professional (physician) visit - office
	case "emergency":
		return "86"
	case "urgentcare":
		return "UC"
	case "inpthosp":
		return "48"
	}
	return "30"
}

// insuranceType is EB04 from the Coverage's filing indicator, when set.
func insuranceType(c obj) string {
	for _, cd := range c.get("type").list("coding") {
		if cd.str("system").Val == SystemFiling {
			switch cd.str("code").Val {
			case "MB":
				return "MB"
			case "MC":
				return "MC"
			case "HM":
				return "HM"
			}
		}
	}
	return ""
}
