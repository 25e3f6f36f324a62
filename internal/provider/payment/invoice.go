package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// bill is what charge.issue charges for an Encounter: its Invoice when it
// has one (the Invoice is the bill: discounts and taxes are on it), else
// the sum of its billable ChargeItems. An Invoice is the Encounter's when
// a lineItem's chargeItemReference names one of its ChargeItems, or when
// its account is one of Encounter.account; one that is cancelled or
// entered-in-error is ignored. Everything is searched as the caller.
// Errors: Invalid (a draft Invoice, more than one, a bad total).
func (s *Service) bill(ctx context.Context, p auth.Principal, encounterID, patient string, accounts []string) (Total, error) {
	items, err := s.chargeItems(ctx, p, encounterID)
	if err != nil {
		return Total{}, err
	}
	inv, err := s.invoiceOf(ctx, p, patient, accounts, items)
	if err != nil {
		return Total{}, err
	}
	if inv == nil {
		return itemsTotal(encounterID, items)
	}
	switch inv.Status {
	case "draft":
		return Total{}, fault.Invalid("Invoice/%s of Encounter/%s is a draft: issue it (status issued) or cancel it before charging", inv.ID, encounterID)
	case "balanced":
		// Paid: only a retry of the charge that paid it goes on (and is
		// answered as it was).
		c, err := s.d.Store.LatestCharge(ctx, p.ProjectID, encounterID)
		if errors.Is(err, store.ErrNotFound) || err == nil && c.InvoiceID != inv.ID {
			return Total{}, fault.Conflict("Invoice/%s is balanced already: nothing to charge", inv.ID)
		}
		if err != nil {
			return Total{}, err
		}
	}
	t, err := invoiceTotal(inv)
	if err != nil {
		return Total{}, err
	}
	t.Invoice = inv.ID
	return t, nil
}

// invoice is what Ward reads of an Invoice.
type invoice struct {
	ID       string
	Status   string `json:"status"`
	Account  *ref1  `json:"account"`
	LineItem []struct {
		ChargeItemReference *ref1 `json:"chargeItemReference"`
		PriceComponent      []struct {
			Type   string `json:"type"`
			Amount *money `json:"amount"`
		} `json:"priceComponent"`
	} `json:"lineItem"`
	TotalGross *money `json:"totalGross"`
}

type ref1 struct {
	Reference string `json:"reference"`
}

type money struct {
	Value    *float64 `json:"value"`
	Currency string   `json:"currency"`
}

