package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// secretsKeyFile is the key file in the data directory.
func secretsKeyFile(c config) string { return filepath.Join(c.DataDir, "secrets.key") }

// configuredKey returns the master key from WARD_SECRETS_KEY (base64),
// else from the key file, with where it came from; nil when neither is
// there. file is the key file's path when the key came from it.
func configuredKey(c config) (key []byte, from, file string, err error) {
	if c.SecretsKey != "" {
		key, err := decodeKey(c.SecretsKey, "WARD_SECRETS_KEY")
		return key, "WARD_SECRETS_KEY", "", err
	}
	path := secretsKeyFile(c)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", "", nil
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("secrets key: %w", err)
	}
	key, err = decodeKey(string(b), path)
	return key, path, path, err
}

// openSealer returns the master key's sealer, checked against the
// database (seal.Setup). Without a configured key it makes the key file
// (mode 0600), but only for a database that holds nothing sealed yet: a
// replica must never seal with a key of its own what the others cannot
// open. Replicas on one PostgreSQL share WARD_SECRETS_KEY.
func openSealer(ctx context.Context, c config, st *store.Store, log *slog.Logger) (*seal.Sealer, error) {
	key, from, file, err := configuredKey(c)
	if err != nil {
		return nil, err
	}
	if key == nil {
		held, err := seal.Holds(ctx, st)
		if err != nil {
			return nil, err
		}
		if held {
			return nil, fmt.Errorf("this database holds keys and secrets sealed with a secrets key, but none is configured "+
				"(WARD_SECRETS_KEY is unset and %s does not exist): set WARD_SECRETS_KEY to the key the other replicas use "+
				"(or restore the key file); Ward makes a new key only for a new database", secretsKeyFile(c))
		}
		if key, err = makeKeyFile(secretsKeyFile(c)); err != nil {
			return nil, err
		}
		from, file = secretsKeyFile(c), secretsKeyFile(c)
	}
	s, err := seal.New(key)
	if err != nil {
		return nil, err
	}
	if err := seal.Setup(ctx, st, s, log); err != nil {
		return nil, mismatch(err, from, file, s)
	}
	return s, nil
}

// mismatch turns a wrong key into what the operator should do.
func mismatch(err error, from, file string, s *seal.Sealer) error {
	if !errors.Is(err, seal.ErrWrongKey) {
		return err
	}
	hint := ""
	if file != "" {
		if _, statErr := os.Stat(file + ".old"); statErr == nil {
			hint = fmt.Sprintf("; if `ward admin rotate-secrets-key` was interrupted, the previous key is in %s.old", file)
		}
	}
	return fmt.Errorf("the secrets key does not match this database: set WARD_SECRETS_KEY to the key the other replicas use "+
		"(the key from %s has id %s%s): %w", from, s.KeyID(), hint, err)
}

// makeKeyFile writes a new random key to path, unless another process
// made it first (then that key is returned). The key is written to a
// temporary file and linked into place, so nobody reads a partial file.
func makeKeyFile(path string) ([]byte, error) {
	key := seal.NewKey()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	tmp, err := writeTemp(path, []byte(encodeKey(key)))
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("secrets key: %w", err)
		}
		return decodeKey(string(b), path)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return key, syncDir(filepath.Dir(path))
}

func encodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) + "\n" }

func decodeKey(s, from string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == seal.KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s must hold 32 random bytes in base64 (e.g. from `openssl rand -base64 32`)", from)
}

// replaceKeyFile puts key in path, first copying the key there to
// path.old; each file is replaced atomically (a crash leaves the old or
// the new one, never a part).
func replaceKeyFile(path string, key []byte) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("secrets key: %w", err)
	}
	if err := writeFileAtomic(path+".old", old); err != nil {
		return err
	}
	return writeFileAtomic(path, []byte(encodeKey(key)))
}

// writeFileAtomic writes data to a temporary file (mode 0600) beside path,
// syncs it and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new synced file (mode 0600) beside path and
// returns its name.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
