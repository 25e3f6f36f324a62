package store_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/tokens"
)

// On both databases, migration 0017 keeps every version of a resource
// written before it: the current one moves out of fhir_history, keeping the
// interaction that wrote it, and history still lists both.
func TestUpgradeHistorySuperseded(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := upgradeFrom(t, b, "0016_z3_blob_keys", func(old *store.Store, deleted string) {
				for _, q := range []string{
					`INSERT INTO fhir_resources (project_id, resource_type, id, version_id, last_updated, deleted, content) VALUES ('p1', 'Patient', 'a', 2, 2000, ` + deleted + `, '{"v":2}')`,
					`INSERT INTO fhir_history (project_id, resource_type, id, version_id, last_updated, deleted, method, content) VALUES ('p1', 'Patient', 'a', 1, 1000, ` + deleted + `, 'POST', '{"v":1}')`,
					`INSERT INTO fhir_history (project_id, resource_type, id, version_id, last_updated, deleted, method, content) VALUES ('p1', 'Patient', 'a', 2, 2000, ` + deleted + `, 'PATCH', '{"v":2}')`,
				} {
					if err := old.Exec(ctx, q); err != nil {
						t.Fatal(err)
					}
				}
			})
			hist, total, err := s.History(ctx, "p1", store.HistoryFilter{Count: 10})
			if err != nil || total != 2 || len(hist) != 2 {
				t.Fatalf("history after the upgrade: %d %+v, %v", total, hist, err)
			}
			if hist[0].VersionID != 2 || hist[0].Method != "PATCH" || string(hist[0].Content) != `{"v":2}` ||
				hist[1].VersionID != 1 || hist[1].Method != "POST" || string(hist[1].Content) != `{"v":1}` {
				t.Fatalf("history after the upgrade: %+v", hist)
			}
			for v, want := range map[int64]string{1: `{"v":1}`, 2: `{"v":2}`} {
				r, err := s.GetVersion(ctx, "p1", "Patient", "a", v)
				if err != nil || string(r.Content) != want {
					t.Fatalf("version %d after the upgrade: %+v, %v", v, r, err)
				}
			}
		})
	}
}

// On both databases, resources written before migration 0019 get their
// composite-parameter and Location near rows from the one-time job: until
// it has run, such searches are refused (not answered in part); after it,
// they find those resources, and a second run does nothing.
func TestUpgradeCompositeIndex(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := upgradeFrom(t, b, "0018_search_plans", func(old *store.Store, deleted string) {
				if err := old.Exec(ctx, `INSERT INTO projects (id, name, created_at) VALUES ('p1', 'P', ?)`, time.Now().UnixMilli()); err != nil {
					t.Fatal(err)
				}
				obs := `{"resourceType":"Observation","id":"o1","status":"final",` +
					`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},` +
					`"valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`
				loc := `{"resourceType":"Location","id":"l1","position":{"latitude":42.2565,"longitude":-83.6948}}`
				for id, content := range map[string]string{"Observation/o1": obs, "Location/l1": loc} {
					typ, rid, _ := strings.Cut(id, "/")
					if err := old.Exec(ctx, `INSERT INTO fhir_resources (project_id, resource_type, id, version_id, last_updated, deleted, content) VALUES ('p1', ?, ?, 1, 1000, `+deleted+`, ?)`, typ, rid, content); err != nil {
						t.Fatal(err)
					}
				}
			})
			svc := fhir.New(s, nil, fhir.Config{}, time.Now)
			q, err := search.ParseQuery("Observation", url.Values{"code-value-quantity": {"http://loinc.org|8867-4$gt70"}}, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Search(ctx, auth.Principal{ProjectID: "p1"}, q); !errors.Is(err, fault.ErrUnavailable) {
				t.Fatalf("composite search before the job: %v, want unavailable", err)
			}
			// Each job (0019, 0020's identifier types, 0021's narratives,
			// 0023's code texts) reads both.
			if n, err := svc.BackfillIndex(ctx); err != nil || n != 8 {
				t.Fatalf("jobs indexed %d, %v; want 8", n, err)
			}
			if done, err := s.JobDone(ctx, "search-index-0019"); err != nil || !done {
				t.Fatalf("job done = %v, %v", done, err)
			}
			for query, want := range map[string]int{"http://loinc.org|8867-4$gt70": 1, "http://loinc.org|8867-4$lt70": 0, "8867-4$72": 1, "http://loinc.org|1234-5$72": 0} {
				q, _ := search.ParseQuery("Observation", url.Values{"code-value-quantity": {query}}, false)
				got, total, err := s.Search(ctx, store.SearchRequest{ProjectID: "p1", Query: q, Count: 10, Total: true, Now: time.Now()})
				if err != nil || total != want || len(got) != want {
					t.Fatalf("code-value-quantity=%s: %d results (total %d), %v; want %d", query, len(got), total, err, want)
				}
			}
			for query, want := range map[string]int{"42.26|-83.69|5|km": 1, "42.26|-83.69|100|m": 0, "42.30|-83.70": 0} {
				q, _ := search.ParseQuery("Location", url.Values{"near": {query}}, false)
				got, total, err := s.Search(ctx, store.SearchRequest{ProjectID: "p1", Query: q, Count: 10, Total: true, Now: time.Now()})
				if err != nil || total != want || len(got) != want {
					t.Fatalf("near=%s: %d results (total %d), %v; want %d", query, len(got), total, err, want)
				}
			}
			if n, err := svc.BackfillIndex(ctx); err != nil || n != 0 {
				t.Fatalf("second run indexed %d, %v; want 0", n, err)
			}
		})
	}
}

