package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/policy/policytest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

type rig struct {
	st      *store.Store
	fhir    *fhir.Service
	svc     *Service
	p       auth.Principal
	secrets map[string]string
	chosen  map[string]string
}

func newRig(t testing.TB, b storetest.Backend) *rig {
	t.Helper()
	st := storetest.Open(t, b)
	r := &rig{st: st, fhir: fhir.New(st, policytest.AllowAll{}, fhir.Config{}, time.Now),
		p:       auth.Principal{ProjectID: "p1", Kind: auth.KindM2M, ID: "m2m"},
		secrets: map[string]string{}, chosen: map[string]string{}}
	var mu sync.Mutex
	r.svc = New(Config{}, Deps{FHIR: r.fhir, Store: st,
		Providers: func(context.Context, string) (map[string]string, error) { return r.chosen, nil },
		Secret: func(_ context.Context, _, name string) (string, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			v, ok := r.secrets[name]
			return v, ok, nil
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now})
	return r
}

func (r *rig) create(t testing.TB, typ string, m map[string]any) string {
	t.Helper()
	m["resourceType"] = typ
	b, _ := json.Marshal(m)
	res, _, err := r.fhir.Create(context.Background(), r.p, typ, b, "")
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// visit makes a patient with a local card and an encounter with the given
// ChargeItems (priceOverride value, currency, status).
func (r *rig) visit(t testing.TB, items ...[3]any) (patient, encounter string) {
	t.Helper()
	patient = r.create(t, "Patient", map[string]any{})
	encounter = r.create(t, "Encounter", map[string]any{"status": "finished",
		"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
		"subject": map[string]any{"reference": "Patient/" + patient}})
	for _, it := range items {
		ci := map[string]any{"status": it[2], "code": map[string]any{"text": "x"},
			"subject": map[string]any{"reference": "Patient/" + patient},
			"context": map[string]any{"reference": "Encounter/" + encounter}}
		if it[0] != nil {
			ci["priceOverride"] = map[string]any{"value": it[0], "currency": it[1]}
		}
		r.create(t, "ChargeItem", ci)
	}
	return patient, encounter
}

// payableVisit is a visit whose patient has a payment method set up.
func (r *rig) payableVisit(t testing.TB, items ...[3]any) (patient, encounter string) {
	t.Helper()
	patient, encounter = r.visit(t, items...)
	if _, err := r.svc.Setup(context.Background(), r.p, Payor{Beneficiary: patient}); err != nil {
		t.Fatal(err)
	}
	return patient, encounter
}

// checkTotal fails t unless err is an Invalid naming wantErr, or (wantErr
// empty) got is amount in currency.
func checkTotal(t *testing.T, got Total, err error, wantErr string, amount int64, currency string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("err = %v, want Invalid %q", err, wantErr)
		}
		return
	}
	if err != nil || got.Amount != amount || got.Currency != currency {
		t.Fatalf("total = %+v, %v; want %d %s", got, err, amount, currency)
	}
}

func TestTotal(t *testing.T) {
	r := newRig(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN})
	for _, tc := range []struct {
		name     string
		items    [][3]any
		amount   int64
		currency string
		err      string
	}{
		{"sum of billable", [][3]any{{12.5, "USD", "billable"}, {7.25, "usd", "planned"}, {99, "USD", "not-billable"}, {5, "USD", "billed"}}, 1975, "usd", ""},
		{"rounding to cents", [][3]any{{0.1, "USD", "billable"}, {0.2, "USD", "billable"}}, 30, "usd", ""},
		{"zero-decimal currency", [][3]any{{1500, "JPY", "billable"}}, 1500, "jpy", ""},
		{"mixed currencies", [][3]any{{1, "USD", "billable"}, {1, "EUR", "billable"}}, 0, "", "one charge has one currency"},
		{"no price", [][3]any{{nil, nil, "billable"}}, 0, "", "no priceOverride"},
		{"nothing billable", [][3]any{{3, "USD", "aborted"}}, 0, "", "nothing to charge"},
		{"none", nil, 0, "", "nothing to charge"},
		{"negative", [][3]any{{-5, "USD", "billable"}}, 0, "", "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, enc := r.visit(t, tc.items...)
			got, err := r.svc.total(context.Background(), r.p, enc)
			checkTotal(t, got, err, tc.err, tc.amount, tc.currency)
		})
	}
}

