package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Refund is one refund of a charge, keyed by its idempotency key within
// the project.
type Refund struct {
	ProjectID, Key, ChargeKey, EncounterID, Provider string
	// Status: ChargePending until the provider answers, then
	// "succeeded", "processing" or "failed".
	Status           string
	Amount           int64 // minor units, positive
	Currency         string
	RefundID         string // the provider's refund id
	ReconciliationID string // the PaymentReconciliation recording it
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ErrRefundLimit is a refund that, with the charge's other refunds that
// have not failed, would return more than was charged.
var ErrRefundLimit = errors.New("refund exceeds what is left of the charge")

const refundCols = `project_id, idem_key, charge_key, encounter_id, provider, status, amount, currency, refund_id, reconciliation_id, created_at, updated_at`

func scanRefund(r rowScanner) (Refund, error) {
	var f Refund
	var created, updated int64
	err := r.Scan(&f.ProjectID, &f.Key, &f.ChargeKey, &f.EncounterID, &f.Provider, &f.Status, &f.Amount, &f.Currency,
		&f.RefundID, &f.ReconciliationID, &created, &updated)
	f.CreatedAt, f.UpdatedAt = fromMS(created), fromMS(updated)
	return f, err
}

// ClaimRefund inserts f unless its key is taken, and returns the row that
// holds the key and whether this call inserted it. f.Amount 0 means what
// is left of the charge. In one transaction that holds the charge's row
// (FOR UPDATE on PostgreSQL; SQLite has one writer), it checks that the
// charge succeeded and that its refunds that have not failed, with f, do
// not exceed it: of concurrent claims only those that fit win. Errors:
// ErrNotFound (no such charge), ErrConflict (the charge has not
// succeeded), ErrRefundLimit (too much; the message gives the amounts).
func (s *Store) ClaimRefund(ctx context.Context, f Refund) (Refund, bool, error) {
	var out Refund
	var claimed bool
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE"
	}
	err := s.WithTx(ctx, func(tx *Tx) error {
		claimed = false
		var charged int64
		var status, currency string
		if err := tx.queryRow(ctx, `SELECT amount, status, currency FROM payment_charges WHERE project_id = ? AND idem_key = ?`+lock,
			f.ProjectID, f.ChargeKey).Scan(&charged, &status, &currency); err != nil {
			return s.mapErr(err)
		}
		prev, err := scanRefund(tx.queryRow(ctx, `SELECT `+refundCols+` FROM payment_refunds WHERE project_id = ? AND idem_key = ?`, f.ProjectID, f.Key))
		if err == nil {
			out = prev
			return nil
		}
		if !errors.Is(s.mapErr(err), ErrNotFound) {
			return err
		}
		if status != "succeeded" {
			return fmt.Errorf("%w: the charge is %s, not succeeded", ErrConflict, status)
		}
		var refunded int64
		if err := tx.queryRow(ctx, `SELECT COALESCE(SUM(amount), 0) FROM payment_refunds WHERE project_id = ? AND charge_key = ? AND status <> 'failed'`,
			f.ProjectID, f.ChargeKey).Scan(&refunded); err != nil {
			return err
		}
		left := charged - refunded
		if f.Amount == 0 {
			f.Amount = left
		}
		if f.Amount <= 0 || f.Amount > left {
			return fmt.Errorf("%w: charged %d, refunded %d, asked %d (minor units)", ErrRefundLimit, charged, refunded, f.Amount)
		}
		f.Currency = currency
		if _, err := tx.exec(ctx, `INSERT INTO payment_refunds (`+refundCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			f.ProjectID, f.Key, f.ChargeKey, f.EncounterID, f.Provider, f.Status, f.Amount, f.Currency, f.RefundID,
			f.ReconciliationID, ms(f.CreatedAt), ms(f.UpdatedAt)); err != nil {
			return err
		}
		out, claimed = f, true
		return nil
	})
	if err != nil {
		return Refund{}, false, fmt.Errorf("claim refund: %w", err)
	}
	return out, claimed, nil
}

// UpdateRefund sets a refund's status, provider id and reconciliation
// (empty strings leave a field as it is). Errors: ErrNotFound.
func (s *Store) UpdateRefund(ctx context.Context, f Refund) error {
	res, err := s.exec(ctx, `UPDATE payment_refunds SET
		status = CASE WHEN ? = '' THEN status ELSE ? END,
		refund_id = CASE WHEN ? = '' THEN refund_id ELSE ? END,
		reconciliation_id = CASE WHEN ? = '' THEN reconciliation_id ELSE ? END,
		updated_at = ?
		WHERE project_id = ? AND idem_key = ?`,
		f.Status, f.Status, f.RefundID, f.RefundID, f.ReconciliationID, f.ReconciliationID, ms(f.UpdatedAt), f.ProjectID, f.Key)
	if err != nil {
		return fmt.Errorf("update refund: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update refund %s: %w", f.Key, ErrNotFound)
	}
	return nil
}

// TakeOverRefund lets a retry drive a pending refund whose first request
// stopped before the provider answered (see TakeOverCharge).
func (s *Store) TakeOverRefund(ctx context.Context, projectID, key string, staleBefore, now time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE payment_refunds SET updated_at = ?
		WHERE project_id = ? AND idem_key = ? AND status = ? AND updated_at < ?`,
		ms(now), projectID, key, ChargePending, ms(staleBefore))
	if err != nil {
		return false, fmt.Errorf("take over refund: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseRefund deletes a pending refund whose request failed before it
// reached the provider, so that its amount is free again.
func (s *Store) ReleaseRefund(ctx context.Context, projectID, key string) error {
	if _, err := s.exec(ctx, `DELETE FROM payment_refunds WHERE project_id = ? AND idem_key = ? AND status = ?`, projectID, key, ChargePending); err != nil {
		return fmt.Errorf("release refund: %w", err)
	}
	return nil
}

// GetRefund returns one refund. Errors: ErrNotFound.
func (s *Store) GetRefund(ctx context.Context, projectID, key string) (Refund, error) {
	f, err := scanRefund(s.queryRow(ctx, `SELECT `+refundCols+` FROM payment_refunds WHERE project_id = ? AND idem_key = ?`, projectID, key))
	if err != nil {
		return Refund{}, fmt.Errorf("get refund: %w", s.mapErr(err))
	}
	return f, nil
}

// RefundByProviderID finds the refund of a provider refund id (webhooks).
// Errors: ErrNotFound.
func (s *Store) RefundByProviderID(ctx context.Context, projectID, refundID string) (Refund, error) {
	if refundID == "" {
		return Refund{}, fmt.Errorf("refund by provider id: %w", ErrNotFound)
	}
	f, err := scanRefund(s.queryRow(ctx, `SELECT `+refundCols+` FROM payment_refunds WHERE project_id = ? AND refund_id = ?`, projectID, refundID))
	if err != nil {
		return Refund{}, fmt.Errorf("refund by provider id: %w", s.mapErr(err))
	}
	return f, nil
}
