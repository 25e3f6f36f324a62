package server

import (
	"net/http"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/provider/payment"
)

// paymentRoutes are the SDK's paymentMethod and charge services, and
// Stripe's webhook.
func (s *Server) paymentRoutes() []route {
	if s.payment == nil {
		return nil
	}
	pm, ch := fixed("Payment:PaymentMethod"), fixed("Payment:Charge")
	return []route{
		{method: "POST", path: "/v1/payment/payment-method/setup", action: "Payment:Setup", resource: pm, handle: s.paymentSetup},
		// The SDK's comment names Payment:Setup for list; the seed's
		// catalog has Payment:List, which is what a policy would grant.
		{method: "POST", path: "/v1/payment/payment-method/list", action: "Payment:List", resource: pm, handle: s.paymentList},
		{method: "POST", path: "/v1/payment/payment-method/set-default", action: "Payment:SetDefault", resource: pm, handle: s.paymentSetDefault},
		{method: "DELETE", path: "/v1/payment/payment-method", action: "Payment:Delete", resource: pm, handle: s.paymentDelete},
		{method: "POST", path: "/v1/payment/charge/issue", action: "Payment:Issue", resource: ch, handle: s.chargeIssue},
		{method: "POST", path: "/v1/payment/charge/status", action: "Payment:Status", resource: ch, handle: s.chargeStatus},
		// Ward's addition (not in SDK 4.2.6). The seed has no refund
		// action: a refund moves money on a charge, so it takes what
		// issuing one does.
		{method: "POST", path: "/v1/payment/charge/refund", action: "Payment:Issue", resource: ch, handle: s.chargeRefund},
		// Stripe's signature (Stripe-Signature, with the project's webhook
		// secret) is the credential.
		{method: "POST", path: "/v1/payment/stripe/webhook/{project}", public: true, handle: s.stripeWebhook},
	}
}

// payorParams is the body of every paymentMethod call.
type payorParams struct {
	Beneficiary     string `json:"beneficiaryPatientId"`
	Payor           string `json:"payorPatientId"`
	PaymentMethodID string `json:"paymentMethodId"`
}

func (in payorParams) payor() payment.Payor {
	return payment.Payor{Beneficiary: in.Beneficiary, Payor: in.Payor}
}

func (s *Server) paymentSetup(w http.ResponseWriter, r *http.Request, c call) error {
	var in payorParams
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	secret, err := s.payment.Setup(r.Context(), c.p, in.payor())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"clientSecret": secret})
	return nil
}

// cardIdentifier is the SDK's CardIdentifier.
type cardIdentifier struct {
	ID       string `json:"id"`
	Brand    string `json:"brand"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	LastFour string `json:"last_four"`
}

func toCardIdentifier(c payment.Card) cardIdentifier {
	return cardIdentifier{ID: c.ID, Brand: c.Brand, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, LastFour: c.LastFour}
}

func (s *Server) paymentList(w http.ResponseWriter, r *http.Request, c call) error {
	var in payorParams
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	cards, def, err := s.payment.List(r.Context(), c.p, in.payor())
	if err != nil {
		return err
	}
	out := struct {
		Cards   []cardIdentifier `json:"cards"`
		Default *cardIdentifier  `json:"default,omitempty"`
	}{Cards: make([]cardIdentifier, 0, len(cards))}
	for _, card := range cards {
		out.Cards = append(out.Cards, toCardIdentifier(card))
	}
	if def != nil {
		d := toCardIdentifier(*def)
		out.Default = &d
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) paymentSetDefault(w http.ResponseWriter, r *http.Request, c call) error {
	var in payorParams
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.payment.SetDefault(r.Context(), c.p, in.payor(), in.PaymentMethodID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (s *Server) paymentDelete(w http.ResponseWriter, r *http.Request, c call) error {
	var in payorParams
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.payment.Delete(r.Context(), c.p, in.payor(), in.PaymentMethodID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

type encounterParams struct {
	EncounterID string `json:"encounterId"`
}

func (s *Server) chargeIssue(w http.ResponseWriter, r *http.Request, c call) error {
	var in encounterParams
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.payment.Issue(r.Context(), c.p, in.EncounterID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (s *Server) chargeStatus(w http.ResponseWriter, r *http.Request, c call) error {
	var in encounterParams
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	d, err := s.payment.Status(r.Context(), c.p, in.EncounterID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// chargeRefund takes {encounterId, amount?}; the Idempotency-Key header
// (optional) tells apart two refunds of one amount.
func (s *Server) chargeRefund(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		EncounterID string   `json:"encounterId"`
		Amount      *float64 `json:"amount"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	d, err := s.payment.Refund(r.Context(), c.p, payment.RefundParams{EncounterID: in.EncounterID, Amount: in.Amount,
		Key: r.Header.Get("Idempotency-Key")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request, _ call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	if err := s.payment.Webhook(r.Context(), r.PathValue("project"), r.Header.Get("Stripe-Signature"), body); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
	return nil
}
