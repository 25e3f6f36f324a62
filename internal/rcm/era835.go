package rcm

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/x12"
)

// Version835 is the remittance advice guide.
const Version835 = "005010X221A1"

// Adjustment is a CAS group, reason and amount.
type Adjustment struct {
	Group  string // CO contractual, PR patient responsibility, OA other, PI payer initiated
	Reason string // CARC: 1 deductible, 2 coinsurance, 3 copay, 45 over the fee schedule...
	Amount string
}

// RemitLine is one SVC of a claim payment.
type RemitLine struct {
	Procedure   string // SVC01-2
	Charge      string // SVC02
	Paid        string // SVC03
	Adjustments []Adjustment
}

// Remit is what an 835 says of one claim (its CLP loop, 2100).
type Remit struct {
	ControlNo    string // CLP01: the claim's CLM01
	Status       string // CLP02: 1 primary, 2 secondary, 4 denied, 22 reversal...
	Charge       string // CLP03
	Paid         string // CLP04
	PatientResp  string // CLP05
	PayerClaimNo string // CLP07
	Adjustments  []Adjustment
	Lines        []RemitLine
	// The payment the remittance belongs to (BPR, TRN).
	PaymentAmount, PaymentDate, CheckNo string
}

// Read835 reads the claim payments of an 835 transaction set.
func Read835(set []x12.Segment) ([]Remit, error) {
	var out []Remit
	var amount, date, check string
	var line *RemitLine
	for _, s := range set {
		switch s.ID {
		case "BPR":
			amount, date = s.E(2), s.E(16)
		case "TRN":
			check = s.E(2)
		case "CLP":
			out = append(out, Remit{ControlNo: s.E(1), Status: s.E(2), Charge: s.E(3), Paid: s.E(4), PatientResp: s.E(5), PayerClaimNo: s.E(7),
				PaymentAmount: amount, PaymentDate: date, CheckNo: check})
			line = nil
		case "SVC":
			if len(out) == 0 {
				return nil, fmt.Errorf("%w: SVC before any CLP", x12.ErrSyntax)
			}
			r := &out[len(out)-1]
			proc := strings.Split(s.E(1), ":")
			l := RemitLine{Charge: s.E(2), Paid: s.E(3)}
			if len(proc) > 1 {
				l.Procedure = proc[1]
			}
			r.Lines = append(r.Lines, l)
			line = &r.Lines[len(r.Lines)-1]
		case "CAS":
			if len(out) == 0 {
				return nil, fmt.Errorf("%w: CAS before any CLP", x12.ErrSyntax)
			}
			// CAS carries up to six reason/amount/quantity triples.
			var adj []Adjustment
			for i := 2; i+1 <= len(s.Elements) && i <= 17; i += 3 {
				if s.E(i) != "" {
					adj = append(adj, Adjustment{Group: s.E(1), Reason: s.E(i), Amount: s.E(i + 1)})
				}
			}
			if line != nil {
				line.Adjustments = append(line.Adjustments, adj...)
			} else {
				out[len(out)-1].Adjustments = append(out[len(out)-1].Adjustments, adj...)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the 835 pays no claim (no CLP)", x12.ErrSyntax)
	}
	return out, nil
}

// adjudicationCategory names a patient-responsibility CAS adjustment in
// R4's adjudication codes (deductible, copay; coinsurance, which R4 has no
// code for, as eligpercent); "" for the others.
func adjudicationCategory(a Adjustment) string {
	if a.Group == "PR" {
		switch a.Reason {
		case "1":
			return "deductible"
		case "3":
			return "copay"
		case "2":
			return "eligpercent"
		}
	}
	return "" // reported under the adjustment reason only
}

func money835(s string) map[string]any {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	f, _ := r.Float64()
	return map[string]any{"value": f, "currency": "USD"}
}

func adjudications(charge, paid string, adjs []Adjustment) []any {
	var out []any
	add := func(cat, reason string, amount map[string]any) {
		if amount == nil {
			return
		}
		a := map[string]any{"category": coding("http://terminology.hl7.org/CodeSystem/adjudication", cat), "amount": amount}
		if reason != "" {
			a["reason"] = coding("https://x12.org/codes/claim-adjustment-reason-codes", reason)
		}
		out = append(out, a)
	}
	add("submitted", "", money835(charge))
	add("benefit", "", money835(paid))
	for _, a := range adjs {
		cat := adjudicationCategory(a)
		if cat == "" {
			// Contractual and other adjustments: the amount not paid,
			// with its reason (R4's adjudication codes have no better fit).
			out = append(out, map[string]any{"category": map[string]any{"coding": []any{map[string]any{
				"system": "urn:ward:x12:cas-group", "code": a.Group}}}, "reason": coding("https://x12.org/codes/claim-adjustment-reason-codes", a.Reason),
				"amount": money835(a.Amount)})
			continue
		}
		add(cat, a.Reason, money835(a.Amount))
	}
	return out
}

// RemitClaimResponse turns an 835's payment of one claim into a
// ClaimResponse: outcome complete (partial when denied or a reversal),
// totals, per-line adjudication (by sequence, in order) and the payment.
func RemitClaimResponse(r Remit, claimRef string, created time.Time) map[string]any {
	cr := map[string]any{
		"resourceType": "ClaimResponse",
		"status":       "active",
		"type":         coding("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
		"use":          "claim",
		"created":      created.UTC().Format(time.RFC3339),
		"request":      ref(claimRef),
		"outcome":      "complete",
		"identifier":   []any{map[string]any{"system": "urn:ward:x12:clm01", "value": r.ControlNo}},
		"disposition":  fmt.Sprintf("Paid %s of %s (835 CLP02 %s).", r.Paid, r.Charge, r.Status),
		"adjudication": adjudications(r.Charge, r.Paid, r.Adjustments),
	}
	if r.Status == "4" || r.Status == "22" {
		cr["outcome"] = "partial"
	}
	if r.PayerClaimNo != "" {
		cr["identifier"] = append(cr["identifier"].([]any), map[string]any{"system": "urn:ward:x12:payer-claim-number", "value": r.PayerClaimNo})
	}
	var total []any
	for _, t := range []struct{ cat, amount string }{{"submitted", r.Charge}, {"benefit", r.Paid}} {
		if m := money835(t.amount); m != nil {
			total = append(total, map[string]any{"category": coding("http://terminology.hl7.org/CodeSystem/adjudication", t.cat), "amount": m})
		}
	}
	cr["total"] = total
	var items []any
	for i, l := range r.Lines {
		items = append(items, map[string]any{"itemSequence": i + 1, "adjudication": adjudications(l.Charge, l.Paid, l.Adjustments)})
	}
	if items != nil {
		cr["item"] = items
	}
	if m := money835(r.PaymentAmount); m != nil {
		pay := map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/ex-paymenttype", "complete"), "amount": m}
		if t, ok := parseDate(r.PaymentDate); ok {
			pay["date"] = t.Format("2006-01-02")
		}
		if r.CheckNo != "" {
			pay["identifier"] = map[string]any{"system": "urn:ward:x12:trn02", "value": r.CheckNo}
		}
		cr["payment"] = pay
	}
	return cr
}
