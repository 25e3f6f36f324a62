package seal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// setSecret stores a zambda secret as the zambda service does: fenced.
func setSecret(ctx context.Context, st *store.Store, s *Sealer, projectID, name, value string) error {
	return st.WithTx(ctx, func(tx *store.Tx) error {
		if err := Fence(ctx, tx, s); err != nil {
			return err
		}
		return tx.PutSecret(ctx, projectID, name, s.Seal(Secret(projectID, name), []byte(value)), time.Now())
	})
}

func openSecret(ctx context.Context, t *testing.T, st *store.Store, s *Sealer, projectID, name string) (string, error) {
	t.Helper()
	sealed, err := st.GetSecret(ctx, projectID, name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Open(Secret(projectID, name), sealed)
	return string(v), err
}

// On both databases: a new database takes the first key it is set up
// with, and refuses any other from then on.
func TestSetupNewDatabase(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			k1, k2 := mustNew(t), mustNew(t)
			if held, err := Holds(ctx, st); err != nil || held {
				t.Fatalf("a new database holds sealed values: %v, %v", held, err)
			}
			if err := Setup(ctx, st, k1, quiet); err != nil {
				t.Fatal(err)
			}
			if held, err := Holds(ctx, st); err != nil || !held {
				t.Fatalf("after setup: holds = %v, %v", held, err)
			}
			if err := Setup(ctx, st, k1, quiet); err != nil {
				t.Fatalf("the same key again: %v", err)
			}
			if err := Setup(ctx, st, k2, quiet); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("another key: %v, want ErrWrongKey", err)
			}
		})
	}
}

// On both databases: zambda secrets sealed before key ids are the first
// start's test of the key. A key that opens none is refused and changes
// nothing; the right key seals them again in the current format; secrets
// another key sealed (a replica's own key file, before the check value)
// are left as they are.
func TestSetupLegacySecrets(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			key1, key2 := NewKey(), NewKey()
			k1, _ := New(key1)
			k2, _ := New(key2)
			for name, key := range map[string][]byte{"A": key1, "B": key1, "STRAY": key2} {
				if err := st.PutSecret(ctx, "p1", name, legacySeal(t, key, "p1", name, []byte("value "+name)), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if held, err := Holds(ctx, st); err != nil || !held {
				t.Fatalf("legacy secrets: holds = %v, %v", held, err)
			}
			if err := Setup(ctx, st, mustNew(t), quiet); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("a key that opens none: %v, want ErrWrongKey", err)
			}
			if _, err := st.GetServerSecret(ctx, CheckName); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a refused key stored a check value: %v", err)
			}
			if err := Setup(ctx, st, k1, quiet); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"A", "B"} {
				sealed, _ := st.GetSecret(ctx, "p1", name)
				if v, err := k1.Open(Secret("p1", name), sealed); err != nil || string(v) != "value "+name || !k1.IsCurrent(sealed) {
					t.Errorf("secret %s after setup: %q, %v, current %v", name, v, err, k1.IsCurrent(sealed))
				}
			}
			if v, err := openSecret(ctx, t, st, k2, "p1", "STRAY"); err != nil || v != "value STRAY" {
				t.Errorf("the stray secret was changed: %q, %v", v, err)
			}
			if err := Setup(ctx, st, k2, quiet); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("the stray key after setup: %v, want ErrWrongKey", err)
			}
		})
	}
}

