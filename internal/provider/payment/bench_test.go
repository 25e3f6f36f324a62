package payment

import (
	"context"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// BenchmarkChargeIssue compares charge.issue (local provider: Ward's own
// work, no network: read the Encounter, search its ChargeItems, read the
// payor's Patient and Account, claim the key, create the
// PaymentReconciliation, record the outcome) with its peer, one plain FHIR
// create of the same PaymentReconciliation, on SQLite in the same run.
// Encounters are made before the timer.
//
//	go test -run XXX -bench ChargeIssue -benchtime 300x ./internal/provider/payment/
func BenchmarkChargeIssue(b *testing.B) {
	ctx := context.Background()
	b.Run("fhir-create", func(b *testing.B) {
		r := newRig(b, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN})
		body := []byte(`{"resourceType":"PaymentReconciliation","status":"active","created":"2026-01-01T00:00:00Z","paymentDate":"2026-01-01","paymentAmount":{"value":10,"currency":"USD"},"outcome":"complete"}`)
		// Warm as the other is (its set-up writes first): caches, the
		// writer, the page cache.
		for range 100 {
			if _, _, err := r.fhir.Create(ctx, r.p, "PaymentReconciliation", body, ""); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for b.Loop() {
			if _, _, err := r.fhir.Create(ctx, r.p, "PaymentReconciliation", body, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("charge-issue", func(b *testing.B) {
		r := newRig(b, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN})
		pat, _ := r.visit(b)
		if _, err := r.svc.Setup(ctx, r.p, Payor{Beneficiary: pat}); err != nil {
			b.Fatal(err)
		}
		encs := make([]string, b.N)
		for i := range encs {
			encs[i] = r.create(b, "Encounter", map[string]any{"status": "finished",
				"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
				"subject": map[string]any{"reference": "Patient/" + pat}})
			r.create(b, "ChargeItem", map[string]any{"status": "billable", "code": map[string]any{"text": "x"},
				"subject": map[string]any{"reference": "Patient/" + pat}, "context": map[string]any{"reference": "Encounter/" + encs[i]},
				"priceOverride": map[string]any{"value": 10, "currency": "USD"}})
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := r.svc.Issue(ctx, r.p, encs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