// On both databases, identifiers and narratives written before migrations
// 0020 and 0021 get their rows from their one-time jobs: until then
// identifier:of-type and _text are refused; after them, they find them.
func TestUpgradeIdentifierTypes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := upgradeFrom(t, b, "0019_search_index", func(old *store.Store, deleted string) {
				if err := old.Exec(ctx, `INSERT INTO projects (id, name, created_at) VALUES ('p1', 'P', ?)`, time.Now().UnixMilli()); err != nil {
					t.Fatal(err)
				}
				pat := `{"resourceType":"Patient","id":"a","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Jane <b>Doe</b></div>"},` +
					`"identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"http://x.test/mrn","value":"42"}]}`
				if err := old.Exec(ctx, `INSERT INTO fhir_resources (project_id, resource_type, id, version_id, last_updated, deleted, content) VALUES ('p1', 'Patient', 'a', 1, 1000, `+deleted+`, ?)`, pat); err != nil {
					t.Fatal(err)
				}
			})
			svc := fhir.New(s, nil, fhir.Config{}, time.Now)
			q, err := search.ParseQuery("Patient", url.Values{"identifier:of-type": {"http://terminology.hl7.org/CodeSystem/v2-0203|MR|42"}}, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Search(ctx, auth.Principal{ProjectID: "p1"}, q); !errors.Is(err, fault.ErrUnavailable) {
				t.Fatalf(":of-type before the job: %v, want unavailable", err)
			}
			tq, _ := search.ParseQuery("Patient", url.Values{"_text": {"jane doe"}}, false)
			if _, err := svc.Search(ctx, auth.Principal{ProjectID: "p1"}, tq); !errors.Is(err, fault.ErrUnavailable) {
				t.Fatalf("_text before the job: %v, want unavailable", err)
			}
			if n, err := svc.BackfillIndex(ctx); err != nil || n != 3 {
				t.Fatalf("jobs indexed %d, %v; want 3", n, err)
			}
			if got, total, err := s.Search(ctx, store.SearchRequest{ProjectID: "p1", Query: tq, Count: 10, Total: true, Now: time.Now()}); err != nil || total != 1 || len(got) != 1 {
				t.Fatalf("_text after the job: %d results (total %d), %v", len(got), total, err)
			}
			for value, want := range map[string]int{"http://terminology.hl7.org/CodeSystem/v2-0203|MR|42": 1, "http://terminology.hl7.org/CodeSystem/v2-0203|SS|42": 0, "http://terminology.hl7.org/CodeSystem/v2-0203|MR|43": 0} {
				q, _ := search.ParseQuery("Patient", url.Values{"identifier:of-type": {value}}, false)
				got, total, err := s.Search(ctx, store.SearchRequest{ProjectID: "p1", Query: q, Count: 10, Total: true, Now: time.Now()})
				if err != nil || total != want || len(got) != want {
					t.Fatalf("identifier:of-type=%s: %d results (total %d), %v; want %d", value, len(got), total, err, want)
				}
			}
		})
	}
}