// invoiceOf finds the Encounter's Invoice among the patient's and its
// accounts' (nil: none). Two that are not cancelled are a 400: Ward does
// not guess which one is the bill.
func (s *Service) invoiceOf(ctx context.Context, p auth.Principal, patient string, accounts []string, items []fhir.Resource) (*invoice, error) {
	mine := make(map[string]bool, len(items))
	for _, r := range items {
		mine["ChargeItem/"+r.ID] = true
	}
	acct := make(map[string]bool, len(accounts))
	queries := []url.Values{{"subject": {"Patient/" + patient}}}
	for _, a := range accounts {
		acct["Account/"+a] = true
		queries = append(queries, url.Values{"account": {"Account/" + a}})
	}
	found := map[string]*invoice{}
	for _, v := range queries {
		v.Set("status", "draft,issued,balanced")
		v.Set("_count", "50")
		q, err := search.ParseQuery("Invoice", v, false)
		if err != nil {
			return nil, err
		}
		page, err := s.d.FHIR.Search(ctx, p, q)
		if err != nil {
			return nil, err
		}
		if page.Total > len(page.Matches) {
			return nil, fault.Invalid("Patient/%s has more than %d open Invoices", patient, len(page.Matches))
		}
		for _, r := range page.Matches {
			var inv invoice
			if err := json.Unmarshal(r.Content, &inv); err != nil {
				return nil, fmt.Errorf("Invoice/%s: %w", r.ID, err)
			}
			inv.ID = r.ID
			if invoiceIsFor(&inv, mine, acct) {
				found[r.ID] = &inv
			}
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	if len(found) > 1 {
		ids := make([]string, 0, len(found))
		for id := range found {
			ids = append(ids, "Invoice/"+id)
		}
		sort.Strings(ids)
		return nil, fault.Invalid("the Encounter has %d Invoices (%v); cancel all but the bill", len(ids), ids)
	}
	for _, inv := range found {
		return inv, nil
	}
	return nil, nil
}

func invoiceIsFor(inv *invoice, items, accounts map[string]bool) bool {
	named := false
	for _, li := range inv.LineItem {
		if li.ChargeItemReference == nil {
			continue
		}
		named = true
		if items[li.ChargeItemReference.Reference] {
			return true
		}
	}
	// An Invoice naming other ChargeItems is another visit's bill on the
	// same account.
	return !named && inv.Account != nil && accounts[inv.Account.Reference]
}

// invoiceTotal is the Invoice's totalGross, or else the sum of its
// lineItems' priceComponents: base, surcharge and tax add, discount and
// deduction subtract, informational is not counted. Amounts are given
// positive (the type says which way they count). Errors: Invalid (mixed
// currencies, a negative or missing amount, a total that is not
// positive).
func invoiceTotal(inv *invoice) (Total, error) {
	if g := inv.TotalGross; g != nil {
		if g.Value == nil || g.Currency == "" {
			return Total{}, fault.Invalid("Invoice/%s: totalGross needs a value and a currency", inv.ID)
		}
		cur := toLower(g.Currency)
		minor, ok := toMinor(*g.Value, cur)
		if !ok || minor == 0 {
			return Total{}, fault.Invalid("Invoice/%s: totalGross must be a positive amount", inv.ID)
		}
		return Total{Amount: minor, Currency: cur}, nil
	}
	var t Total
	for i, li := range inv.LineItem {
		for j, pc := range li.PriceComponent {
			sign := int64(0)
			switch pc.Type {
			case "base", "surcharge", "tax":
				sign = 1
			case "discount", "deduction":
				sign = -1
			case "informational":
				continue
			default:
				return Total{}, fault.Invalid("Invoice/%s: lineItem[%d].priceComponent[%d].type %q is not an invoice-priceComponentType", inv.ID, i, j, clip(pc.Type))
			}
			if pc.Amount == nil || pc.Amount.Value == nil || pc.Amount.Currency == "" {
				return Total{}, fault.Invalid("Invoice/%s: lineItem[%d].priceComponent[%d] has no amount with value and currency", inv.ID, i, j)
			}
			cur := toLower(pc.Amount.Currency)
			if t.Currency != "" && t.Currency != cur {
				return Total{}, fault.Invalid("Invoice/%s is in %s and %s; one charge has one currency", inv.ID, t.Currency, cur)
			}
			t.Currency = cur
			minor, ok := toMinor(*pc.Amount.Value, cur)
			if !ok {
				return Total{}, fault.Invalid("Invoice/%s: lineItem[%d].priceComponent[%d].amount must be positive (its type says how it counts)", inv.ID, i, j)
			}
			t.Amount += sign * minor
		}
	}
	if t.Amount <= 0 {
		return Total{}, fault.Invalid("Invoice/%s has no totalGross and its priceComponents do not add up to a positive amount: nothing to charge", inv.ID)
	}
	return t, nil
}

// errUnchanged stops a SystemUpdate that has nothing to change.
var errUnchanged = errors.New("unchanged")

// balance marks a paid Invoice balanced once its charge succeeded (the
// synchronous answer or a webhook). An Invoice no longer issued (cancelled
// meanwhile, balanced already) is left as it is.
func (s *Service) balance(ctx context.Context, projectID, invoiceID, status string) error {
	if invoiceID == "" || status != StatusSucceeded {
		return nil
	}
	var err error
	for i := 0; i < 5; i++ {
		_, err = s.d.FHIR.SystemUpdate(ctx, projectID, "Invoice", invoiceID, func(m map[string]any) error {
			if m["status"] != "issued" {
				return errUnchanged
			}
			m["status"] = "balanced"
			return nil
		})
		if !errors.Is(err, fault.ErrPrecondition) && !errors.Is(err, fault.ErrConflict) {
			break
		}
	}
	if errors.Is(err, errUnchanged) || errors.Is(err, fault.ErrNotFound) {
		return nil
	}
	return err
}
