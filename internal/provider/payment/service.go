package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/provider"
	"github.com/wardhealth/ward/internal/store"
)

// The project secrets the Stripe provider reads (docs/providers.md).
const (
	SecretStripeKey     = "STRIPE_SECRET_KEY"
	SecretWebhookSecret = "STRIPE_WEBHOOK_SECRET"
)

// TagSystem tags the Accounts and PaymentReconciliations this service
// writes (code: the provider).
const TagSystem = "urn:ward:payment"

// FHIR is what the service needs of the FHIR API: reads, searches and
// writes as the caller (their policy applies), status changes as Ward.
type FHIR interface {
	Read(ctx context.Context, p auth.Principal, typ, id string) (fhir.Resource, error)
	Search(ctx context.Context, p auth.Principal, q *search.Query) (fhir.Page, error)
	Create(ctx context.Context, p auth.Principal, typ string, body []byte, ifNoneExist string) (fhir.Resource, bool, error)
	Update(ctx context.Context, p auth.Principal, typ, id string, body []byte, ifMatch string) (fhir.Resource, bool, error)
	SystemUpdate(ctx context.Context, projectID, typ, id string, mutate func(m map[string]any) error) (fhir.Resource, error)
}

// Store keeps charges (their idempotency keys) and the local provider's
// cards.
type Store interface {
	LocalStore
	ClaimCharge(ctx context.Context, c store.Charge) (store.Charge, bool, error)
	ReleaseCharge(ctx context.Context, projectID, key string) error
	UpdateCharge(ctx context.Context, c store.Charge) error
	TakeOverCharge(ctx context.Context, projectID, key string, staleBefore, now time.Time) (bool, error)
	GetCharge(ctx context.Context, projectID, key string) (store.Charge, error)
	LatestCharge(ctx context.Context, projectID, encounterID string) (store.Charge, error)
	ChargeByIntent(ctx context.Context, projectID, intentID string) (store.Charge, error)
	ClaimRefund(ctx context.Context, f store.Refund) (store.Refund, bool, error)
	UpdateRefund(ctx context.Context, f store.Refund) error
	TakeOverRefund(ctx context.Context, projectID, key string, staleBefore, now time.Time) (bool, error)
	ReleaseRefund(ctx context.Context, projectID, key string) error
	GetRefund(ctx context.Context, projectID, key string) (store.Refund, error)
	RefundByProviderID(ctx context.Context, projectID, refundID string) (store.Refund, error)
}

// Config is the service's tunables.
type Config struct {
	StripeURL string // DefaultStripeURL unless set
	// Wait bounds how long a retried charge waits for the first request
	// of its key to finish (default 10s); Stale is how long a pending
	// charge may stay untouched before a retry takes it over (a crash
	// between claim and answer; default 2m).
	Wait, Stale time.Duration
}

// Deps are what the service calls.
type Deps struct {
	FHIR  FHIR
	Store Store
	// Providers returns the project's provider choices (service -> name).
	Providers func(ctx context.Context, projectID string) (map[string]string, error)
	// Secret returns a project secret's value; ok false when it is not set.
	Secret func(ctx context.Context, projectID, name string) (value string, ok bool, err error)
	HTTP   *http.Client // the egress policy's client
	Log    *slog.Logger
	Now    func() time.Time
}

// Service runs paymentMethod.* and charge.* of the SDK.
type Service struct {
	cfg Config
	d   Deps
}

