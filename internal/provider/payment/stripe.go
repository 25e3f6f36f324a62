package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/stripe/stripe-go/v82"
)

// DefaultStripeURL is Stripe's API; --stripe-api-url replaces it (a
// stand-in such as stripe-mock in tests).
const DefaultStripeURL = "https://api.stripe.com"

// Stripe is the Stripe provider, through stripe-go: Customers,
// SetupIntents, PaymentMethods and PaymentIntents.
type Stripe struct {
	c   *stripe.Client
	key string // only to scrub it from Stripe's messages
}

var _ Provider = (*Stripe)(nil)

// NewStripe builds a client for one secret key. hc is the egress policy's
// client; stripe-go retries network failures and 409/429/5xx itself
// (twice), with the same idempotency key.
func NewStripe(baseURL, key string, hc *http.Client) *Stripe {
	cfg := &stripe.BackendConfig{HTTPClient: hc, URL: stripe.String(strings.TrimRight(baseURL, "/")),
		MaxNetworkRetries: stripe.Int64(2), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	return &Stripe{c: stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(cfg))), key: key}
}

// err sorts Stripe's answer: a 4xx other than 409 and 429 is final
// (ErrRefused with Stripe's message). A 401 or 403 is about the key: its
// message is not passed on (a stand-in may echo the key), and no message
// ever carries the key.
func (s *Stripe) err(what string, err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && (se.HTTPStatusCode == 401 || se.HTTPStatusCode == 403) {
		return fmt.Errorf("%w: stripe %s: %d: Stripe refused the project's %s", ErrRefused, what, se.HTTPStatusCode, SecretStripeKey)
	}
	if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != 409 && se.HTTPStatusCode != 429 {
		return fmt.Errorf("%w: stripe %s: %d %s", ErrRefused, what, se.HTTPStatusCode, s.scrub(se.Msg))
	}
	return fmt.Errorf("stripe %s: %s", what, s.scrub(err.Error()))
}

func (s *Stripe) scrub(msg string) string {
	if len(s.key) >= 8 {
		msg = strings.ReplaceAll(msg, s.key, "[the secret key]")
	}
	return msg
}

func (s *Stripe) Customer(ctx context.Context, key, payor, name string) (string, error) {
	p := &stripe.CustomerCreateParams{Metadata: map[string]string{"ward_payor": payor}}
	if name != "" {
		p.Name = stripe.String(name)
	}
	p.SetIdempotencyKey(key)
	c, err := s.c.V1Customers.Create(ctx, p)
	if err != nil {
		return "", s.err("create customer", err)
	}
	return c.ID, nil
}

func (s *Stripe) SetupIntent(ctx context.Context, customer, key string) (string, error) {
	p := &stripe.SetupIntentCreateParams{Customer: stripe.String(customer), Usage: stripe.String("off_session"),
		PaymentMethodTypes: []*string{stripe.String("card")}}
	p.SetIdempotencyKey(key)
	si, err := s.c.V1SetupIntents.Create(ctx, p)
	if err != nil {
		return "", s.err("create setup intent", err)
	}
	return si.ClientSecret, nil
}

func (s *Stripe) Methods(ctx context.Context, customer string) ([]Card, string, error) {
	cu, err := s.c.V1Customers.Retrieve(ctx, customer, nil)
	if err != nil {
		return nil, "", s.err("retrieve customer", err)
	}
	def := ""
	if cu.InvoiceSettings != nil && cu.InvoiceSettings.DefaultPaymentMethod != nil {
		def = cu.InvoiceSettings.DefaultPaymentMethod.ID
	}
	var cards []Card
	lp := &stripe.PaymentMethodListParams{Customer: stripe.String(customer), Type: stripe.String("card")}
	for pm, err := range s.c.V1PaymentMethods.List(ctx, lp) {
		if err != nil {
			return nil, "", s.err("list payment methods", err)
		}
		cards = append(cards, stripeCard(pm))
		if len(cards) >= 100 {
			break
		}
	}
	return cards, def, nil
}

