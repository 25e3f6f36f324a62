package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// billable are the ChargeItem statuses a charge totals (R4
// chargeitem-status): "billed" items were charged already.
var billable = map[string]bool{"billable": true, "planned": true}

// zeroDecimal currencies have no minor unit (Stripe's list, the common ones).
var zeroDecimal = map[string]bool{"jpy": true, "krw": true, "vnd": true, "clp": true, "isk": true, "ugx": true, "xaf": true, "xof": true}

// Total is what an Encounter's bill adds up to: its Invoice's total, or
// else its ChargeItems'.
type Total struct {
	Amount   int64 // minor units
	Currency string
	Items    []string // ChargeItem ids, sorted by the search
	Invoice  string   // the Invoice charged ("": the ChargeItems were)
}

// chargeItems are the Encounter's ChargeItems, searched as the caller.
func (s *Service) chargeItems(ctx context.Context, p auth.Principal, encounterID string) ([]fhir.Resource, error) {
	q, err := search.ParseQuery("ChargeItem", url.Values{"context": {"Encounter/" + encounterID}, "_count": {"200"}}, false)
	if err != nil {
		return nil, err
	}
	page, err := s.d.FHIR.Search(ctx, p, q)
	if err != nil {
		return nil, err
	}
	if page.Total > len(page.Matches) {
		return nil, fault.Invalid("Encounter/%s has more than %d ChargeItems", encounterID, len(page.Matches))
	}
	return page.Matches, nil
}

// total adds the priceOverride of the Encounter's billable ChargeItems,
// searched as the caller. Errors: Invalid (nothing to charge, mixed
// currencies, an item without a price).
func (s *Service) total(ctx context.Context, p auth.Principal, encounterID string) (Total, error) {
	items, err := s.chargeItems(ctx, p, encounterID)
	if err != nil {
		return Total{}, err
	}
	return itemsTotal(encounterID, items)
}

func itemsTotal(encounterID string, items []fhir.Resource) (Total, error) {
	var t Total
	for _, r := range items {
		var ci struct {
			Status        string `json:"status"`
			PriceOverride *struct {
				Value    *float64 `json:"value"`
				Currency string   `json:"currency"`
			} `json:"priceOverride"`
		}
		if err := json.Unmarshal(r.Content, &ci); err != nil {
			return Total{}, fmt.Errorf("ChargeItem/%s: %w", r.ID, err)
		}
		if !billable[ci.Status] {
			continue
		}
		po := ci.PriceOverride
		if po == nil || po.Value == nil || po.Currency == "" {
			return Total{}, fault.Invalid("ChargeItem/%s has no priceOverride with value and currency; Ward charges the sum of priceOverride", r.ID)
		}
		cur := toLower(po.Currency)
		if t.Currency != "" && t.Currency != cur {
			return Total{}, fault.Invalid("the ChargeItems of Encounter/%s are in %s and %s; one charge has one currency", encounterID, t.Currency, cur)
		}
		t.Currency = cur
		minor, ok := toMinor(*po.Value, cur)
		if !ok {
			return Total{}, fault.Invalid("ChargeItem/%s has a price out of range", r.ID)
		}
		t.Amount += minor
		t.Items = append(t.Items, r.ID)
	}
	if t.Amount <= 0 {
		return Total{}, fault.Invalid("Encounter/%s has no billable ChargeItem with a price: nothing to charge", encounterID)
	}
	return t, nil
}