// New builds the service.
func New(cfg Config, d Deps) *Service {
	if cfg.StripeURL == "" {
		cfg.StripeURL = DefaultStripeURL
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 10 * time.Second
	}
	if cfg.Stale <= 0 {
		cfg.Stale = 2 * time.Minute
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{cfg: cfg, d: d}
}

// provider picks the project's payment provider, reading its credentials.
func (s *Service) provider(ctx context.Context, projectID string) (string, Provider, error) {
	choices, err := s.d.Providers(ctx, projectID)
	if err != nil {
		return "", nil, err
	}
	switch name := choices["payment"]; name {
	case "", provider.Local:
		return provider.Local, &Local{ProjectID: projectID, Store: s.d.Store, Now: s.d.Now}, nil
	case "stripe":
		key, ok, err := s.d.Secret(ctx, projectID, SecretStripeKey)
		if err != nil {
			return "", nil, err
		}
		if !ok || key == "" {
			return "", nil, fault.Invalid("the project's payment provider is stripe but its secret %s is not set", SecretStripeKey)
		}
		return name, NewStripe(s.cfg.StripeURL, key, s.d.HTTP), nil
	default:
		return "", nil, fault.Invalid("the project's payment provider %q is not one this server has", name)
	}
}

// Payor names the patients of a paymentMethod call: the beneficiary and
// who pays (the beneficiary when not given).
type Payor struct {
	Beneficiary, Payor string
}

func (py Payor) normal() (Payor, error) {
	if py.Payor == "" {
		py.Payor = py.Beneficiary
	}
	for _, id := range []string{py.Beneficiary, py.Payor} {
		if id == "" || strings.ContainsAny(id, "/?#") || len(id) > 64 {
			return py, fault.Invalid("beneficiaryPatientId (and payorPatientId, when given) must be Patient ids")
		}
	}
	return py, nil
}

// Setup returns a client secret that registers a payment method for the
// payor, creating the payor's customer (recorded on an Account) first.
func (s *Service) Setup(ctx context.Context, p auth.Principal, py Payor) (string, error) {
	name, prov, cust, err := s.customer(ctx, p, py, true)
	if err != nil {
		return "", err
	}
	secret, err := prov.SetupIntent(ctx, cust, idemKey("setup", p.ProjectID, cust, s.d.Now().UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return "", s.providerErr(ctx, name, err)
	}
	return secret, nil
}

// List returns the payor's cards and its default (nil when none).
func (s *Service) List(ctx context.Context, p auth.Principal, py Payor) ([]Card, *Card, error) {
	name, prov, cust, err := s.customer(ctx, p, py, false)
	if errors.Is(err, errNoCustomer) {
		return []Card{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	cards, def, err := prov.Methods(ctx, cust)
	if err != nil {
		return nil, nil, s.providerErr(ctx, name, err)
	}
	var d *Card
	for i := range cards {
		if cards[i].ID == def {
			d = &cards[i]
		}
	}
	if cards == nil {
		cards = []Card{}
	}
	return cards, d, nil
}

// SetDefault makes one of the payor's cards the default. A card that is
// not the payor's is a 404.
func (s *Service) SetDefault(ctx context.Context, p auth.Principal, py Payor, method string) error {
	name, prov, cust, err := s.ownMethod(ctx, p, py, method)
	if err != nil {
		return err
	}
	return s.providerErr(ctx, name, prov.SetDefault(ctx, cust, method))
}

// Delete removes one of the payor's cards. A card that is not the payor's
// is a 404.
func (s *Service) Delete(ctx context.Context, p auth.Principal, py Payor, method string) error {
	name, prov, cust, err := s.ownMethod(ctx, p, py, method)
	if err != nil {
		return err
	}
	return s.providerErr(ctx, name, prov.Detach(ctx, cust, method))
}

func (s *Service) ownMethod(ctx context.Context, p auth.Principal, py Payor, method string) (string, Provider, string, error) {
	if method == "" || len(method) > 255 {
		return "", nil, "", fault.Invalid("paymentMethodId is required")
	}
	name, prov, cust, err := s.customer(ctx, p, py, false)
	if errors.Is(err, errNoCustomer) {
		return "", nil, "", fault.NotFound("payment method %s is not one of the payor's", clip(method))
	}
	if err != nil {
		return "", nil, "", err
	}
	cards, _, err := prov.Methods(ctx, cust)
	if err != nil {
		return "", nil, "", s.providerErr(ctx, name, err)
	}
	for _, c := range cards {
		if c.ID == method {
			return name, prov, cust, nil
		}
	}
	return "", nil, "", fault.NotFound("payment method %s is not one of the payor's", clip(method))
}

// providerErr turns a provider's error into the caller's: a refusal is a
// 400 with the provider's message, anything else a 503 (logged).
func (s *Service) providerErr(ctx context.Context, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrRefused) {
		return fault.Invalid("%v", err)
	}
	if _, ok := err.(*fault.Error); ok {
		return err
	}
	s.d.Log.WarnContext(ctx, "payment provider failed", "provider", name, "err", err)
	return fault.Unavailable("the payment provider did not answer; try again later")
}

func idemKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "ward-" + hex.EncodeToString(h.Sum(nil))[:40]
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
