package tokens

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// clock is a settable clock shared by the key ring, the issuer and the
// verifier, so grace periods and reload intervals pass when a test says.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// never is a revocation checker that revokes nothing.
type never struct{}

func (never) IsRevoked(context.Context, string) (bool, error) { return false, nil }

// fixture is one store with its master key, as a server and `ward admin`
// share them.
type fixture struct {
	st     *store.Store
	sealer *seal.Sealer
	clock  *clock
}

func newFixture(t *testing.T, b storetest.Backend) fixture {
	st := storetest.Open(t, b)
	return fixture{st: st, sealer: sealtest.Setup(t, st), clock: &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}}
}

// issue signs a long-lived token with the ring's current key, so only the
// key's retirement can make it fail.
func (f fixture) issue(t *testing.T, k *Keys) string {
	t.Helper()
	iss := auth.NewIssuer(k.Ring, "https://ward.test", "https://ward.test", f.clock.now)
	tok, _, err := iss.Issue(t.Context(), auth.Principal{ProjectID: "p1", Kind: auth.KindM2M, ID: "c1"}, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f fixture) verify(k *Keys, tok string) error {
	v := auth.NewVerifier(k.Ring, "https://ward.test", []string{"https://ward.test"}, never{}, f.clock.now)
	_, err := v.Verify(context.Background(), tok)
	return err
}

// TestKeyRotation: the first start makes a key, sealed at rest; a rotation
// by another process (ward admin rotate-keys) is picked up by Refresh no
// sooner than its interval; the retired key verifies its tokens for Grace,
// and then drops out of the ring.
func TestKeyRotation(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t, b)
			k, err := LoadKeys(ctx, f.st, f.sealer, f.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := f.st.ListSigningKeys(ctx, time.Time{})
			if err != nil || len(stored) != 1 {
				t.Fatalf("after the first start: %d keys, %v; want 1", len(stored), err)
			}
			if stored[0].Sealed == nil || bytes.Contains(stored[0].Sealed, []byte("PRIVATE KEY")) {
				t.Fatal("the signing key is stored in plaintext")
			}
			first := k.Ring().SigningKeyID(f.clock.now())
			if first != stored[0].KID {
				t.Fatalf("signing with %s, stored %s", first, stored[0].KID)
			}
			old := f.issue(t, k)

			// A second start finds the key and makes none.
			if _, err := LoadKeys(ctx, f.st, f.sealer, f.clock.now); err != nil {
				t.Fatal(err)
			}
			if stored, _ := f.st.ListSigningKeys(ctx, time.Time{}); len(stored) != 1 {
				t.Fatalf("a second start made a key: %d keys", len(stored))
			}

			f.clock.add(time.Minute)
			second, _, err := Rotate(ctx, f.st, f.sealer, f.clock.now, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Within the interval since the last load, Refresh reads nothing.
			k.Refresh(ctx, 2*time.Minute)
			if got := k.Ring().SigningKeyID(f.clock.now()); got != first {
				t.Fatalf("Refresh within its interval reloaded: signing with %s", got)
			}
			f.clock.add(time.Minute)
			k.Refresh(ctx, 2*time.Minute)
			if got := k.Ring().SigningKeyID(f.clock.now()); got != second {
				t.Fatalf("after the interval, signing with %s, want the rotated key %s", got, second)
			}
			if err := f.verify(k, old); err != nil {
				t.Fatalf("a token of the retired key, within Grace: %v", err)
			}
			if err := f.verify(k, f.issue(t, k)); err != nil {
				t.Fatalf("a token of the new key: %v", err)
			}

			// Grace after its retirement the old key is gone from the ring.
			f.clock.add(Grace - 2*time.Minute) // a minute before the old key's grace ends
			if err := k.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if err := f.verify(k, old); err != nil {
				t.Fatalf("just inside Grace: %v", err)
			}
			f.clock.add(2 * time.Minute)
			if err := k.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if err := f.verify(k, old); !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("a token of a key retired more than Grace ago: %v, want rejected", err)
			}
			if !bytes.Contains(k.Ring().JWKS(), []byte(second)) || bytes.Contains(k.Ring().JWKS(), []byte(first)) {
				t.Fatalf("JWKS after Grace: %s", k.Ring().JWKS())
			}
		})
	}
}

