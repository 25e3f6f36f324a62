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

// LoadKeys reads the signing keys, creating the first one if there is none.
func LoadKeys(ctx context.Context, st *store.Store, sealer *seal.Sealer, now func() time.Time) (*Keys, error) {
	k := &Keys{store: st, seal: sealer, now: now}
	stored, err := st.ListSigningKeys(ctx, now().Add(-Grace))
	if err != nil {
		return nil, err
	}
	if len(stored) == 0 {
		if _, err := Rotate(ctx, st, sealer, now); err != nil {
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

// Rotate adds a new signing key, sealed with the master key, and retires
// the others (they keep verifying for Grace). It returns the new key id.
func Rotate(ctx context.Context, st *store.Store, sealer *seal.Sealer, now func() time.Time) (string, error) {
	key, err := auth.GenerateKey(now())
	if err != nil {
		return "", err
	}
	pem, err := key.MarshalPrivate()
	if err != nil {
		return "", err
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		if err := seal.Fence(ctx, tx, sealer); err != nil {
			return err
		}
		sealed := sealer.Seal(seal.SigningKey(key.ID), pem)
		if err := tx.InsertSigningKey(ctx, store.SigningKey{KID: key.ID, Alg: key.Alg, Sealed: sealed, CreatedAt: now()}); err != nil {
			return err
		}
		return tx.RetireSigningKeys(ctx, key.ID, now())
	})
	if err != nil {
		return "", fmt.Errorf("rotate keys: %w", err)
	}
	return key.ID, nil
}

// Revocations is the set of revoked token ids. Local revocations apply at
// once; other replicas' are picked up by Sync.
type Revocations struct {
	store  *store.Store
	now    func() time.Time
	mu     sync.RWMutex
	ids    map[string]time.Time // jti -> token expiry
	synced time.Time
}

// LoadRevocations reads the unexpired revocations.
func LoadRevocations(ctx context.Context, st *store.Store, now func() time.Time) (*Revocations, error) {
	r := &Revocations{store: st, now: now, ids: map[string]time.Time{}}
	if err := r.Sync(ctx); err != nil {
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

// Revoke records a revocation durably, then in memory.
func (r *Revocations) Revoke(ctx context.Context, jti string, expiresAt time.Time) error {
	if err := r.store.RevokeToken(ctx, jti, expiresAt, r.now()); err != nil {
		return err
	}
	r.mu.Lock()
	r.ids[jti] = expiresAt
	r.mu.Unlock()
	return nil
}

// Sync loads revocations made since the last sync (by any replica) and
// drops expired ones.
func (r *Revocations) Sync(ctx context.Context) error {
	now := r.now()
	r.mu.RLock()
	since := r.synced.Add(-5 * time.Second) // overlap: clocks and commit order differ across replicas
	r.mu.RUnlock()
	ids, err := r.store.RevokedSince(ctx, since, now)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if _, ok := r.ids[id]; !ok {
			r.ids[id] = now.Add(Grace) // exact expiry unknown here; Grace outlives any token
		}
	}
	for id, exp := range r.ids {
		if exp.Before(now) {
			delete(r.ids, id)
		}
	}
	r.synced = now
	return nil
}
