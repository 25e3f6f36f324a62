package payment

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/stripe/stripe-go/v82/webhook"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// Webhook applies a Stripe event to the charge it names. The
// Stripe-Signature header is checked with the project's webhook secret
// (stripe-go's webhook package: HMAC-SHA256, 5-minute tolerance). Errors:
// Forbidden (no secret, bad signature: one answer for both), Invalid (not
// an event). Events Ward did not cause are accepted and ignored, so Stripe
// stops resending them.
func (s *Service) Webhook(ctx context.Context, projectID, signature string, body []byte) error {
	secret, ok, err := s.d.Secret(ctx, projectID, SecretWebhookSecret)
	if err != nil && !errors.Is(err, fault.ErrNotFound) {
		return err
	}
	if !ok || secret == "" {
		return fault.Forbidden("the webhook's Stripe-Signature does not verify")
	}
	ev, err := webhook.ConstructEventWithOptions(body, signature, secret, webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		return fault.Forbidden("the webhook's Stripe-Signature does not verify")
	}
	var pi struct {
		ID               string `json:"id"`
		Object           string `json:"object"`
		Status           string `json:"status"`
		LastPaymentError *struct {
			Message string `json:"message"`
		} `json:"last_payment_error"`
	}
	if ev.Data == nil || json.Unmarshal(ev.Data.Raw, &pi) != nil {
		return fault.Invalid("the event has no data.object")
	}
	if pi.Object != "payment_intent" {
		return nil
	}
	c, err := s.d.Store.ChargeByIntent(ctx, projectID, pi.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	status, reason := eventStatus(string(ev.Type)), ""
	if status == "" {
		return nil
	}
	if pi.LastPaymentError != nil {
		reason = pi.LastPaymentError.Message
	}
	// A settled charge does not go back to processing (events arrive out
	// of order); a refund or dispute is a later story.
	if status == StatusProcessing && c.Status != store.ChargePending && c.Status != StatusProcessing {
		return nil
	}
	if err := s.d.Store.UpdateCharge(ctx, store.Charge{ProjectID: projectID, Key: c.Key, Status: status, UpdatedAt: s.d.Now()}); err != nil {
		return err
	}
	if c.ReconciliationID == "" {
		return nil
	}
	return s.settle(ctx, projectID, c.ReconciliationID, pi.ID, status, "stripe: "+reason)
}