// TestRevocations: a revocation applies at once on the replica that made
// it, and its change (the token id and expiry) is logged in the same
// transaction for the others to Add; revocations are forgotten once the
// token has expired.
func TestRevocations(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t, b)
			a, err := LoadRevocations(ctx, f.st, f.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := LoadRevocations(ctx, f.st, f.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			revoked := func(r *Revocations, jti string) bool {
				t.Helper()
				ok, err := r.IsRevoked(ctx, jti)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			before, err := f.st.ChangeVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			exp := f.clock.now().Add(time.Hour)
			if err := a.Revoke(ctx, "jti-1", exp); err != nil {
				t.Fatal(err)
			}
			if !revoked(a, "jti-1") {
				t.Fatal("not revoked at once on the replica that revoked it")
			}
			if revoked(rb, "jti-1") {
				t.Fatal("revoked on the other replica before it heard")
			}
			changes, err := f.st.ChangesSince(ctx, before, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != 1 || changes[0].Kind != store.ChangeRevocation || changes[0].Subject != "jti-1" ||
				!changes[0].ExpiresAt.Equal(exp.Truncate(time.Millisecond)) || changes[0].Version != before+1 {
				t.Fatalf("logged changes %+v, want the one revocation", changes)
			}
			rb.Add(changes[0].Subject, changes[0].ExpiresAt)
			if !revoked(rb, "jti-1") || revoked(rb, "jti-2") {
				t.Fatal("Add did not revoke exactly the logged id")
			}

			// Once the token has expired there is nothing left to refuse.
			f.clock.add(time.Hour + time.Second)
			if err := a.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if revoked(a, "jti-1") {
				t.Fatal("a revocation is kept after its token expired")
			}
			// A replica starting now does not load it either.
			c, err := LoadRevocations(ctx, f.st, f.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			if revoked(c, "jti-1") {
				t.Fatal("a new replica loaded an expired revocation")
			}
		})
	}
}

// TestFirstKeyOnce: replicas starting at once on an empty database make
// one key between them, and all sign with it.
func TestFirstKeyOnce(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t, b)
			const n = 4
			rings := make([]*Keys, n)
			errs := make(chan error, n)
			for i := range n {
				go func() {
					var err error
					rings[i], err = LoadKeys(ctx, f.st, f.sealer, f.clock.now)
					errs <- err
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			stored, err := f.st.ListSigningKeys(ctx, time.Time{})
			if err != nil || len(stored) != 1 {
				t.Fatalf("%d keys after %d concurrent first starts (%v), want 1", len(stored), n, err)
			}
			for _, k := range rings {
				if got := k.Ring().SigningKeyID(f.clock.now()); got != stored[0].KID {
					t.Fatalf("a replica signs with %s, stored %s", got, stored[0].KID)
				}
			}
		})
	}
}

// TestRotateLead: a rotated-in key is in every reloaded ring's JWKS at
// once but signs only from its activation, and the old key retires then.
func TestRotateLead(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t, b)
			k, err := LoadKeys(ctx, f.st, f.sealer, f.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			first := k.Ring().SigningKeyID(f.clock.now())
			next, activates, err := Rotate(ctx, f.st, f.sealer, f.clock.now, PublishLead)
			if err != nil {
				t.Fatal(err)
			}
			if !activates.Equal(f.clock.now().Add(PublishLead)) {
				t.Fatalf("activates at %v, want now + %v", activates, PublishLead)
			}
			other, err := LoadKeys(ctx, f.st, f.sealer, f.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.Ring().JWKS(), other.Ring().JWKS()) || !bytes.Contains(k.Ring().JWKS(), []byte(next)) {
				t.Fatalf("JWKS after the rotation differ or lack the new key:\n%s\n%s", k.Ring().JWKS(), other.Ring().JWKS())
			}
			f.clock.add(PublishLead - time.Millisecond)
			if got := k.Ring().SigningKeyID(f.clock.now()); got != first {
				t.Fatalf("before the activation signing with %s, want the old key %s", got, first)
			}
			f.clock.add(time.Millisecond)
			if got := other.Ring().SigningKeyID(f.clock.now()); got != next {
				t.Fatalf("at the activation signing with %s, want the new key %s", got, next)
			}
		})
	}
}
