package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stripe/stripe-go/v82/webhook"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// Webhook applies a Stripe event to the charge it names. The
// Stripe-Signature header is checked with the project's webhook secret
// (stripe-go's webhook package: HMAC-SHA256 over "t.payload", five minutes'
// tolerance). Errors: Forbidden (no secret, bad signature: one answer for
// both), Invalid (not an event). Events Ward did not cause are accepted and
// ignored, so Stripe stops resending them.
func (s *Service) Webhook(ctx context.Context, projectID, signature string, body []byte) error {
	secret, ok, err := s.d.Secret(ctx, projectID, SecretWebhookSecret)
	if err != nil && !errors.Is(err, fault.ErrNotFound) {
		return err
	}
	if !ok || secret == "" || webhook.ValidatePayload(body, signature, secret) != nil {
		return fault.Forbidden("the webhook's Stripe-Signature does not verify")
	}
	ev, err := parseIntentEvent(body)
	if err != nil {
		return fault.Invalid("%v", err)
	}
	if ev.Status == "" {
		return nil
	}
	if ev.Refund {
		return s.refundEvent(ctx, projectID, ev)
	}
	c, err := s.d.Store.ChargeByIntent(ctx, projectID, ev.IntentID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// A settled charge does not go back to processing (events arrive out
	// of order); disputes are not followed yet.
	if ev.Status == StatusProcessing && c.Status != store.ChargePending && c.Status != StatusProcessing {
		return nil
	}
	if err := s.d.Store.UpdateCharge(ctx, store.Charge{ProjectID: projectID, Key: c.Key, Status: ev.Status, UpdatedAt: s.d.Now()}); err != nil {
		return err
	}
	if c.ReconciliationID == "" {
		return nil
	}
	if err := s.settle(ctx, chargeKind, projectID, c.ReconciliationID, ev.IntentID, ev.Status, "stripe: "+ev.Reason); err != nil {
		return err
	}
	return s.balance(ctx, projectID, c.InvoiceID, ev.Status)
}

// refundEvent applies a refund's new status to the refund Ward made. A
// settled refund does not go back to processing.
func (s *Service) refundEvent(ctx context.Context, projectID string, ev intentEvent) error {
	f, err := s.d.Store.RefundByProviderID(ctx, projectID, ev.IntentID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if ev.Status == StatusProcessing && f.Status != store.ChargePending && f.Status != StatusProcessing {
		return nil
	}
	if err := s.d.Store.UpdateRefund(ctx, store.Refund{ProjectID: projectID, Key: f.Key, Status: ev.Status, UpdatedAt: s.d.Now()}); err != nil {
		return err
	}
	if f.ReconciliationID == "" {
		return nil
	}
	return s.settle(ctx, refundKind, projectID, f.ReconciliationID, ev.IntentID, ev.Status, "stripe: "+ev.Reason)
}

// intentEvent is what Ward reads of a Stripe event.
type intentEvent struct {
	IntentID string // the PaymentIntent's id, or the Refund's when Refund
	Refund   bool   // a refund event (refund.*, charge.refund.updated)
	Status   string // a charge status; "" for an event that settles nothing
	Reason   string // the last payment error's message, a refund's failure reason
}

// parseIntentEvent reads a (verified) Stripe event. An event that is not
// about a PaymentIntent's outcome has Status "".
func parseIntentEvent(payload []byte) (intentEvent, error) {
	var ev struct {
		Object string `json:"object"`
		Type   string `json:"type"`
		Data   *struct {
			Object *struct {
				ID               string `json:"id"`
				Object           string `json:"object"`
				Status           string `json:"status"`
				FailureReason    string `json:"failure_reason"`
				LastPaymentError *struct {
					Message string `json:"message"`
				} `json:"last_payment_error"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return intentEvent{}, fmt.Errorf("the body is not a Stripe event: %w", err)
	}
	if ev.Object != "event" || ev.Data == nil || ev.Data.Object == nil {
		return intentEvent{}, errors.New("the body is not a Stripe event with data.object")
	}
	o := ev.Data.Object
	status := eventStatus(ev.Type)
	if o.Object != "payment_intent" || o.ID == "" {
		status = ""
	}
	if o.Object == "refund" && o.ID != "" {
		switch ev.Type {
		case "refund.created", "refund.updated", "refund.failed", "charge.refund.updated":
			// A refund event carries the refund as it now is.
			out := intentEvent{IntentID: o.ID, Refund: true, Status: refundStatus(o.Status), Reason: clip(o.FailureReason)}
			if ev.Type == "refund.failed" {
				out.Status = StatusFailed
			}
			return out, nil
		}
	}
	out := intentEvent{IntentID: o.ID, Status: status}
	if o.LastPaymentError != nil {
		out.Reason = clip(o.LastPaymentError.Message)
	}
	return out, nil
}