// On both databases, token rows written before 0023 (their display as
// written) are written again, normalised, by its one-time job: until then
// :text is refused; after it, a word's start finds the code whatever its
// case and accents.
func TestUpgradeTokenText(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := upgradeFrom(t, b, "0022_sealed_keys", func(old *store.Store, deleted string) {
				if err := old.Exec(ctx, `INSERT INTO projects (id, name, created_at) VALUES ('p1', 'P', ?)`, time.Now().UnixMilli()); err != nil {
					t.Fatal(err)
				}
				obs := `{"resourceType":"Observation","id":"o","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body Wéight"}]}}`
				if err := old.Exec(ctx, `INSERT INTO fhir_resources (project_id, resource_type, id, version_id, last_updated, deleted, content) VALUES ('p1', 'Observation', 'o', 1, 1000, `+deleted+`, ?)`, obs); err != nil {
					t.Fatal(err)
				}
				if err := old.Exec(ctx, `INSERT INTO fhir_idx_token (project_id, resource_type, id, param, system, code, display) VALUES ('p1', 'Observation', 'o', 'code', 'http://loinc.org', '29463-7', 'Body Wéight')`); err != nil {
					t.Fatal(err)
				}
			})
			svc := fhir.New(s, nil, fhir.Config{}, time.Now)
			q, _ := search.ParseQuery("Observation", url.Values{"code:text": {"WEIGHT"}}, false)
			if _, err := svc.Search(ctx, auth.Principal{ProjectID: "p1"}, q); !errors.Is(err, fault.ErrUnavailable) {
				t.Fatalf(":text before the job: %v, want unavailable", err)
			}
			if n, err := svc.BackfillIndex(ctx); err != nil || n != 1 {
				t.Fatalf("jobs indexed %d, %v; want 1", n, err)
			}
			for value, want := range map[string]int{"WEIGHT": 1, "body wei": 1, "eight": 0} {
				q, _ := search.ParseQuery("Observation", url.Values{"code:text": {value}}, false)
				got, total, err := s.Search(ctx, store.SearchRequest{ProjectID: "p1", Query: q, Count: 10, Total: true, Now: time.Now()})
				if err != nil || total != want || len(got) != want {
					t.Fatalf("code:text=%s: %d results (total %d), %v; want %d", value, len(got), total, err, want)
				}
			}
			if got, _, err := s.Search(ctx, store.SearchRequest{ProjectID: "p1", Query: &search.Query{ResourceType: "Observation", Clauses: mustClauses(t, "code=29463-7")}, Count: 10, Now: time.Now()}); err != nil || len(got) != 1 {
				t.Fatalf("code after the job: %d, %v", len(got), err)
			}
		})
	}
}

func mustClauses(t *testing.T, query string) []*search.Clause {
	t.Helper()
	vals, _ := url.ParseQuery(query)
	q, err := search.ParseQuery("Observation", vals, false)
	if err != nil {
		t.Fatal(err)
	}
	return q.Clauses
}

