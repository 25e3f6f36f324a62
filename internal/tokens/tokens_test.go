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
			first := k.Ring().SigningKeyID()
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
			second, err := Rotate(ctx, f.st, f.sealer, f.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			// Within the interval since the last load, Refresh reads nothing.
			k.Refresh(ctx, 2*time.Minute)
			if got := k.Ring().SigningKeyID(); got != first {
				t.Fatalf("Refresh within its interval reloaded: signing with %s", got)
			}
			f.clock.add(time.Minute)
			k.Refresh(ctx, 2*time.Minute)
			if got := k.Ring().SigningKeyID(); got != second {
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
// it and on another after its next Sync, even one made with a clock a few
// seconds behind; revocations are forgotten once the token has expired.
func TestRevocations(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			f := newFixture(t, b)
			a, err := LoadRevocations(ctx, f.st, f.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			// Replica b's clock runs 3 s ahead of a's.
			bClock := &clock{t: f.clock.now().Add(3 * time.Second)}
			rb, err := LoadRevocations(ctx, f.st, bClock.now)
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

			exp := f.clock.now().Add(time.Hour)
			if err := a.Revoke(ctx, "jti-1", exp); err != nil {
				t.Fatal(err)
			}
			if !revoked(a, "jti-1") {
				t.Fatal("not revoked at once on the replica that revoked it")
			}
			if revoked(rb, "jti-1") {
				t.Fatal("revoked on the other replica before it synced")
			}
			bClock.add(time.Second)
			if err := rb.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if !revoked(rb, "jti-1") {
				t.Fatal("the other replica's Sync missed a revocation made by a clock 3 s behind")
			}
			if revoked(rb, "jti-2") {
				t.Fatal("an id never revoked is revoked")
			}

			// Once the token has expired there is nothing left to refuse.
			f.clock.add(time.Hour + time.Second)
			if err := a.Sync(ctx); err != nil {
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
