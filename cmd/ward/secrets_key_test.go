package main

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

// testConfig is a data directory and a fresh database of backend b.
func testConfig(t *testing.T, b storetest.Backend) config {
	c := config{DataDir: t.TempDir()}
	if b.Name == "postgres" {
		c.Database = b.DSN(t)
	}
	return c
}

// start opens the store and the sealer as `ward serve` does, then closes
// the store; it returns the sealer's key id.
func start(t *testing.T, c config) (string, error) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, c.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := openSealer(ctx, c, st, quiet)
	if err != nil {
		return "", err
	}
	return s.KeyID(), nil
}

func encoded(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// On both databases, one after the other as an operator might meet them:
// the first start makes the key file; a start without it on a database
// that holds sealed values, or with another key, refuses and says why.
func TestOpenSealer(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			c := testConfig(t, b)
			file := secretsKeyFile(c)
			var firstID string
			var fileKey []byte
			for _, step := range []struct {
				name    string
				prepare func(c *config)
				wantErr string
				check   func(t *testing.T, id string)
			}{
				{"a new database makes the key file", nil, "", func(t *testing.T, id string) {
					fi, err := os.Stat(file)
					if err != nil || fi.Mode().Perm() != 0o600 {
						t.Fatalf("key file: %v, %v", fi, err)
					}
					fileKey, _ = decodeKey(string(must(os.ReadFile(file))), file)
					firstID = id
				}},
				{"the key file again", nil, "", func(t *testing.T, id string) {
					if id != firstID {
						t.Fatalf("key id %s, then %s", firstID, id)
					}
				}},
				{"WARD_SECRETS_KEY with the same key", func(c *config) { c.SecretsKey = encoded(fileKey) }, "", nil},
				{"WARD_SECRETS_KEY with another key", func(c *config) { c.SecretsKey = encoded(seal.NewKey()) },
					"the secrets key does not match this database: set WARD_SECRETS_KEY to the key the other replicas use", nil},
				{"WARD_SECRETS_KEY malformed", func(c *config) { c.SecretsKey = "c2hvcnQ=" }, "must hold 32 random bytes", nil},
				{"another key file", func(c *config) {
					os.WriteFile(file, []byte(encodeKey(seal.NewKey())), 0o600)
				}, "the secrets key does not match this database", nil},
				{"no key for a database with sealed values", func(c *config) { os.Remove(file) },
					"none is configured (WARD_SECRETS_KEY is unset and " + file + " does not exist): set WARD_SECRETS_KEY to the key the other replicas use", func(t *testing.T, _ string) {
						if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
							t.Fatalf("a key file was made: %v", err)
						}
					}},
			} {
				t.Run(step.name, func(t *testing.T) {
					c := c
					if step.prepare != nil {
						step.prepare(&c)
					}
					id, err := start(t, c)
					if step.wantErr == "" && err != nil || step.wantErr != "" && (err == nil || !strings.Contains(err.Error(), step.wantErr)) {
						t.Fatalf("start: %v; want %q", err, step.wantErr)
					}
					if step.check != nil {
						step.check(t, id)
					}
				})
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