// On both databases: rotation seals every value again with the new key in
// one transaction; only the new key opens them and sets the database up.
// A value the current key does not open stops it, changing nothing.
func TestRotate(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			key1 := NewKey()
			k1, _ := New(key1)
			k2, k3 := mustNew(t), mustNew(t)
			if err := Setup(ctx, st, k1, quiet); err != nil {
				t.Fatal(err)
			}
			if err := st.InsertSigningKey(ctx, store.SigningKey{KID: "kid1", Alg: "RS256", Sealed: k1.Seal(SigningKey("kid1"), []byte("pem")), CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ServerSecret(ctx, "z3-url-key", func() ([]byte, error) { return k1.Seal(ServerSecret("z3-url-key"), []byte("url key")), nil }); err != nil {
				t.Fatal(err)
			}
			if err := setSecret(ctx, st, k1, "p1", "A", "a"); err != nil {
				t.Fatal(err)
			}
			// Written by an older release while this one ran.
			if err := st.PutSecret(ctx, "p2", "OLD", legacySeal(t, key1, "p2", "OLD", []byte("old")), time.Now()); err != nil {
				t.Fatal(err)
			}
			if _, err := Rotate(ctx, st, k3, k2); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("rotate from a key that is not the database's: %v", err)
			}
			if err := st.PutSecret(ctx, "p3", "STRAY", k3.Seal(Secret("p3", "STRAY"), []byte("x")), time.Now()); err != nil {
				t.Fatal(err)
			}
			_, err := Rotate(ctx, st, k1, k2)
			if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), `secret "STRAY" of project p3`) {
				t.Fatalf("rotate with a value that does not open: %v", err)
			}
			if v, err := openSecret(ctx, t, st, k1, "p1", "A"); err != nil || v != "a" {
				t.Fatalf("a refused rotation changed values: %q, %v", v, err)
			}
			if err := st.DeleteSecret(ctx, "p3", "STRAY"); err != nil {
				t.Fatal(err)
			}
			rotated, err := Rotate(ctx, st, k1, k2)
			if err != nil {
				t.Fatal(err)
			}
			want := Rotated{store.SealedSigningKey: 1, store.SealedServerSecret: 2, store.SealedZambdaSecret: 2}
			if fmt.Sprint(rotated) != fmt.Sprint(want) {
				t.Errorf("rotated %v, want %v", rotated, want)
			}
			all, err := st.ValuesAtRest(ctx, false)
			if err != nil || len(all) != 5 {
				t.Fatalf("values at rest: %d, %v", len(all), err)
			}
			for _, v := range all {
				if _, err := k2.Open(label(v), v.Sealed); err != nil {
					t.Errorf("%s does not open with the new key: %v", label(v), err)
				}
				if _, err := k1.Open(label(v), v.Sealed); !errors.Is(err, ErrWrongKey) {
					t.Errorf("%s with the old key: %v, want ErrWrongKey", label(v), err)
				}
			}
			if v, err := openSecret(ctx, t, st, k2, "p2", "OLD"); err != nil || v != "old" {
				t.Errorf("the legacy secret after rotation: %q, %v", v, err)
			}
			if err := Setup(ctx, st, k1, quiet); !errors.Is(err, ErrWrongKey) {
				t.Errorf("setup with the old key: %v, want ErrWrongKey", err)
			}
			if err := Setup(ctx, st, k2, quiet); err != nil {
				t.Errorf("setup with the new key: %v", err)
			}
		})
	}
}

// On both databases: writers fenced with the old key race a rotation;
// afterwards every stored secret opens with the new key (a write either
// committed before the rotation, which sealed it again, or was refused).
func TestFenceRacesRotation(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.Open(t, b)
			k1, k2 := mustNew(t), mustNew(t)
			if err := Setup(ctx, st, k1, quiet); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			written, refused := 0, 0
			started := make(chan struct{}) // closed at the 10th write: then rotate, while the others go on
			for w := range 4 {
				wg.Go(func() {
					for i := range 25 {
						err := setSecret(ctx, st, k1, "p1", fmt.Sprintf("S%d_%d", w, i), "v")
						mu.Lock()
						switch {
						case err == nil:
							if written++; written == 10 {
								close(started)
							}
						case errors.Is(err, ErrWrongKey):
							refused++
						default:
							t.Error(err)
						}
						mu.Unlock()
					}
				})
			}
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			select {
			case <-started:
			case <-finished: // every write failed: reported above
			}
			if _, err := Rotate(ctx, st, k1, k2); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			all, err := st.Secrets(ctx, "p1")
			if err != nil || len(all) != written {
				t.Fatalf("%d secrets stored, %d writes succeeded: %v", len(all), written, err)
			}
			for name, sealed := range all {
				if _, err := k2.Open(Secret("p1", name), sealed); err != nil {
					t.Errorf("secret %s does not open with the new key: %v", name, err)
				}
			}
			t.Logf("%d writes before the rotation, %d refused after it", written, refused)
		})
	}
}
