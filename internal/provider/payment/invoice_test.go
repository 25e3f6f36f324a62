package payment

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func TestInvoiceTotal(t *testing.T) {
	pc := func(typ string, v any, cur string) map[string]any {
		return map[string]any{"type": typ, "amount": map[string]any{"value": v, "currency": cur}}
	}
	for _, tc := range []struct {
		name     string
		inv      map[string]any
		amount   int64
		currency string
		err      string
	}{
		{"totalGross wins", map[string]any{"totalGross": map[string]any{"value": 80.5, "currency": "USD"},
			"lineItem": []any{map[string]any{"priceComponent": []any{pc("base", 100, "USD")}}}}, 8050, "usd", ""},
		{"components", map[string]any{"lineItem": []any{
			map[string]any{"priceComponent": []any{pc("base", 100, "USD"), pc("discount", 15, "USD"), pc("informational", 999, "USD")}},
			map[string]any{"priceComponent": []any{pc("surcharge", 5.25, "USD"), pc("deduction", 10, "USD"), pc("tax", 2, "USD")}},
		}}, 8225, "usd", ""},
		{"zero-decimal", map[string]any{"totalGross": map[string]any{"value": 1200, "currency": "JPY"}}, 1200, "jpy", ""},
		{"mixed currencies", map[string]any{"lineItem": []any{map[string]any{"priceComponent": []any{pc("base", 1, "USD"), pc("base", 1, "EUR")}}}}, 0, "", "one charge has one currency"},
		{"negative component", map[string]any{"lineItem": []any{map[string]any{"priceComponent": []any{pc("base", 10, "USD"), pc("discount", -50, "USD")}}}}, 0, "", "must be positive"},
		{"discount over base", map[string]any{"lineItem": []any{map[string]any{"priceComponent": []any{pc("base", 10, "USD"), pc("discount", 50, "USD")}}}}, 0, "", "nothing to charge"},
		{"negative totalGross", map[string]any{"totalGross": map[string]any{"value": -10, "currency": "USD"}}, 0, "", "positive amount"},
		{"zero totalGross", map[string]any{"totalGross": map[string]any{"value": 0, "currency": "USD"}}, 0, "", "positive amount"},
		{"huge totalGross", map[string]any{"totalGross": map[string]any{"value": 1e300, "currency": "USD"}}, 0, "", "positive amount"},
		{"totalGross without currency", map[string]any{"totalGross": map[string]any{"value": 10}}, 0, "", "needs a value and a currency"},
		{"component without amount", map[string]any{"lineItem": []any{map[string]any{"priceComponent": []any{map[string]any{"type": "base"}}}}}, 0, "", "no amount"},
		{"unknown type", map[string]any{"lineItem": []any{map[string]any{"priceComponent": []any{pc("bribe", 1, "USD")}}}}, 0, "", "not an invoice-priceComponentType"},
		{"nothing", map[string]any{}, 0, "", "nothing to charge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(tc.inv)
			var inv invoice
			if err := json.Unmarshal(b, &inv); err != nil {
				t.Fatal(err)
			}
			inv.ID = "i1"
			got, err := invoiceTotal(&inv)
			checkTotal(t, got, err, tc.err, tc.amount, tc.currency)
		})
	}
}

// invoiceFor makes an Invoice (status, totalGross in USD) whose line
// items name the Encounter's ChargeItems.
func (r *rig) invoiceFor(t testing.TB, p auth.Principal, patient, encounter, status string, gross float64) string {
	t.Helper()
	items, err := r.svc.chargeItems(context.Background(), r.p, encounter)
	if err != nil {
		t.Fatal(err)
	}
	var lines []any
	for _, it := range items {
		lines = append(lines, map[string]any{"chargeItemReference": map[string]any{"reference": "ChargeItem/" + it.ID}})
	}
	m := map[string]any{"resourceType": "Invoice", "status": status, "subject": map[string]any{"reference": "Patient/" + patient},
		"totalGross": map[string]any{"value": gross, "currency": "USD"}, "lineItem": lines}
	if status == "cancelled" {
		m["cancelledReason"] = "wrong"
	}
	b, _ := json.Marshal(m)
	res, _, err := r.fhir.Create(context.Background(), p, "Invoice", b, "")
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func (r *rig) status(t testing.TB, typ, id string) string {
	t.Helper()
	res, err := r.fhir.Read(context.Background(), r.p, typ, id)
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Status string }
	_ = json.Unmarshal(res.Content, &m)
	return m.Status
}

