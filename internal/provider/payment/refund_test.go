package payment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func amt(v float64) *float64 { return &v }

// TestRefund: partial and full refunds of a local charge, each recorded
// once as a negative PaymentReconciliation; retries answer as the first;
// never more than was charged; hostile amounts and other projects refused.
func TestRefund(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r := newRig(t, b)
			ctx := context.Background()
			_, enc := r.payableVisit(t, [3]any{10, "USD", "billable"})
			if _, err := r.svc.Refund(ctx, r.p, RefundParams{EncounterID: enc}); !errors.Is(err, fault.ErrNotFound) {
				t.Fatalf("refund before any charge: %v", err)
			}
			if err := r.svc.Issue(ctx, r.p, enc); err != nil {
				t.Fatal(err)
			}
			steps := []struct {
				name   string
				in     RefundParams
				amount float64 // refunded by this step; 0 with err
				err    error
				msg    string
			}{
				{"partial", RefundParams{EncounterID: enc, Amount: amt(3)}, 3, nil, ""},
				{"retried: the same refund", RefundParams{EncounterID: enc, Amount: amt(3)}, 3, nil, ""},
				{"same amount, another key", RefundParams{EncounterID: enc, Amount: amt(3), Key: "second"}, 3, nil, ""},
				{"more than is left", RefundParams{EncounterID: enc, Amount: amt(5)}, 0, fault.ErrInvalid, "more than is left"},
				{"more than was charged", RefundParams{EncounterID: enc, Amount: amt(1000)}, 0, fault.ErrInvalid, "more than is left"},
				{"negative", RefundParams{EncounterID: enc, Amount: amt(-1)}, 0, fault.ErrInvalid, "positive"},
				{"zero", RefundParams{EncounterID: enc, Amount: amt(0)}, 0, fault.ErrInvalid, "positive"},
				{"under a cent", RefundParams{EncounterID: enc, Amount: amt(0.001)}, 0, fault.ErrInvalid, "positive"},
				{"the rest", RefundParams{EncounterID: enc}, 4, nil, ""},
				{"the rest, retried", RefundParams{EncounterID: enc}, 4, nil, ""},
				{"the rest again, another key", RefundParams{EncounterID: enc, Key: "third"}, 0, fault.ErrInvalid, "more than is left"},
				{"no encounter", RefundParams{}, 0, fault.ErrInvalid, "encounterId"},
				{"long key", RefundParams{EncounterID: enc, Key: strings.Repeat("k", 300)}, 0, fault.ErrInvalid, "Idempotency-Key"},
			}
			for _, st := range steps {
				d, err := r.svc.Refund(ctx, r.p, st.in)
				if st.err != nil {
					if !errors.Is(err, st.err) || !strings.Contains(err.Error(), st.msg) {
						t.Fatalf("%s: %v, want %v %q", st.name, err, st.err, st.msg)
					}
					continue
				}
				if err != nil || d.Amount != st.amount || d.Status != StatusSucceeded || d.Currency != "usd" || d.RefundUUID == "" {
					t.Fatalf("%s: %+v, %v", st.name, d, err)
				}
			}
			// Three refunds recorded: -3, -3, -4.
			page, err := r.fhir.Search(ctx, r.p, mustQuery(t, "PaymentReconciliation", "outcome=complete&_count=50"))
			if err != nil {
				t.Fatal(err)
			}
			var neg []string
			for _, m := range page.Matches {
				if s := string(m.Content); strings.Contains(s, `"value":-`) {
					neg = append(neg, s[strings.Index(s, `"value":-`):][:10])
					if !strings.Contains(s, `"code":"adjustment"`) || !strings.Contains(s, `re_local_`) {
						t.Errorf("refund record: %s", s)
					}
				}
			}
			if len(neg) != 3 || len(page.Matches) != 4 {
				t.Fatalf("%d records, refunds %v; want the charge and three refunds", len(page.Matches), neg)
			}
			// Another project cannot see (or refund) this Encounter.
			other := auth.Principal{ProjectID: "p2", Kind: auth.KindM2M, ID: "m2m"}
			if _, err := r.svc.Refund(ctx, other, RefundParams{EncounterID: enc, Amount: amt(1)}); !errors.Is(err, fault.ErrNotFound) {
				t.Fatalf("another project: %v", err)
			}
			// A charge that has not succeeded is not refunded.
			pat2, enc2 := r.visit(t, [3]any{5, "USD", "billable"})
			now := time.Now()
			if _, _, err := r.st.ClaimCharge(ctx, store.Charge{ProjectID: "p1", Key: "proc", EncounterID: enc2, Provider: "local", Status: StatusProcessing,
				Amount: 500, Currency: "usd", ReconciliationID: "x", CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.Refund(ctx, r.p, RefundParams{EncounterID: enc2}); !errors.Is(err, fault.ErrConflict) {
				t.Fatalf("refund of a processing charge: %v", err)
			}
			// Charged on local, the project now on stripe: refused, not
			// sent to the wrong network.
			r.chosen["payment"] = "stripe"
			r.secrets[SecretStripeKey] = "sk_test_x"
			if _, err := r.svc.Refund(ctx, r.p, RefundParams{EncounterID: enc, Amount: amt(1), Key: "k"}); !errors.Is(err, fault.ErrConflict) {
				t.Fatalf("provider switched: %v", err)
			}
			_ = pat2
		})
	}
}