// TestIssueOnce: concurrent identical charges make one charge and one
// PaymentReconciliation on every backend; all callers get the same answer.
func TestIssueOnce(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r := newRig(t, b)
			ctx := context.Background()
			_, enc := r.payableVisit(t, [3]any{10, "USD", "billable"})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Go(func() { errs <- r.svc.Issue(ctx, r.p, enc) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			page, err := r.fhir.Search(ctx, r.p, mustQuery(t, "PaymentReconciliation", "outcome=complete"))
			if err != nil || len(page.Matches) != 1 {
				t.Fatalf("%d PaymentReconciliations, %v; want 1", len(page.Matches), err)
			}
			d, err := r.svc.Status(ctx, r.p, enc)
			if err != nil || d.ChargeUUID != page.Matches[0].ID || d.Amount != 10 || d.Status != StatusSucceeded {
				t.Fatalf("status = %+v, %v", d, err)
			}
		})
	}
}

// TestIssueTakeOver: a charge claimed by a request that died before the
// provider answered is taken over by a retry once it is stale, with the
// same key; before that a retry says it is in progress.
func TestIssueTakeOver(t *testing.T) {
	r := newRig(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN})
	r.svc.cfg.Wait, r.svc.cfg.Stale = 10*time.Millisecond, time.Hour
	ctx := context.Background()
	pat, enc := r.visit(t, [3]any{4, "USD", "billable"})
	if _, err := r.svc.Setup(ctx, r.p, Payor{Beneficiary: pat}); err != nil {
		t.Fatal(err)
	}
	// What Issue would claim, claimed by "a request that died".
	name, prov, cust, err := r.svc.customer(ctx, r.p, Payor{Beneficiary: pat}, false)
	if err != nil {
		t.Fatal(err)
	}
	cards, def, _ := prov.Methods(ctx, cust)
	key := idemKey("charge", r.p.ProjectID, enc, "400", "usd", name, cust, def)
	old := time.Now().Add(-2 * time.Hour)
	if _, _, err := r.st.ClaimCharge(ctx, store.Charge{ProjectID: "p1", Key: key, EncounterID: enc, Provider: name,
		Status: store.ChargePending, Amount: 400, Currency: "usd", CreatedAt: old, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Issue(ctx, r.p, enc); !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("retry of a fresh pending charge: %v, want Conflict", err)
	}
	// Two hours on, the claim is stale.
	r.svc.d.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := r.svc.Issue(ctx, r.p, enc); err != nil {
		t.Fatalf("take-over: %v", err)
	}
	c, err := r.st.GetCharge(ctx, "p1", key)
	if err != nil || c.Status != StatusSucceeded || c.ReconciliationID == "" || len(cards) != 1 {
		t.Fatalf("after take-over: %+v, %v", c, err)
	}
}

func mustQuery(t testing.TB, typ, q string) *searchQuery {
	t.Helper()
	sq, err := parseQuery(typ, q)
	if err != nil {
		t.Fatal(err)
	}
	return sq
}

