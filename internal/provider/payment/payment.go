// Package payment runs the SDK's paymentMethod and charge services through
// a project's payment provider: local (the default: cards and charges
// recorded in Ward, no payment network) or Stripe. Every charge is recorded
// as a FHIR PaymentReconciliation, whichever provider carries it.
package payment

import (
	"context"
	"errors"
)

// Card is a stored payment method (the SDK's CardIdentifier, in Go).
type Card struct {
	ID       string
	Brand    string
	LastFour string
	ExpMonth int
	ExpYear  int
}

// ChargeRequest is one charge of a customer's payment method.
type ChargeRequest struct {
	Customer, Method string
	Amount           int64 // minor units (cents)
	Currency         string
	// Key is the idempotency key: the provider charges once per key
	// however often it is sent.
	Key      string
	Metadata map[string]string
}

// Result is the provider's answer to a charge.
type Result struct {
	ID     string // the provider's payment id (a Stripe PaymentIntent)
	Status string // StatusSucceeded, StatusProcessing or StatusFailed
	Reason string // why it failed
}

// Charge statuses, as the store keeps them.
const (
	StatusSucceeded  = "succeeded"
	StatusProcessing = "processing"
	StatusFailed     = "failed"
)

// Provider is one payment network. Customer ids are the provider's.
// Errors: ErrRefused when the provider declined the request for good (bad
// credentials, unknown customer); others are transient.
type Provider interface {
	// Customer creates a customer for a payor; key makes a retried
	// creation return the same customer.
	Customer(ctx context.Context, key, payor, name string) (string, error)
	// SetupIntent starts registering a payment method and returns the
	// client secret the payor's browser completes it with.
	SetupIntent(ctx context.Context, customer, key string) (string, error)
	// Methods lists the customer's cards and the id of its default ("").
	Methods(ctx context.Context, customer string) ([]Card, string, error)
	SetDefault(ctx context.Context, customer, method string) error
	Detach(ctx context.Context, customer, method string) error
	// Charge charges a method; a declined card is a Result with
	// StatusFailed, not an error.
	Charge(ctx context.Context, c ChargeRequest) (Result, error)
	// Refund returns part or all of a charge to its payor; a refund the
	// network declined is a Result with StatusFailed.
	Refund(ctx context.Context, r RefundRequest) (Result, error)
}

// RefundRequest is one refund of a charge.
type RefundRequest struct {
	Payment  string // the provider's payment id (a Stripe PaymentIntent)
	Amount   int64  // minor units, positive
	Currency string
	// Key is the idempotency key, as for charges.
	Key      string
	Metadata map[string]string
}

// ErrRefused marks a request the provider will not take.
var ErrRefused = errors.New("payment provider refused the request")
