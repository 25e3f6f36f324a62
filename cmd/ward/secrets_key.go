package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretsKey returns the 32-byte key that encrypts zambda secrets: from
// WARD_SECRETS_KEY (base64), else from the key file in the data directory,
// made on first start (mode 0600). Replicas on one PostgreSQL must share
// the key, so they need the environment variable.
func secretsKey(c config) ([]byte, error) {
	if c.SecretsKey != "" {
		return decodeKey(c.SecretsKey, "WARD_SECRETS_KEY")
	}
	path := filepath.Join(c.DataDir, "secrets.key")
	b, err := os.ReadFile(path)
	if err == nil {
		return decodeKey(string(b), path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return secretsKey(c) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return key, nil
}

func decodeKey(s, from string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s must hold 32 random bytes in base64 (e.g. from `openssl rand -base64 32`)", from)
}