func stripeCard(pm *stripe.PaymentMethod) Card {
	c := Card{ID: pm.ID}
	if pm.Card != nil {
		c.Brand, c.LastFour, c.ExpMonth, c.ExpYear = string(pm.Card.Brand), pm.Card.Last4, int(pm.Card.ExpMonth), int(pm.Card.ExpYear)
	}
	return c
}

func (s *Stripe) SetDefault(ctx context.Context, customer, method string) error {
	_, err := s.c.V1Customers.Update(ctx, customer, &stripe.CustomerUpdateParams{
		InvoiceSettings: &stripe.CustomerUpdateInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(method)}})
	if err != nil {
		return s.err("set default payment method", err)
	}
	return nil
}

func (s *Stripe) Detach(ctx context.Context, customer, method string) error {
	if _, err := s.c.V1PaymentMethods.Detach(ctx, method, nil); err != nil {
		return s.err("detach payment method", err)
	}
	return nil
}

// Charge creates and confirms a PaymentIntent off session. A decline
// (Stripe's 402 card_error) is a failed Result naming the PaymentIntent.
func (s *Stripe) Charge(ctx context.Context, c ChargeRequest) (Result, error) {
	p := &stripe.PaymentIntentCreateParams{Amount: stripe.Int64(c.Amount), Currency: stripe.String(c.Currency),
		Customer: stripe.String(c.Customer), PaymentMethod: stripe.String(c.Method), Confirm: stripe.Bool(true),
		OffSession: stripe.Bool(true), PaymentMethodTypes: []*string{stripe.String("card")}}
	p.Metadata = c.Metadata
	p.SetIdempotencyKey(c.Key)
	pi, err := s.c.V1PaymentIntents.Create(ctx, p)
	var se *stripe.Error
	if errors.As(err, &se) && se.Type == stripe.ErrorTypeCard {
		r := Result{Status: StatusFailed, Reason: "stripe: " + s.scrub(se.Msg)}
		if se.PaymentIntent != nil {
			r.ID = se.PaymentIntent.ID
		}
		return r, nil
	}
	if err != nil {
		return Result{}, s.err("create payment intent", err)
	}
	return Result{ID: pi.ID, Status: intentStatus(string(pi.Status))}, nil
}

// Refund creates a Refund of the PaymentIntent with the idempotency key.
func (s *Stripe) Refund(ctx context.Context, r RefundRequest) (Result, error) {
	p := &stripe.RefundCreateParams{PaymentIntent: stripe.String(r.Payment), Amount: stripe.Int64(r.Amount)}
	p.Metadata = r.Metadata
	p.SetIdempotencyKey(r.Key)
	re, err := s.c.V1Refunds.Create(ctx, p)
	if err != nil {
		return Result{}, s.err("create refund", err)
	}
	res := Result{ID: re.ID, Status: refundStatus(string(re.Status))}
	if re.FailureReason != "" {
		res.Reason = "stripe: " + string(re.FailureReason)
	}
	return res, nil
}

// refundStatus maps a Refund's status (its create answer or a refund
// event's object) to Ward's: pending and requires_action wait for the
// webhook.
func refundStatus(s string) string {
	switch s {
	case "succeeded":
		return StatusSucceeded
	case "failed", "canceled":
		return StatusFailed
	}
	return StatusProcessing
}

// intentStatus maps a PaymentIntent's status, as the create call answers
// it, to a charge's. A decline comes as a card error, not a status; other
// unsettled states (processing, requires_action, requires_payment_method)
// wait for the webhook that says how the payment ended.
func intentStatus(s string) string {
	switch s {
	case "succeeded":
		return StatusSucceeded
	case "canceled":
		return StatusFailed
	}
	return StatusProcessing
}

// eventStatus maps a payment_intent event's type to a charge's status ("":
// not one that settles anything).
func eventStatus(typ string) string {
	switch typ {
	case "payment_intent.succeeded":
		return StatusSucceeded
	case "payment_intent.payment_failed", "payment_intent.canceled":
		return StatusFailed
	case "payment_intent.processing":
		return StatusProcessing
	}
	return ""
}
