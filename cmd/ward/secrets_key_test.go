package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	st, err := store.Open(ctx, c.dsn(), nil)
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
				{"a key file from an interrupted rotation", func(c *config) {
					os.WriteFile(file, []byte(encodeKey(fileKey)), 0o600)
					if err := replaceKeyFile(file, seal.NewKey()); err != nil {
						t.Fatal(err)
					}
				}, "if `ward admin rotate-secrets-key` was interrupted, the previous key is in " + file + ".old", nil},
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

// On both databases, `ward admin rotate-secrets-key` with the key file (a
// new key made for it, the previous kept in secrets.key.old) and with
// WARD_SECRETS_KEY (the new key from WARD_NEW_SECRETS_KEY): afterwards the
// new key starts the server and the old one does not. A rotation that
// fails puts the key file back.
func TestRotateSecretsKeyCommand(t *testing.T) {
	for _, b := range storetest.Backends() {
		for _, tc := range []struct {
			name    string
			env     bool   // WARD_SECRETS_KEY rather than the key file
			newKey  string // WARD_NEW_SECRETS_KEY
			stray   bool   // a secret the current key does not open
			wantErr string
		}{
			{name: "key file"},
			{name: "key file, new key given", newKey: encoded(seal.NewKey())},
			{name: "environment", env: true, newKey: encoded(seal.NewKey())},
			{name: "environment, no new key", env: true, wantErr: "set WARD_NEW_SECRETS_KEY"},
			{name: "new key malformed", env: true, newKey: "nope", wantErr: "WARD_NEW_SECRETS_KEY must hold 32 random bytes"},
			{name: "a value that does not open", stray: true, wantErr: `secret "STRAY" of project p1`},
		} {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				c := testConfig(t, b)
				file := secretsKeyFile(c)
				if tc.env {
					c.SecretsKey = encoded(seal.NewKey())
				}
				oldID, err := start(t, c)
				if err != nil {
					t.Fatal(err)
				}
				oldFile, _ := os.ReadFile(file)
				if tc.stray {
					st := must(store.Open(ctx, c.dsn(), nil))
					other := must(seal.New(seal.NewKey()))
					if err := st.PutSecret(ctx, "p1", "STRAY", other.Seal(seal.Secret("p1", "STRAY"), []byte("x")), time.Now()); err != nil {
						t.Fatal(err)
					}
					st.Close()
				}
				var out strings.Builder
				err = rotateSecretsKey(ctx, c, tc.newKey, &out, quiet)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("rotate: %v; want %q", err, tc.wantErr)
					}
					if now, _ := os.ReadFile(file); string(now) != string(oldFile) {
						t.Fatal("a failed rotation changed the key file")
					}
					if id, err := start(t, c); err != nil || id != oldID {
						t.Fatalf("the old key after a failed rotation: %s, %v", id, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("output:\n%s", out.String())
				if !strings.Contains(out.String(), "Next:") {
					t.Errorf("the output does not say what to do next:\n%s", out.String())
				}
				oldC, newC := c, c
				if tc.env {
					newC.SecretsKey = tc.newKey
					if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("a key file was made with WARD_SECRETS_KEY set: %v", err)
					}
				} else {
					if old, _ := os.ReadFile(file + ".old"); string(old) != string(oldFile) {
						t.Fatal("secrets.key.old does not hold the previous key")
					}
					if tc.newKey != "" {
						if now, _ := os.ReadFile(file); strings.TrimSpace(string(now)) != tc.newKey {
							t.Fatal("the key file does not hold WARD_NEW_SECRETS_KEY")
						}
					}
					oldC.SecretsKey = strings.TrimSpace(string(oldFile))
				}
				if id, err := start(t, newC); err != nil || id == oldID {
					t.Fatalf("start with the new key: %s, %v", id, err)
				}
				if _, err := start(t, oldC); !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), "set WARD_SECRETS_KEY to the key the other replicas use") {
					t.Fatalf("start with the old key: %v", err)
				}
			})
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Processes starting at once on a new data directory (serve and an admin
// command) end up with one key: the first link wins, the others read it,
// never a partial file.
func TestMakeKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "secrets.key")
	keys := make([][]byte, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = makeKeyFile(path) })
	}
	wg.Wait()
	onDisk, err := decodeKey(string(must(os.ReadFile(path))), path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(keys[i], onDisk) {
			t.Fatalf("caller %d: %v, key equal to the file's: %v", i, errs[i], bytes.Equal(keys[i], onDisk))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}
}
