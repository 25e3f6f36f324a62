package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// rotateSecretsKey is `ward admin rotate-secrets-key`: every value sealed
// with the current master key (WARD_SECRETS_KEY or the key file) is sealed
// again with the new one (newKey, base64, or a fresh key when the key file
// is in use) in one transaction. The key file, when in use, gets the new
// key before the transaction (the previous one stays in secrets.key.old)
// and its old content back if the transaction fails: a crash in between
// leaves a key file the database refuses, never a database no file opens.
func rotateSecretsKey(ctx context.Context, c config, newKey string, out io.Writer, log *slog.Logger) error {
	st, err := store.OpenWith(ctx, c.dsn(), log, store.Options{MaxConns: c.DatabaseMaxConns})
	if err != nil {
		return err
	}
	defer st.Close()
	key, from, file, err := configuredKey(c)
	if err != nil {
		return err
	}
	if key == nil {
		return fmt.Errorf("no secrets key to rotate from: set WARD_SECRETS_KEY to the current key (%s does not exist)", secretsKeyFile(c))
	}
	current, err := seal.New(key)
	if err != nil {
		return err
	}
	// Seals what older releases left in plaintext and checks the key.
	if err := seal.Setup(ctx, st, current, log); err != nil {
		return mismatch(err, from, file, current)
	}
	var next []byte
	switch {
	case newKey != "":
		if next, err = decodeKey(newKey, "WARD_NEW_SECRETS_KEY"); err != nil {
			return err
		}
	case file == "":
		return errors.New("WARD_SECRETS_KEY is set, so the new key must come from you: set WARD_NEW_SECRETS_KEY to it (e.g. from `openssl rand -base64 32`)")
	default:
		next = seal.NewKey()
	}
	if bytes.Equal(next, key) {
		return errors.New("WARD_NEW_SECRETS_KEY is the current key")
	}
	sealer, err := seal.New(next)
	if err != nil {
		return err
	}
	if file != "" {
		if err := replaceKeyFile(file, next); err != nil {
			return err
		}
	}
	rotated, err := seal.Rotate(ctx, st, current, sealer)
	if err != nil {
		if file != "" {
			if rerr := writeFileAtomic(file, []byte(encodeKey(key))); rerr != nil {
				return fmt.Errorf("%w; and putting the current key back in %s failed (it is in %s.old): %w", err, file, file, rerr)
			}
		}
		return err
	}
	fmt.Fprintf(out, "Sealed again with the new secrets key %s (was %s): %d signing keys, %d server secrets (Z3 URL key, key check value), %d zambda secrets.\n",
		sealer.KeyID(), current.KeyID(), rotated[store.SealedSigningKey], rotated[store.SealedServerSecret], rotated[store.SealedZambdaSecret])
	if file != "" {
		fmt.Fprintf(out, "The new key is in %s; the previous one in %s.old (delete it once every server runs with the new key).\n", file, file)
		fmt.Fprintf(out, "Next: restart the servers that use this key file. A server given WARD_SECRETS_KEY needs the new key (the content of %s).\n", file)
	} else {
		fmt.Fprintln(out, "Next: set WARD_SECRETS_KEY to the new key (the value of WARD_NEW_SECRETS_KEY) on every server and restart them all.")
	}
	fmt.Fprintln(out, "Until restarted, a running server keeps the signing keys and Z3 URL key it loaded (tokens and presigned URLs keep working), "+
		"but cannot read any zambda secret (all are sealed with the new key now) nor signing keys added since, and refuses to store new ones; "+
		"with the old key a server no longer starts.")
	return nil
}