// TestIssueInvoice: the Encounter's issued Invoice is what is charged (not
// its ChargeItems), and is balanced once paid; retries answer as the
// first charge; cancelled Invoices and another project's are ignored; a
// draft, two Invoices, or an Invoice balanced elsewhere are refused.
func TestIssueInvoice(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r := newRig(t, b)
			ctx := context.Background()
			other := auth.Principal{ProjectID: "p2", Kind: auth.KindM2M, ID: "m2m"}
			setup := func(pat string) {
				if _, err := r.svc.Setup(ctx, r.p, Payor{Beneficiary: pat}); err != nil {
					t.Fatal(err)
				}
			}
			// ChargeItems 100 USD, Invoice 80 USD (a discount): 80 is charged.
			pat, enc := r.visit(t, [3]any{60, "USD", "billed"}, [3]any{40, "USD", "billable"})
			setup(pat)
			r.invoiceFor(t, r.p, pat, enc, "cancelled", 5) // ignored
			r.invoiceFor(t, other, pat, enc, "issued", 1)  // another project's: ignored
			inv := r.invoiceFor(t, r.p, pat, enc, "issued", 80)
			for range 3 { // retries: one charge
				if err := r.svc.Issue(ctx, r.p, enc); err != nil {
					t.Fatal(err)
				}
			}
			d, err := r.svc.Status(ctx, r.p, enc)
			if err != nil || d.Amount != 80 || d.Status != StatusSucceeded {
				t.Fatalf("status = %+v, %v", d, err)
			}
			rec, _ := r.fhir.Read(ctx, r.p, "PaymentReconciliation", d.ChargeUUID)
			if !strings.Contains(string(rec.Content), `"reference":"Invoice/`+inv+`"`) {
				t.Fatalf("reconciliation does not name the Invoice: %s", rec.Content)
			}
			if s := r.status(t, "Invoice", inv); s != "balanced" {
				t.Fatalf("Invoice %s after the charge, want balanced", s)
			}
			page, err := r.fhir.Search(ctx, r.p, mustQuery(t, "PaymentReconciliation", "outcome=complete"))
			if err != nil || len(page.Matches) != 1 {
				t.Fatalf("%d PaymentReconciliations, %v", len(page.Matches), err)
			}
			c, err := r.st.LatestCharge(ctx, "p1", enc)
			if err != nil || c.InvoiceID != inv {
				t.Fatalf("charge %+v, %v: want invoice %s", c, err, inv)
			}

			// Refused: a draft; two Invoices; an Invoice paid elsewhere.
			pat2, enc2 := r.visit(t, [3]any{10, "USD", "billable"})
			setup(pat2)
			draft := r.invoiceFor(t, r.p, pat2, enc2, "draft", 10)
			if err := r.svc.Issue(ctx, r.p, enc2); !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "draft") {
				t.Fatalf("draft: %v", err)
			}
			r.invoiceFor(t, r.p, pat2, enc2, "issued", 10)
			if err := r.svc.Issue(ctx, r.p, enc2); !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "2 Invoices") {
				t.Fatalf("two invoices: %v", err)
			}
			_ = draft
			pat3, enc3 := r.visit(t, [3]any{10, "USD", "billable"})
			setup(pat3)
			r.invoiceFor(t, r.p, pat3, enc3, "balanced", 10)
			if err := r.svc.Issue(ctx, r.p, enc3); !errors.Is(err, fault.ErrConflict) {
				t.Fatalf("balanced elsewhere: %v", err)
			}
			if _, err := r.st.LatestCharge(ctx, "p1", enc3); err == nil {
				t.Fatal("a balanced Invoice was charged")
			}
			// Only cancelled Invoices: the ChargeItems are charged.
			pat4, enc4 := r.visit(t, [3]any{7, "USD", "billable"})
			setup(pat4)
			r.invoiceFor(t, r.p, pat4, enc4, "entered-in-error", 1)
			if err := r.svc.Issue(ctx, r.p, enc4); err != nil {
				t.Fatal(err)
			}
			if d, _ := r.svc.Status(ctx, r.p, enc4); d.Amount != 7 {
				t.Fatalf("with a cancelled Invoice: %+v, want the ChargeItems' 7", d)
			}
		})
	}
}
