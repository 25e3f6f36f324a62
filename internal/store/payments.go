package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Charge is one charge attempt of the payment service, keyed by its
// idempotency key within the project.
type Charge struct {
	ProjectID, Key, EncounterID, Provider string
	// Status: ChargePending until the provider answers, then
	// "succeeded", "processing" or "failed".
	Status           string
	Amount           int64 // minor units (cents)
	Currency         string
	IntentID         string // the provider's payment id ("" before it answers)
	ReconciliationID string // the PaymentReconciliation recording it
	Card             string // JSON of the charged card
	InvoiceID        string // the Invoice it pays ("": it totals ChargeItems)
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ChargePending is a claimed charge whose provider has not answered yet.
const ChargePending = "pending"

const chargeCols = `project_id, idem_key, encounter_id, provider, status, amount, currency, intent_id, reconciliation_id, card, created_at, updated_at, invoice_id`

type rowScanner interface{ Scan(dest ...any) error }

func scanCharge(r rowScanner) (Charge, error) {
	var c Charge
	var created, updated int64
	err := r.Scan(&c.ProjectID, &c.Key, &c.EncounterID, &c.Provider, &c.Status, &c.Amount, &c.Currency, &c.IntentID,
		&c.ReconciliationID, &c.Card, &created, &updated, &c.InvoiceID)
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return c, err
}

// ClaimCharge inserts c unless its key is taken, or its encounter (or
// its Invoice) has another charge that has not failed, and returns the row that holds the
// key (or that other charge: its Key differs from c's) and whether this
// call inserted c. Of concurrent claims exactly one gets true.
func (s *Store) ClaimCharge(ctx context.Context, c Charge) (Charge, bool, error) {
	var out Charge
	var claimed bool
	err := s.WithTx(ctx, func(tx *Tx) error {
		// No conflict target: the key and the one-live-charge index both
		// turn the INSERT into nothing.
		res, err := tx.exec(ctx, `INSERT INTO payment_charges (`+chargeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, c.ProjectID, c.Key, c.EncounterID, c.Provider, c.Status, c.Amount,
			c.Currency, c.IntentID, c.ReconciliationID, c.Card, ms(c.CreatedAt), ms(c.UpdatedAt), c.InvoiceID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		claimed = n == 1
		out, err = scanCharge(tx.queryRow(ctx, `SELECT `+chargeCols+` FROM payment_charges WHERE project_id = ? AND idem_key = ?`, c.ProjectID, c.Key))
		if errors.Is(s.mapErr(err), ErrNotFound) {
			out, err = scanCharge(tx.queryRow(ctx, `SELECT `+chargeCols+` FROM payment_charges
				WHERE project_id = ? AND encounter_id = ? AND status <> 'failed'`, c.ProjectID, c.EncounterID))
		}
		if errors.Is(s.mapErr(err), ErrNotFound) && c.InvoiceID != "" {
			// The Invoice's live charge, made for another Encounter.
			out, err = scanCharge(tx.queryRow(ctx, `SELECT `+chargeCols+` FROM payment_charges
				WHERE project_id = ? AND invoice_id = ? AND status <> 'failed'`, c.ProjectID, c.InvoiceID))
		}
		return s.mapErr(err)
	})
	if err != nil {
		return Charge{}, false, fmt.Errorf("claim charge: %w", err)
	}
	return out, claimed, nil
}

// UpdateCharge sets a charge's status, provider id, reconciliation and card
// (empty strings leave a field as it is). Errors: ErrNotFound.
func (s *Store) UpdateCharge(ctx context.Context, c Charge) error {
	res, err := s.exec(ctx, `UPDATE payment_charges SET
		status = CASE WHEN ? = '' THEN status ELSE ? END,
		intent_id = CASE WHEN ? = '' THEN intent_id ELSE ? END,
		reconciliation_id = CASE WHEN ? = '' THEN reconciliation_id ELSE ? END,
		card = CASE WHEN ? = '' THEN card ELSE ? END,
		updated_at = ?
		WHERE project_id = ? AND idem_key = ?`,
		c.Status, c.Status, c.IntentID, c.IntentID, c.ReconciliationID, c.ReconciliationID, c.Card, c.Card,
		ms(c.UpdatedAt), c.ProjectID, c.Key)
	if err != nil {
		return fmt.Errorf("update charge: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update charge %s: %w", c.Key, ErrNotFound)
	}
	return nil
}

// TakeOverCharge lets a retry drive a pending charge whose first request
// stopped (a crash) before the provider answered: it succeeds for one
// caller only, when the charge is still pending and was last touched
// before staleBefore, and marks it touched at now.
func (s *Store) TakeOverCharge(ctx context.Context, projectID, key string, staleBefore, now time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE payment_charges SET updated_at = ?
		WHERE project_id = ? AND idem_key = ? AND status = ? AND updated_at < ?`,
		ms(now), projectID, key, ChargePending, ms(staleBefore))
	if err != nil {
		return false, fmt.Errorf("take over charge: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// GetCharge returns one charge. Errors: ErrNotFound.
func (s *Store) GetCharge(ctx context.Context, projectID, key string) (Charge, error) {
	c, err := scanCharge(s.queryRow(ctx, `SELECT `+chargeCols+` FROM payment_charges WHERE project_id = ? AND idem_key = ?`, projectID, key))
	if err != nil {
		return Charge{}, fmt.Errorf("get charge: %w", s.mapErr(err))
	}
	return c, nil
}

// LatestCharge returns the encounter's most recent charge. Errors:
// ErrNotFound (never charged).
func (s *Store) LatestCharge(ctx context.Context, projectID, encounterID string) (Charge, error) {
	c, err := scanCharge(s.queryRow(ctx, `SELECT `+chargeCols+` FROM payment_charges WHERE project_id = ? AND encounter_id = ?
		ORDER BY created_at DESC, idem_key LIMIT 1`, projectID, encounterID))
	if err != nil {
		return Charge{}, fmt.Errorf("latest charge: %w", s.mapErr(err))
	}
	return c, nil
}

// ChargeByIntent finds the charge of a provider payment id (webhooks).
// Errors: ErrNotFound.
func (s *Store) ChargeByIntent(ctx context.Context, projectID, intentID string) (Charge, error) {
	if intentID == "" {
		return Charge{}, fmt.Errorf("charge by intent: %w", ErrNotFound)
	}
	c, err := scanCharge(s.queryRow(ctx, `SELECT `+chargeCols+` FROM payment_charges WHERE project_id = ? AND intent_id = ?`, projectID, intentID))
	if err != nil {
		return Charge{}, fmt.Errorf("charge by intent: %w", s.mapErr(err))
	}
	return c, nil
}

// LocalMethod is a card of the local payment provider.
type LocalMethod struct {
	ProjectID, CustomerID, ID string
	Brand, LastFour           string
	ExpMonth, ExpYear         int
	Default                   bool
	CreatedAt                 time.Time
}

// AddLocalMethod stores a card; a customer's first card is its default.
// Errors: ErrConflict (the id is taken).
func (s *Store) AddLocalMethod(ctx context.Context, m LocalMethod) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM payment_local_methods WHERE project_id = ? AND customer_id = ?`,
			m.ProjectID, m.CustomerID).Scan(&n); err != nil {
			return s.mapErr(err)
		}
		def := 0
		if n == 0 {
			def = 1
		}
		_, err := tx.exec(ctx, `INSERT INTO payment_local_methods (project_id, customer_id, method_id, brand, last_four, exp_month, exp_year, is_default, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.ProjectID, m.CustomerID, m.ID, m.Brand, m.LastFour, m.ExpMonth, m.ExpYear, def, ms(m.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("add local payment method: %w", err)
	}
	return nil
}

// LocalMethods lists a customer's cards, oldest first.
func (s *Store) LocalMethods(ctx context.Context, projectID, customerID string) ([]LocalMethod, error) {
	rows, err := s.query(ctx, `SELECT method_id, brand, last_four, exp_month, exp_year, is_default, created_at FROM payment_local_methods
		WHERE project_id = ? AND customer_id = ? ORDER BY created_at, method_id`, projectID, customerID)
	if err != nil {
		return nil, fmt.Errorf("local payment methods: %w", err)
	}
	defer rows.Close()
	var out []LocalMethod
	for rows.Next() {
		m := LocalMethod{ProjectID: projectID, CustomerID: customerID}
		var def int
		var created int64
		if err := rows.Scan(&m.ID, &m.Brand, &m.LastFour, &m.ExpMonth, &m.ExpYear, &def, &created); err != nil {
			return nil, fmt.Errorf("local payment methods: %w", err)
		}
		m.Default, m.CreatedAt = def == 1, fromMS(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetLocalDefault makes one card the customer's default. Errors:
// ErrNotFound (not the customer's card).
func (s *Store) SetLocalDefault(ctx context.Context, projectID, customerID, id string) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE payment_local_methods SET is_default = CASE WHEN method_id = ? THEN 1 ELSE 0 END
			WHERE project_id = ? AND customer_id = ? AND EXISTS (SELECT 1 FROM payment_local_methods
			WHERE project_id = ? AND customer_id = ? AND method_id = ?)`, id, projectID, customerID, projectID, customerID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set local default payment method: %w", err)
	}
	return nil
}

// DeleteLocalMethod removes a card. Errors: ErrNotFound.
func (s *Store) DeleteLocalMethod(ctx context.Context, projectID, customerID, id string) error {
	res, err := s.exec(ctx, `DELETE FROM payment_local_methods WHERE project_id = ? AND customer_id = ? AND method_id = ?`, projectID, customerID, id)
	if err != nil {
		return fmt.Errorf("delete local payment method: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete local payment method %s: %w", id, ErrNotFound)
	}
	return nil
}

// ReleaseCharge deletes a pending charge whose request failed before it
// reached the provider (so a retry claims the key afresh). A charge that
// is no longer pending stays.
func (s *Store) ReleaseCharge(ctx context.Context, projectID, key string) error {
	if _, err := s.exec(ctx, `DELETE FROM payment_charges WHERE project_id = ? AND idem_key = ? AND status = ?`, projectID, key, ChargePending); err != nil {
		return fmt.Errorf("release charge: %w", err)
	}
	return nil
}