// toMinor converts a non-negative amount in major units to minor units;
// false when it is negative, not a number or beyond a billion.
func toMinor(v float64, currency string) (int64, bool) {
	minor := v * 100
	if zeroDecimal[currency] {
		minor = v
	}
	if minor < 0 || minor > 1e11 || math.IsNaN(minor) {
		return 0, false
	}
	return int64(math.Round(minor)), true
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// encounter reads the Encounter as the caller and returns its patient and
// the Accounts it names.
func (s *Service) encounter(ctx context.Context, p auth.Principal, id string) (patient string, accounts []string, err error) {
	if id == "" || len(id) > 64 {
		return "", nil, fault.Invalid("encounterId is required")
	}
	r, err := s.d.FHIR.Read(ctx, p, "Encounter", id)
	if err != nil {
		return "", nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(r.Content, &m); err != nil {
		return "", nil, fmt.Errorf("Encounter/%s: %w", id, err)
	}
	typ, pid := ref(m["subject"])
	if typ != "Patient" || pid == "" {
		return "", nil, fault.Invalid("Encounter/%s has no subject Patient to charge", id)
	}
	accts, _ := m["account"].([]any)
	for _, a := range accts {
		if t, aid := ref(a); t == "Account" && aid != "" {
			accounts = append(accounts, aid)
		}
	}
	return pid, accounts, nil
}

// payorOf finds the customer to charge: the first of the Encounter's
// Accounts that records one for this provider, else the patient's own.
func (s *Service) payorOf(ctx context.Context, p auth.Principal, patient string, accounts []string) (string, Provider, string, error) {
	for _, id := range accounts {
		r, err := s.d.FHIR.Read(ctx, p, "Account", id)
		if err != nil {
			continue
		}
		var m map[string]any
		if json.Unmarshal(r.Content, &m) != nil {
			continue
		}
		if _, payor := ref(first(m["guarantor"], "party")); payor != "" {
			if _, ben := ref(first(m["subject"], "")); ben != "" {
				name, prov, cust, err := s.customer(ctx, p, Payor{Beneficiary: ben, Payor: payor}, false)
				if err == nil {
					return name, prov, cust, nil
				}
			}
		}
	}
	name, prov, cust, err := s.customer(ctx, p, Payor{Beneficiary: patient}, false)
	if errors.Is(err, errNoCustomer) {
		return "", nil, "", fault.Invalid("Patient/%s has no payment method set up (paymentMethod.setUp)", patient)
	}
	return name, prov, cust, err
}

func first(v any, field string) any {
	l, _ := v.([]any)
	if len(l) == 0 {
		return nil
	}
	if field == "" {
		return l[0]
	}
	m, _ := l[0].(map[string]any)
	return m[field]
}

// Issue charges the default payment method of the Encounter's payor its
// bill (its Invoice, else the total of its ChargeItems: see bill), and
// records a PaymentReconciliation (as the caller). The idempotency key is
// derived from the request (project, encounter, amount, currency,
// customer, method, and the Invoice when there is one): a retried or concurrent
// identical request charges once and answers as the first did. An
// Encounter already charged (another total) is a 409.
func (s *Service) Issue(ctx context.Context, p auth.Principal, encounterID string) error {
	patient, accounts, err := s.encounter(ctx, p, encounterID)
	if err != nil {
		return err
	}
	t, err := s.bill(ctx, p, encounterID, patient, accounts)
	if err != nil {
		return err
	}
	name, prov, cust, err := s.payorOf(ctx, p, patient, accounts)
	if err != nil {
		return err
	}
	cards, def, err := prov.Methods(ctx, cust)
	if err != nil {
		return s.providerErr(ctx, name, err)
	}
	// A payor with one card and no default set (Stripe leaves
	// default_payment_method empty until told) is charged on that card.
	if def == "" && len(cards) == 1 {
		def = cards[0].ID
	}
	var card *Card
	for i := range cards {
		if cards[i].ID == def {
			card = &cards[i]
		}
	}
	if card == nil {
		return fault.Invalid("the payor of Encounter/%s has no default payment method (paymentMethod.setDefault)", encounterID)
	}
	parts := []string{"charge", p.ProjectID, encounterID, strconv.FormatInt(t.Amount, 10), t.Currency, name, cust, card.ID}
	if t.Invoice != "" {
		parts = append(parts, "Invoice/"+t.Invoice)
	}
	key := idemKey(parts...)
	// Fast path; the claim below is what holds under concurrency.
	if prev, err := s.d.Store.LatestCharge(ctx, p.ProjectID, encounterID); err == nil && prev.Key != key && prev.Status != StatusFailed {
		return fault.Conflict("Encounter/%s was charged already (PaymentReconciliation/%s, %s); a new total is not charged again",
			encounterID, prev.ReconciliationID, prev.Status)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	cardJSON, _ := json.Marshal(card)
	now := s.d.Now()
	c, claimed, err := s.d.Store.ClaimCharge(ctx, store.Charge{ProjectID: p.ProjectID, Key: key, EncounterID: encounterID, Provider: name,
		Status: store.ChargePending, Amount: t.Amount, Currency: t.Currency, Card: string(cardJSON), InvoiceID: t.Invoice, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return err
	}
	if !claimed && c.Key != key {
		return fault.Conflict("Encounter/%s was charged already (PaymentReconciliation/%s, %s); a new total is not charged again",
			encounterID, c.ReconciliationID, c.Status)
	}
	if !claimed {
		if c, err = s.await(ctx, p.ProjectID, key); err != nil {
			return err
		}
		if c.Status != store.ChargePending {
			return chargeOutcome(c)
		}
		// Still pending past the wait: the first request died after the
		// claim. One retry takes it over; the provider's idempotency key
		// keeps it one payment.
		ok, err := s.d.Store.TakeOverCharge(ctx, p.ProjectID, key, s.d.Now().Add(-s.cfg.Stale), s.d.Now())
		if err != nil {
			return err
		}
		if !ok {
			return fault.Conflict("a charge of Encounter/%s is in progress; ask charge.status", encounterID)
		}
	}
	return s.drive(ctx, p, prov, name, c, cust, card, t)
}

// await polls a claimed charge until its first request finishes or the
// wait ends.
func (s *Service) await(ctx context.Context, projectID, key string) (store.Charge, error) {
	deadline := time.Now().Add(s.cfg.Wait)
	for {
		c, err := s.d.Store.GetCharge(ctx, projectID, key)
		if err != nil || c.Status != store.ChargePending || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func chargeOutcome(c store.Charge) error {
	if c.Status == StatusFailed {
		return fault.Invalid("the charge was declined (PaymentReconciliation/%s); set another default payment method", c.ReconciliationID)
	}
	return nil
}

// drive records the PaymentReconciliation, then charges, then records
// the outcome: a charge is on the record before it leaves Ward.
func (s *Service) drive(ctx context.Context, p auth.Principal, prov Provider, name string, c store.Charge, cust string, card *Card, t Total) error {
	recID := c.ReconciliationID
	if recID == "" {
		id, err := s.reconciliation(ctx, p, name, c, t)
		if err != nil {
			// Nothing was sent: free the key for a retry.
			_ = s.d.Store.ReleaseCharge(context.WithoutCancel(ctx), p.ProjectID, c.Key)
			return err
		}
		recID = id
		if err := s.d.Store.UpdateCharge(ctx, store.Charge{ProjectID: p.ProjectID, Key: c.Key, ReconciliationID: recID, UpdatedAt: s.d.Now()}); err != nil {
			return err
		}
	}
	res, err := prov.Charge(ctx, ChargeRequest{Customer: cust, Method: card.ID, Amount: c.Amount, Currency: c.Currency, Key: c.Key,
		Metadata: map[string]string{"ward_project": p.ProjectID, "ward_encounter": c.EncounterID, "ward_reconciliation": recID}})
	if err != nil {
		// Left pending: a retry after --stale takes it over with the same
		// key, which the provider answers as it did (or charges once).
		return s.providerErr(ctx, name, err)
	}
	// Charged is charged: record it even if the caller has hung up.
	ctx = context.WithoutCancel(ctx)
	if err := s.d.Store.UpdateCharge(ctx, store.Charge{ProjectID: p.ProjectID, Key: c.Key, Status: res.Status, IntentID: res.ID,
		UpdatedAt: s.d.Now()}); err != nil {
		return err
	}
	if err := s.settle(ctx, chargeKind, p.ProjectID, recID, res.ID, res.Status, res.Reason); err != nil {
		return err
	}
	if err := s.balance(ctx, p.ProjectID, c.InvoiceID, res.Status); err != nil {
		return err
	}
	c.Status, c.ReconciliationID = res.Status, recID
	return chargeOutcome(c)
}

// reconciliation creates the charge's PaymentReconciliation (outcome
// queued) as the caller.
func (s *Service) reconciliation(ctx context.Context, p auth.Principal, name string, c store.Charge, t Total) (string, error) {
	refs := make([]string, 0, len(t.Items))
	for _, id := range t.Items {
		refs = append(refs, "ChargeItem/"+id)
	}
	if t.Invoice != "" {
		refs = []string{"Invoice/" + t.Invoice}
	}
	details := make([]any, 0, len(refs))
	for _, ref := range refs {
		details = append(details, map[string]any{
			"type":    paymentType("payment"),
			"request": map[string]any{"reference": ref},
		})
	}
	return s.createRecord(ctx, p, name, c.Key, moneyOf(c.Amount, c.Currency),
		"Charge of Encounter/"+c.EncounterID+" sent to "+name, details)
}

func paymentType(code string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/payment-type", "code": code}}}
}

func moneyOf(amount int64, currency string) map[string]any {
	return map[string]any{"value": major(amount, currency), "currency": upper(currency)}
}

// createRecord creates a PaymentReconciliation (outcome queued) as the
// caller: the one shape charges and refunds are recorded in.
func (s *Service) createRecord(ctx context.Context, p auth.Principal, provider, key string, amount map[string]any, disposition string, details []any) (string, error) {
	now := s.d.Now().UTC()
	m := map[string]any{
		"resourceType":  "PaymentReconciliation",
		"meta":          map[string]any{"tag": []any{map[string]any{"system": TagSystem, "code": provider}}},
		"identifier":    []any{map[string]any{"system": TagSystem + ":idempotency-key", "value": key}},
		"status":        "active",
		"created":       now.Format(time.RFC3339),
		"paymentDate":   now.Format("2006-01-02"),
		"paymentAmount": amount,
		"outcome":       "queued",
		"disposition":   disposition,
		"detail":        details,
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	r, _, err := s.d.FHIR.Create(ctx, p, "PaymentReconciliation", body, "")
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// recordKind names what a PaymentReconciliation records, in its
// paymentIdentifier and disposition.
type recordKind struct {
	idSystem string // TagSystem + this names the provider's id
	noun     string // "Charge", "Refund"
}

var (
	chargeKind = recordKind{idSystem: ":payment-id", noun: "Charge"}
	refundKind = recordKind{idSystem: ":refund-id", noun: "Refund"}
)

// settle records the provider's answer (its id, status and reason) on a
// PaymentReconciliation, retrying when a concurrent update won.
func (s *Service) settle(ctx context.Context, k recordKind, projectID, recID, providerID, status, reason string) error {
	var err error
	for i := 0; i < 5; i++ {
		_, err = s.d.FHIR.SystemUpdate(ctx, projectID, "PaymentReconciliation", recID, func(m map[string]any) error {
			if providerID != "" {
				m["paymentIdentifier"] = map[string]any{"system": TagSystem + k.idSystem, "value": providerID}
			}
			switch status {
			case StatusSucceeded:
				m["outcome"], m["disposition"] = "complete", k.noun+" succeeded"
			case StatusFailed:
				m["outcome"], m["disposition"] = "error", clip(k.noun+" failed: "+reason)
			default:
				m["outcome"], m["disposition"] = "queued", k.noun+" processing"
			}
			return nil
		})
		if !errors.Is(err, fault.ErrPrecondition) && !errors.Is(err, fault.ErrConflict) {
			break
		}
	}
	return err
}

func major(amount int64, currency string) float64 {
	if zeroDecimal[currency] {
		return float64(amount)
	}
	return float64(amount) / 100
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Details is charge.status's answer (the SDK's ChargeDetails) plus the
// charge's status.
type Details struct {
	ChargeUUID string      `json:"chargeUuid"`
	Currency   string      `json:"currency"`
	Amount     float64     `json:"amount"`
	Date       string      `json:"date"`
	Card       DetailsCard `json:"card"`
	Status     string      `json:"status"`
}

// DetailsCard is the SDK's Card.
type DetailsCard struct {
	ID              string `json:"id,omitempty"`
	Brand           string `json:"brand"`
	ExpirationMonth int    `json:"expirationMonth"`
	ExpirationYear  int    `json:"expirationYear"`
	LastFour        string `json:"lastFour"`
}

// Status reports the Encounter's latest charge; the caller must be able to
// read the Encounter and the PaymentReconciliation. Errors: NotFound
// (never charged).
func (s *Service) Status(ctx context.Context, p auth.Principal, encounterID string) (Details, error) {
	if _, _, err := s.encounter(ctx, p, encounterID); err != nil {
		return Details{}, err
	}
	c, err := s.d.Store.LatestCharge(ctx, p.ProjectID, encounterID)
	if errors.Is(err, store.ErrNotFound) || err == nil && c.ReconciliationID == "" {
		return Details{}, fault.NotFound("Encounter/%s has no charge", encounterID)
	}
	if err != nil {
		return Details{}, err
	}
	if _, err := s.d.FHIR.Read(ctx, p, "PaymentReconciliation", c.ReconciliationID); err != nil {
		return Details{}, err
	}
	var card Card
	_ = json.Unmarshal([]byte(c.Card), &card)
	return Details{ChargeUUID: c.ReconciliationID, Currency: c.Currency, Amount: major(c.Amount, c.Currency),
		Date: c.CreatedAt.UTC().Format(time.RFC3339), Status: c.Status,
		Card: DetailsCard{ID: card.ID, Brand: card.Brand, ExpirationMonth: card.ExpMonth, ExpirationYear: card.ExpYear, LastFour: card.LastFour}}, nil
}
