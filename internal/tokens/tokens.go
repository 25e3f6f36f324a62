// Package tokens keeps Ward's signing keys and revoked token ids in the
// database and serves them to the pure auth package: key ring loading and
// rotation, and a revocation list shared by replicas.
package tokens

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// Grace is how long a retired key still verifies tokens: longer than any
// token lives.
const Grace = 25 * time.Hour

// Keys holds the current key ring, loaded from the store, where private
// keys are sealed with the master key.
type Keys struct {
	store *store.Store
	seal  *seal.Sealer
	now   func() time.Time
	ring  atomic.Pointer[auth.KeyRing]
	mu    sync.Mutex // serialises reloads
	last  time.Time  // last reload, to rate-limit reloads on unknown kids
}

// PublishLead is how long a rotated-in key is published before it signs:
// the JWKS lifetime outside verifiers may cache (max-age 300 at
// /.well-known/jwks.json) plus a minute for clock skew between replicas.
const PublishLead = 6 * time.Minute

// LoadKeys reads the signing keys, creating the first one if there is none
// (one between replicas starting at once: see Rotate).
func LoadKeys(ctx context.Context, st *store.Store, sealer *seal.Sealer, now func() time.Time) (*Keys, error) {
	k := &Keys{store: st, seal: sealer, now: now}
	stored, err := st.ListSigningKeys(ctx, now().Add(-Grace))
	if err != nil {
		return nil, err
	}
	if len(stored) == 0 {
		// Nobody can have cached a JWKS yet: the first key signs at once.
		if _, err := rotate(ctx, st, sealer, now, 0, true); err != nil {
			return nil, err
		}
	}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Ring returns the current ring (never nil after LoadKeys).
func (k *Keys) Ring() *auth.KeyRing { return k.ring.Load() }

// Reload rebuilds the ring from the store (after a rotation by another
// process, e.g. `ward admin rotate-keys`). If a key does not open (the
// master key was rotated since this process started), the ring in memory
// stays as it was.
func (k *Keys) Reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	stored, err := k.store.ListSigningKeys(ctx, k.now().Add(-Grace))
	if err != nil {
		return err
	}
	keys := make([]auth.Key, 0, len(stored))
	for _, s := range stored {
		if s.Sealed == nil {
			return fmt.Errorf("signing key %s is stored in plaintext by an older release: restart to seal it", s.KID)
		}
		pem, err := k.seal.Open(seal.SigningKey(s.KID), s.Sealed)
		if err != nil {
			return err
		}
		key, err := auth.ParsePrivateKey(s.KID, s.Alg, pem, s.CreatedAt, s.RetiredAt)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", s.KID, err)
		}
		key.ActivatesAt = s.ActivatesAt
		keys = append(keys, key)
	}
	ring, err := auth.NewKeyRing(keys, Grace)
	if err != nil {
		return err
	}
	k.ring.Store(ring)
	k.last = k.now()
	return nil
}

// Refresh reloads at most once per interval; use it when a token names an
// unknown kid or on a timer. A failed reload keeps the ring in memory; the
// error is for the caller's log.
func (k *Keys) Refresh(ctx context.Context, interval time.Duration) error {
	k.mu.Lock()
	due := k.now().Sub(k.last) >= interval
	k.mu.Unlock()
	if !due {
		return nil
	}
	if err := k.Reload(ctx); err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	return nil
}

// Rotate adds a new signing key, sealed with the master key, published at
// once and signing from lead on (at least PublishLead outside tests); the
// others retire then and keep verifying for Grace after. Every replica
// learns of it before its next request (package replica). It returns the
// new key id and when it starts signing.
func Rotate(ctx context.Context, st *store.Store, sealer *seal.Sealer, now func() time.Time, lead time.Duration) (string, time.Time, error) {
	key, err := rotate(ctx, st, sealer, now, lead, false)
	return key.ID, key.ActivatesAt, err
}

