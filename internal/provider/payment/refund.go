package payment

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// RefundParams is a refund request: the Encounter whose charge is
// refunded, the amount in major units (nil: what is left of the charge)
// and the caller's Idempotency-Key ("" is fine: see Refund).
type RefundParams struct {
	EncounterID string
	Amount      *float64
	Key         string
}

// RefundDetails is the answer to a refund.
type RefundDetails struct {
	RefundUUID string  `json:"refundUuid"` // its PaymentReconciliation
	ChargeUUID string  `json:"chargeUuid"` // the charge's PaymentReconciliation
	Amount     float64 `json:"amount"`     // major units, positive
	Currency   string  `json:"currency"`
	Status     string  `json:"status"`
}

// Refund returns part or all of the Encounter's succeeded charge through
// the provider that charged it, and records a PaymentReconciliation with
// the negative amount (as the caller). The idempotency key is derived
// from the charge, the amount ("the rest" when none is given) and the
// caller's Idempotency-Key: a retried request refunds once and answers as
// the first did; two partial refunds of one amount need two
// Idempotency-Keys. Refunds never add up to more than the charge (checked
// in the transaction that claims the key). Errors: NotFound (no charge),
// Conflict (the charge has not succeeded; another provider now), Invalid
// (a bad amount, more than is left, declined).
func (s *Service) Refund(ctx context.Context, p auth.Principal, in RefundParams) (RefundDetails, error) {
	if len(in.Key) > 255 {
		return RefundDetails{}, fault.Invalid("the Idempotency-Key is longer than 255 characters")
	}
	if _, _, err := s.encounter(ctx, p, in.EncounterID); err != nil {
		return RefundDetails{}, err
	}
	c, err := s.d.Store.LatestCharge(ctx, p.ProjectID, in.EncounterID)
	if errors.Is(err, store.ErrNotFound) || err == nil && c.ReconciliationID == "" {
		return RefundDetails{}, fault.NotFound("Encounter/%s has no charge", in.EncounterID)
	}
	if err != nil {
		return RefundDetails{}, err
	}
	if c.Status != StatusSucceeded {
		return RefundDetails{}, fault.Conflict("the charge of Encounter/%s is %s: only a succeeded charge is refunded", in.EncounterID, c.Status)
	}
	// The caller must be able to read the charge's record, as for status.
	if _, err := s.d.FHIR.Read(ctx, p, "PaymentReconciliation", c.ReconciliationID); err != nil {
		return RefundDetails{}, err
	}
	amount, what := int64(0), "rest"
	if in.Amount != nil {
		v := *in.Amount
		minor, ok := toMinor(v, c.Currency)
		if !ok || minor == 0 || math.IsInf(v, 0) {
			return RefundDetails{}, fault.Invalid("amount must be a positive amount in %s (major units), at most what was charged", upper(c.Currency))
		}
		amount, what = minor, strconv.FormatInt(minor, 10)
	}
	name, prov, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return RefundDetails{}, err
	}
	if name != c.Provider {
		return RefundDetails{}, fault.Conflict("Encounter/%s was charged through %s; the project's payment provider is now %s", in.EncounterID, c.Provider, name)
	}
	key := idemKey("refund", p.ProjectID, c.Key, what, in.Key)
	now := s.d.Now()
	f, claimed, err := s.d.Store.ClaimRefund(ctx, store.Refund{ProjectID: p.ProjectID, Key: key, ChargeKey: c.Key, EncounterID: in.EncounterID,
		Provider: name, Status: store.ChargePending, Amount: amount, CreatedAt: now, UpdatedAt: now})
	switch {
	case errors.Is(err, store.ErrRefundLimit):
		return RefundDetails{}, fault.Invalid("the refund is more than is left of the charge of Encounter/%s (%v)", in.EncounterID, errors.Unwrap(err))
	case errors.Is(err, store.ErrConflict):
		return RefundDetails{}, fault.Conflict("the charge of Encounter/%s has not succeeded: nothing to refund", in.EncounterID)
	case err != nil:
		return RefundDetails{}, err
	}
	if !claimed {
		if f, err = s.awaitRefund(ctx, p.ProjectID, key); err != nil {
			return RefundDetails{}, err
		}
		if f.Status != store.ChargePending {
			return refundOutcome(c, f)
		}
		ok, err := s.d.Store.TakeOverRefund(ctx, p.ProjectID, key, s.d.Now().Add(-s.cfg.Stale), s.d.Now())
		if err != nil {
			return RefundDetails{}, err
		}
		if !ok {
			return RefundDetails{}, fault.Conflict("a refund of Encounter/%s is in progress; try again later", in.EncounterID)
		}
	}
	return s.driveRefund(ctx, p, prov, c, f)
}