// TestRefundWebhook: a signed refund.* event settles a refund Ward made
// (and its record); unknown refunds are ignored; a late pending does not
// unsettle it.
func TestRefundWebhook(t *testing.T) {
	r := newRig(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN})
	ctx := context.Background()
	r.secrets[SecretWebhookSecret] = "whsec_x"
	rec := r.create(t, "PaymentReconciliation", map[string]any{"status": "active", "created": "2026-01-01T00:00:00Z",
		"paymentDate": "2026-01-01", "paymentAmount": map[string]any{"value": -1, "currency": "USD"}, "outcome": "queued"})
	now := time.Now()
	if _, _, err := r.st.ClaimCharge(ctx, store.Charge{ProjectID: "p1", Key: "c", EncounterID: "e", Provider: "stripe", Status: StatusSucceeded,
		Amount: 100, Currency: "usd", IntentID: "pi_1", ReconciliationID: "r0", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.st.ClaimRefund(ctx, store.Refund{ProjectID: "p1", Key: "f", ChargeKey: "c", EncounterID: "e", Provider: "stripe",
		Status: StatusProcessing, Amount: 100, RefundID: "re_1", ReconciliationID: rec, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	send := func(typ, id, status string) {
		t.Helper()
		b := fmt.Appendf(nil, `{"id":"evt","object":"event","type":%q,"data":{"object":{"id":%q,"object":"refund","status":%q,"failure_reason":"lost_or_stolen_card"}}}`, typ, id, status)
		sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: b, Secret: "whsec_x", Timestamp: time.Now()}).Header
		if err := r.svc.Webhook(ctx, "p1", sig, b); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	check := func(status, outcome string) {
		t.Helper()
		f, _ := r.st.GetRefund(ctx, "p1", "f")
		res, _ := r.fhir.Read(ctx, r.p, "PaymentReconciliation", rec)
		if f.Status != status || !strings.Contains(string(res.Content), `"outcome":"`+outcome+`"`) {
			t.Fatalf("refund %s, record %s; want %s %s", f.Status, res.Content, status, outcome)
		}
	}
	send("refund.updated", "re_other", "failed") // not Ward's
	check(StatusProcessing, "queued")
	send("refund.updated", "re_1", "succeeded")
	check(StatusSucceeded, "complete")
	send("refund.updated", "re_1", "pending") // late
	check(StatusSucceeded, "complete")
	send("refund.failed", "re_1", "failed")
	check(StatusFailed, "error")
}