// rotate is Rotate; with onlyFirst it adds a key only if there is none.
func rotate(ctx context.Context, st *store.Store, sealer *seal.Sealer, now func() time.Time, lead time.Duration, onlyFirst bool) (auth.Key, error) {
	key, err := auth.GenerateKey(now())
	if err != nil {
		return auth.Key{}, err
	}
	key.ActivatesAt = key.CreatedAt.Add(lead)
	pem, err := key.MarshalPrivate()
	if err != nil {
		return auth.Key{}, err
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.LockSigningKeys(ctx); err != nil {
			return err
		}
		if onlyFirst {
			stored, err := tx.ListSigningKeys(ctx, now().Add(-Grace))
			if err != nil || len(stored) > 0 {
				return err // another replica made it while this one waited
			}
		}
		if err := seal.Fence(ctx, tx, sealer); err != nil {
			return err
		}
		sealed := sealer.Seal(seal.SigningKey(key.ID), pem)
		if err := tx.InsertSigningKey(ctx, store.SigningKey{KID: key.ID, Alg: key.Alg, Sealed: sealed, CreatedAt: key.CreatedAt, ActivatesAt: key.ActivatesAt}); err != nil {
			return err
		}
		if err := tx.RetireSigningKeys(ctx, key.ID, key.ActivatesAt); err != nil {
			return err
		}
		_, err := tx.RecordChange(ctx, store.Change{Kind: store.ChangeKeys})
		return err
	})
	if err != nil {
		return auth.Key{}, fmt.Errorf("rotate keys: %w", err)
	}
	return key, nil
}

// Revocations is the set of revoked token ids. Local revocations apply at
// once; other replicas' arrive through Add (package replica).
type Revocations struct {
	store *store.Store
	now   func() time.Time
	mu    sync.RWMutex
	ids   map[string]time.Time // jti -> token expiry
	adds  int                  // since the last sweep of expired ids
}

// LoadRevocations reads the unexpired revocations.
func LoadRevocations(ctx context.Context, st *store.Store, now func() time.Time) (*Revocations, error) {
	r := &Revocations{store: st, now: now, ids: map[string]time.Time{}}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// IsRevoked implements auth.RevocationChecker from memory.
func (r *Revocations) IsRevoked(_ context.Context, jti string) (bool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.ids[jti]
	return ok, nil
}

// Revoke records a revocation durably, announced to the other replicas in
// the same transaction, then in memory.
func (r *Revocations) Revoke(ctx context.Context, jti string, expiresAt time.Time) error {
	err := r.store.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.RevokeToken(ctx, jti, expiresAt, r.now()); err != nil {
			return err
		}
		_, err := tx.RecordChange(ctx, store.Change{Kind: store.ChangeRevocation, Subject: jti, ExpiresAt: expiresAt})
		return err
	})
	if err != nil {
		return err
	}
	r.Add(jti, expiresAt)
	return nil
}

// Add records in memory a revocation made elsewhere, and now and then
// forgets those whose tokens have expired.
func (r *Revocations) Add(jti string, expiresAt time.Time) {
	if expiresAt.IsZero() {
		expiresAt = r.now().Add(Grace) // unknown: Grace outlives any token
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids[jti] = expiresAt
	if r.adds++; r.adds >= 1024 {
		r.adds = 0
		now := r.now()
		for id, exp := range r.ids {
			if exp.Before(now) {
				delete(r.ids, id)
			}
		}
	}
}

// Reload reads every unexpired revocation in the store (after this
// replica may have missed some) and forgets the expired ones. Revocations
// are never undone, so those added meanwhile are kept.
func (r *Revocations) Reload(ctx context.Context) error {
	now := r.now()
	ids, err := r.store.RevokedTokens(ctx, now)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, exp := range r.ids {
		if _, ok := ids[id]; !ok && exp.After(now) {
			ids[id] = exp
		}
	}
	r.ids, r.adds = ids, 0
	return nil
}