// upgradeFrom builds a database as release version left it on backend b,
// lets fill write to it (deleted is the dialect's false), then opens it
// with every migration.
func upgradeFrom(t *testing.T, b storetest.Backend, version string, fill func(old *store.Store, deleted string)) *store.Store {
	t.Helper()
	ctx := context.Background()
	dsn := b.DSN(t)
	old, err := store.OpenUpTo(ctx, dsn, version)
	if err != nil {
		t.Fatal(err)
	}
	deleted := "0"
	if b.Name == "postgres" {
		deleted = "FALSE"
	}
	fill(old, deleted)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// On both databases, a database from before keys at rest (0022) upgrades
// in place: its signing keys and Z3 URL key, stored in plaintext, and its
// zambda secrets, sealed in the old format, are all sealed with the
// master key at the first start, and keep working.
func TestUpgradeSealsKeys(t *testing.T) {
	for _, b := range storetest.Backends() {
		for _, withSecret := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/secrets=%v", b.Name, withSecret), func(t *testing.T) {
				ctx := context.Background()
				masterKey := seal.NewKey()
				key, err := auth.GenerateKey(time.Now())
				if err != nil {
					t.Fatal(err)
				}
				pemBytes, _ := key.MarshalPrivate()
				const urlKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
				s := upgradeFrom(t, b, "0021_narrative_text", func(old *store.Store, _ string) {
					if err := old.Exec(ctx, `INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES (?, ?, ?, ?)`, key.ID, key.Alg, string(pemBytes), time.Now().UnixMilli()); err != nil {
						t.Fatal(err)
					}
					if err := old.Exec(ctx, `INSERT INTO server_secrets (name, value) VALUES ('z3-url-key', ?)`, urlKey); err != nil {
						t.Fatal(err)
					}
					if withSecret {
						// Sealed as releases before key ids did: nonce || ciphertext, project and name as additional data.
						block, _ := aes.NewCipher(masterKey)
						aead, _ := cipher.NewGCM(block)
						nonce := make([]byte, aead.NonceSize())
						if err := old.PutSecret(ctx, "p1", "API_KEY", aead.Seal(nonce, nonce, []byte("v1"), []byte("p1\x00API_KEY")), time.Now()); err != nil {
							t.Fatal(err)
						}
					}
				})
				// Without secrets nothing is sealed yet: a key file may be made.
				if held, err := s.HoldsSealed(ctx); err != nil || held != withSecret {
					t.Fatalf("holds sealed = %v, %v; want %v", held, err, withSecret)
				}
				sealer, err := seal.New(masterKey)
				if err != nil {
					t.Fatal(err)
				}
				if withSecret {
					if err := seal.Setup(ctx, s, must(seal.New(seal.NewKey())), slog.New(slog.DiscardHandler)); !errors.Is(err, seal.ErrWrongKey) {
						t.Fatalf("another key: %v, want ErrWrongKey", err)
					}
				}
				if err := seal.Setup(ctx, s, sealer, slog.New(slog.DiscardHandler)); err != nil {
					t.Fatal(err)
				}
				for _, q := range []string{`SELECT COUNT(*) FROM signing_keys WHERE private_pem IS NOT NULL OR private_sealed IS NULL`,
					`SELECT COUNT(*) FROM server_secrets WHERE value IS NOT NULL OR sealed IS NULL`} {
					if n, err := s.QueryInt(ctx, q); err != nil || n != 0 {
						t.Fatalf("%s: %d, %v", q, n, err)
					}
				}
				keys, err := tokens.LoadKeys(ctx, s, sealer, time.Now)
				if err != nil || keys.Ring().SigningKeyID(time.Now()) != key.ID {
					t.Fatalf("signing keys after the upgrade: %v", err)
				}
				sealed, err := s.GetServerSecret(ctx, "z3-url-key")
				if err != nil {
					t.Fatal(err)
				}
				if v, err := sealer.Open(seal.ServerSecret("z3-url-key"), sealed); err != nil || string(v) != urlKey {
					t.Fatalf("the Z3 URL key after the upgrade: %q, %v", v, err)
				}
				if withSecret {
					sealed, err := s.GetSecret(ctx, "p1", "API_KEY")
					if err != nil {
						t.Fatal(err)
					}
					if v, err := sealer.Open(seal.Secret("p1", "API_KEY"), sealed); err != nil || string(v) != "v1" || !sealer.IsCurrent(sealed) {
						t.Fatalf("the zambda secret after the upgrade: %q, %v", v, err)
					}
				}
				// A second start finds nothing left to seal, and refuses another key.
				if err := seal.Setup(ctx, s, sealer, slog.New(slog.DiscardHandler)); err != nil {
					t.Fatal(err)
				}
				if err := seal.Setup(ctx, s, must(seal.New(seal.NewKey())), slog.New(slog.DiscardHandler)); !errors.Is(err, seal.ErrWrongKey) {
					t.Fatalf("another key after the upgrade: %v, want ErrWrongKey", err)
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
