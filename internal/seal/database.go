package seal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/wardhealth/ward/internal/store"
)

// CheckName is the server secret that holds the check value: a known
// text sealed with the master key, stored on first start. A key that does
// not open it is not this database's key.
const CheckName = "secrets-key-check"

var checkText = []byte("ward: this is the database's secrets key")

// Holds reports whether the database holds values sealed with some master
// key: then the key must be given (WARD_SECRETS_KEY or the key file),
// never made anew.
func Holds(ctx context.Context, st *store.Store) (bool, error) { return st.HoldsSealed(ctx) }

// Setup runs at every start, before anything reads a sealed value. It
// checks that s opens the database's check value; on a database without
// one (brand-new, or from a release before keys at rest) it first checks
// that s opens the zambda secrets stored there, seals them again in the
// current format, and stores the check value. Then it seals what an older
// release stored in plaintext (signing keys, the Z3 URL key). All of it in
// one transaction, one replica at a time. Errors: ErrWrongKey when s is
// not the key of this database's sealed values.
func Setup(ctx context.Context, st *store.Store, s *Sealer, log *slog.Logger) error {
	var sealed int
	err := st.WithTx(ctx, func(tx *store.Tx) error {
		sealed = 0
		if err := tx.LockSealed(ctx, true); err != nil {
			return err
		}
		check, err := tx.GetServerSecret(ctx, CheckName)
		switch {
		case err == nil:
			if _, err := s.Open(ServerSecret(CheckName), check); err != nil {
				return err
			}
		case errors.Is(err, store.ErrNotFound):
			if err := adopt(ctx, tx, s, log); err != nil {
				return err
			}
			if err := tx.PutServerSecret(ctx, CheckName, s.Seal(ServerSecret(CheckName), checkText)); err != nil {
				return err
			}
		default:
			return err
		}
		plain, err := tx.ValuesAtRest(ctx, true)
		if err != nil {
			return err
		}
		for _, v := range plain {
			v.Sealed = s.Seal(label(v), v.Plain)
			if err := tx.PutSealed(ctx, v); err != nil {
				return err
			}
			sealed++
		}
		return nil
	})
	if errors.Is(err, ErrWrongKey) {
		return err // says which value and which keys
	}
	if err != nil {
		return fmt.Errorf("secrets key setup: %w", err)
	}
	if sealed > 0 {
		log.Info("sealed keys stored in plaintext by an older release with the secrets key", "count", sealed, "key_id", s.KeyID())
	}
	return nil
}

// adopt makes s the key of a database that has no check value yet: the
// zambda secrets there (sealed before keys had ids) must open with it,
// and are sealed again in the current format. If none opens, s is the
// wrong key. Secrets that do not open while others do were sealed by a
// replica that made a key of its own (possible before the check value):
// nobody can read them with this key, so they are left as they are and
// named in a warning.
func adopt(ctx context.Context, tx *store.Tx, s *Sealer, log *slog.Logger) error {
	all, err := tx.ValuesAtRest(ctx, false)
	if err != nil {
		return err
	}
	var opened int
	var failed []string
	var firstErr error
	for _, v := range all {
		if v.Sealed == nil {
			continue
		}
		plain, err := s.Open(label(v), v.Sealed)
		if err != nil {
			failed = append(failed, label(v).String())
			firstErr = firstOf(firstErr, err)
			continue
		}
		opened++
		if !s.IsCurrent(v.Sealed) {
			v.Sealed = s.Seal(label(v), plain)
			if err := tx.PutSealed(ctx, v); err != nil {
				return err
			}
		}
	}
	if len(failed) > 0 && opened == 0 {
		return firstErr
	}
	if len(failed) > 0 {
		log.Warn("values that do not open with the secrets key (sealed with another key by a replica that made its own): set them again",
			"values", strings.Join(failed, "; "), "key_id", s.KeyID())
	}
	return nil
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Fence, in a transaction that seals a new value with s, makes sure s is
// still the database's key (and keeps a rotation from starting until the
// transaction ends): a process started before `ward admin
// rotate-secrets-key` must not write values the others cannot open.
// Errors: ErrWrongKey.
func Fence(ctx context.Context, tx *store.Tx, s *Sealer) error {
	if err := tx.LockSealed(ctx, false); err != nil {
		return err
	}
	check, err := tx.GetServerSecret(ctx, CheckName)
	if err != nil {
		return fmt.Errorf("secrets key check value: %w", err)
	}
	if _, err := s.Open(ServerSecret(CheckName), check); err != nil {
		return fmt.Errorf("the secrets key was rotated since this server started (restart it with the new WARD_SECRETS_KEY): %w", err)
	}
	return nil
}

// Rotated counts what Rotate sealed again, by kind.
type Rotated map[store.SealedKind]int

// Rotate seals every value the master key protects (and the check value)
// again with next, in one transaction: afterwards only next opens them.
// It refuses, changing nothing, when a value does not open with current,
// naming the values (set or delete them first).
func Rotate(ctx context.Context, st *store.Store, current, next *Sealer) (Rotated, error) {
	var done Rotated
	err := st.WithTx(ctx, func(tx *store.Tx) error {
		done = Rotated{}
		if err := tx.LockSealed(ctx, true); err != nil {
			return err
		}
		check, err := tx.GetServerSecret(ctx, CheckName)
		if err != nil {
			return fmt.Errorf("the check value (start the server once first): %w", err)
		}
		if _, err := current.Open(ServerSecret(CheckName), check); err != nil {
			return fmt.Errorf("the current key is not this database's: %w", err)
		}
		all, err := tx.ValuesAtRest(ctx, false)
		if err != nil {
			return err
		}
		var failed []string
		var firstErr error
		for _, v := range all {
			var plain []byte
			if v.Sealed == nil {
				plain = v.Plain
			} else if plain, err = current.Open(label(v), v.Sealed); err != nil {
				failed = append(failed, label(v).String())
				firstErr = firstOf(firstErr, err)
				continue
			}
			v.Sealed = next.Seal(label(v), plain)
			if err := tx.PutSealed(ctx, v); err != nil {
				return err
			}
			done[v.Kind]++
		}
		if len(failed) > 0 {
			return fmt.Errorf("%d value(s) do not open with the current secrets key, so nothing was changed (set or delete them, then run again): %s: %w",
				len(failed), strings.Join(failed, "; "), firstErr)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rotate secrets key: %w", err)
	}
	return done, nil
}

// label is the label of a stored value.
func label(v store.AtRest) Label {
	switch v.Kind {
	case store.SealedSigningKey:
		return SigningKey(v.Name)
	case store.SealedZambdaSecret:
		return Secret(v.ProjectID, v.Name)
	case store.SealedMFASecret:
		return MFASecret(v.ProjectID, v.Name)
	}
	return ServerSecret(v.Name)
}