// TestWebhook: only a correctly signed, fresh event of the project's
// secret is applied; payment_intent events settle the charge and its
// PaymentReconciliation; a late "processing" does not unsettle it; events
// about other things or unknown PaymentIntents are accepted and ignored.
func TestWebhook(t *testing.T) {
	r := newRig(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN})
	ctx := context.Background()
	rec := r.create(t, "PaymentReconciliation", map[string]any{"status": "active", "created": "2026-01-01T00:00:00Z",
		"paymentDate": "2026-01-01", "paymentAmount": map[string]any{"value": 1, "currency": "USD"}, "outcome": "queued"})
	now := time.Now()
	if _, _, err := r.st.ClaimCharge(ctx, store.Charge{ProjectID: "p1", Key: "k", EncounterID: "e", Provider: "stripe", Status: StatusProcessing,
		Amount: 100, Currency: "usd", IntentID: "pi_1", ReconciliationID: rec, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	event := func(typ, pi string) []byte {
		return fmt.Appendf(nil, `{"id":"evt","object":"event","type":%q,"data":{"object":{"id":%q,"object":"payment_intent","last_payment_error":{"message":"declined"}}}}`, typ, pi)
	}
	signed := func(secret string, payload []byte, at time.Time) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
	}
	body := event("payment_intent.succeeded", "pi_1")
	if err := r.svc.Webhook(ctx, "p1", signed("whsec_x", body, now), body); !errors.Is(err, fault.ErrForbidden) {
		t.Fatalf("no secret set: %v", err)
	}
	r.secrets[SecretWebhookSecret] = "whsec_x"
	for name, sig := range map[string]string{
		"wrong secret": signed("whsec_y", body, now),
		"stale":        signed("whsec_x", body, now.Add(-time.Hour)),
		"other bytes":  signed("whsec_x", event("payment_intent.canceled", "pi_1"), now),
		"none":         "",
		"garbage":      "t=1,v1=zz",
	} {
		if err := r.svc.Webhook(ctx, "p1", sig, body); !errors.Is(err, fault.ErrForbidden) {
			t.Fatalf("%s: %v, want Forbidden", name, err)
		}
	}
	outcome := func() (string, string) {
		c, _ := r.st.GetCharge(ctx, "p1", "k")
		res, _ := r.fhir.Read(ctx, r.p, "PaymentReconciliation", rec)
		var m map[string]any
		_ = json.Unmarshal(res.Content, &m)
		o, _ := m["outcome"].(string)
		return c.Status, o
	}
	if s, o := outcome(); s != StatusProcessing || o != "queued" {
		t.Fatalf("after refused events: %s %s", s, o)
	}
	for _, step := range []struct{ typ, pi, status, outcome string }{
		{"payment_intent.succeeded", "pi_1", StatusSucceeded, "complete"},
		{"payment_intent.processing", "pi_1", StatusSucceeded, "complete"}, // late: ignored
		{"payment_intent.succeeded", "pi_unknown", StatusSucceeded, "complete"},
		{"customer.created", "pi_1", StatusSucceeded, "complete"},
		{"payment_intent.payment_failed", "pi_1", StatusFailed, "error"},
	} {
		b := event(step.typ, step.pi)
		if err := r.svc.Webhook(ctx, "p1", signed("whsec_x", b, time.Now()), b); err != nil {
			t.Fatalf("%s: %v", step.typ, err)
		}
		if s, o := outcome(); s != step.status || o != step.outcome {
			t.Fatalf("after %s %s: %s %s, want %s %s", step.typ, step.pi, s, o, step.status, step.outcome)
		}
	}
	// Another project's secret does not sign for this one.
	b := event("payment_intent.succeeded", "pi_1")
	if err := r.svc.Webhook(ctx, "p2", signed("whsec_x", b, time.Now()), b); err != nil {
		t.Fatalf("p2 (same secret in this rig; no charge there): %v", err)
	}
	if s, _ := outcome(); s != StatusFailed {
		t.Fatalf("p2's event changed p1's charge: %s", s)
	}
	if err := r.svc.Webhook(ctx, "p1", signed("whsec_x", []byte("[]"), time.Now()), []byte("[]")); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("not an event: %v", err)
	}
}

// FuzzParseIntentEvent: any verified body parses or is refused, never
// panics; a parsed event that settles something names a PaymentIntent and
// one of the charge statuses.
func FuzzParseIntentEvent(f *testing.F) {
	f.Add([]byte(`{"object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent"}}}`))
	f.Add([]byte(`{"object":"event","type":"payment_intent.payment_failed","data":{"object":{"id":"pi_1","object":"payment_intent","last_payment_error":{"message":"no"}}}}`))
	f.Add([]byte(`{"object":"event","type":"charge.refunded","data":{"object":{"id":"ch_1","object":"charge"}}}`))
	f.Add([]byte(`{"object":"event","data":null}`))
	f.Add([]byte(`{"object":"event","type":"refund.updated","data":{"object":{"id":"re_1","object":"refund","status":"succeeded"}}}`))
	f.Add([]byte(`{"object":"event","type":"refund.failed","data":{"object":{"id":"re_1","object":"refund","status":"failed","failure_reason":"expired_or_canceled_card"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseIntentEvent(b)
		if err != nil {
			return
		}
		switch ev.Status {
		case "":
			if ev.Refund {
				t.Fatalf("a refund event that settles nothing: %q", b)
			}
		case StatusSucceeded, StatusFailed, StatusProcessing:
			if ev.IntentID == "" {
				t.Fatalf("settling event without a PaymentIntent or Refund: %q", b)
			}
		default:
			t.Fatalf("status %q from %q", ev.Status, b)
		}
		if len(ev.Reason) > 103 {
			t.Fatalf("reason not clipped: %d bytes", len(ev.Reason))
		}
	})
}