func (s *Service) awaitRefund(ctx context.Context, projectID, key string) (store.Refund, error) {
	deadline := time.Now().Add(s.cfg.Wait)
	for {
		f, err := s.d.Store.GetRefund(ctx, projectID, key)
		if err != nil || f.Status != store.ChargePending || time.Now().After(deadline) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func refundOutcome(c store.Charge, f store.Refund) (RefundDetails, error) {
	if f.Status == StatusFailed {
		return RefundDetails{}, fault.Invalid("the refund was declined (PaymentReconciliation/%s)", f.ReconciliationID)
	}
	return RefundDetails{RefundUUID: f.ReconciliationID, ChargeUUID: c.ReconciliationID, Amount: major(f.Amount, f.Currency),
		Currency: f.Currency, Status: f.Status}, nil
}

// driveRefund records, then refunds, then records the outcome, as drive
// does for charges.
func (s *Service) driveRefund(ctx context.Context, p auth.Principal, prov Provider, c store.Charge, f store.Refund) (RefundDetails, error) {
	if f.ReconciliationID == "" {
		id, err := s.refundRecord(ctx, p, c, f)
		if err != nil {
			_ = s.d.Store.ReleaseRefund(context.WithoutCancel(ctx), p.ProjectID, f.Key)
			return RefundDetails{}, err
		}
		f.ReconciliationID = id
		if err := s.d.Store.UpdateRefund(ctx, store.Refund{ProjectID: p.ProjectID, Key: f.Key, ReconciliationID: id, UpdatedAt: s.d.Now()}); err != nil {
			return RefundDetails{}, err
		}
	}
	res, err := prov.Refund(ctx, RefundRequest{Payment: c.IntentID, Amount: f.Amount, Currency: f.Currency, Key: f.Key,
		Metadata: map[string]string{"ward_project": p.ProjectID, "ward_encounter": c.EncounterID, "ward_reconciliation": f.ReconciliationID}})
	if err != nil {
		return RefundDetails{}, s.providerErr(ctx, f.Provider, err)
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.d.Store.UpdateRefund(ctx, store.Refund{ProjectID: p.ProjectID, Key: f.Key, Status: res.Status, RefundID: res.ID, UpdatedAt: s.d.Now()}); err != nil {
		return RefundDetails{}, err
	}
	if err := s.settle(ctx, refundKind, p.ProjectID, f.ReconciliationID, res.ID, res.Status, res.Reason); err != nil {
		return RefundDetails{}, err
	}
	f.Status = res.Status
	return refundOutcome(c, f)
}

// refundRecord creates the refund's PaymentReconciliation: the negative
// amount, a detail (type adjustment) naming the charge's record.
func (s *Service) refundRecord(ctx context.Context, p auth.Principal, c store.Charge, f store.Refund) (string, error) {
	neg := moneyOf(-f.Amount, f.Currency)
	return s.createRecord(ctx, p, f.Provider, f.Key, neg,
		"Refund of the charge of Encounter/"+c.EncounterID+" sent to "+f.Provider,
		[]any{map[string]any{
			"type":        paymentType("adjustment"),
			"predecessor": map[string]any{"system": TagSystem + ":idempotency-key", "value": c.Key},
			"request":     map[string]any{"reference": "PaymentReconciliation/" + c.ReconciliationID},
			"amount":      neg,
		}})
}
