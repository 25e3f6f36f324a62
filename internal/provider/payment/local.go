package payment

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// LocalStore is what the local provider keeps: its cards.
type LocalStore interface {
	AddLocalMethod(ctx context.Context, m store.LocalMethod) error
	LocalMethods(ctx context.Context, projectID, customerID string) ([]store.LocalMethod, error)
	SetLocalDefault(ctx context.Context, projectID, customerID, id string) error
	DeleteLocalMethod(ctx context.Context, projectID, customerID, id string) error
}

// Local is the development provider: no payment network. A setup adds a
// test card at once (visa ending 4242; no card is collected, the client
// secret completes nothing) and every charge of a card succeeds. What it
// records in FHIR is what the Stripe provider records.
type Local struct {
	ProjectID string
	Store     LocalStore
	Now       func() time.Time
}

var _ Provider = (*Local)(nil)

// Customer derives the id from the key: a retry gets the same customer.
func (l *Local) Customer(_ context.Context, key, _, _ string) (string, error) {
	return "cus_local_" + short(key), nil
}

func (l *Local) SetupIntent(ctx context.Context, customer, _ string) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := l.Store.AddLocalMethod(ctx, store.LocalMethod{ProjectID: l.ProjectID, CustomerID: customer, ID: "pm_local_" + id,
		Brand: "visa", LastFour: "4242", ExpMonth: 12, ExpYear: l.Now().Year() + 3, CreatedAt: l.Now()}); err != nil {
		return "", err
	}
	return "seti_local_" + id + "_secret_local", nil
}

func (l *Local) Methods(ctx context.Context, customer string) ([]Card, string, error) {
	ms, err := l.Store.LocalMethods(ctx, l.ProjectID, customer)
	if err != nil {
		return nil, "", err
	}
	cards := make([]Card, 0, len(ms))
	def := ""
	for _, m := range ms {
		cards = append(cards, Card{ID: m.ID, Brand: m.Brand, LastFour: m.LastFour, ExpMonth: m.ExpMonth, ExpYear: m.ExpYear})
		if m.Default {
			def = m.ID
		}
	}
	return cards, def, nil
}

func (l *Local) SetDefault(ctx context.Context, customer, method string) error {
	return localErr(l.Store.SetLocalDefault(ctx, l.ProjectID, customer, method))
}

func (l *Local) Detach(ctx context.Context, customer, method string) error {
	return localErr(l.Store.DeleteLocalMethod(ctx, l.ProjectID, customer, method))
}

func localErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: no such payment method", ErrRefused)
	}
	return err
}

// Charge succeeds at once; the id is derived from the key, as a retry
// with Stripe's idempotency key returns the same PaymentIntent.
func (l *Local) Charge(_ context.Context, c ChargeRequest) (Result, error) {
	return Result{ID: "pi_local_" + short(c.Key), Status: StatusSucceeded}, nil
}

func short(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:12])
}

// Refund succeeds at once, with an id derived from the key.
func (l *Local) Refund(_ context.Context, r RefundRequest) (Result, error) {
	return Result{ID: "re_local_" + short(r.Key), Status: StatusSucceeded}, nil
}
