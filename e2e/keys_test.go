package e2e

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestStolenDatabase: a copy of the SQLite database taken while Ward runs
// yields no usable signing key, Z3 URL key or zambda secret: nothing in
// it parses as a key, the values are ciphertexts, and tokens and presigned
// URLs forged with anything found there are refused by the running
// server. The same forgeries made with the key file's key succeed, so it
// is the key they lack, not the method.
func TestStolenDatabase(t *testing.T) {
	w := startWard(t, storetest.Backends()[0])
	tok := w.token(t, w.Admin)
	const secret = "sk_live_stolen-db-7731"
	if st := w.api(t, tok, "POST", "/secret", fmt.Sprintf(`{"name":"STRIPE","value":%q}`, secret), nil); st != 200 {
		t.Fatalf("set secret: %d", st)
	}
	if st := w.api(t, tok, "PUT", "/z3/docs", "", nil); st != 200 {
		t.Fatalf("create bucket: %d", st)
	}
	upload(t, w.presign(t, tok, "docs", "a.txt", "upload"), strings.NewReader("hello"), 5)

	// The copy: the database file and its write-ahead log, as they are.
	dir := t.TempDir()
	for _, f := range []string{"ward.db", "ward.db-wal"} {
		b, err := os.ReadFile(filepath.Join(w.DataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, plain := range []string{"PRIVATE KEY", "-----BEGIN", secret} {
			if bytes.Contains(b, []byte(plain)) {
				t.Errorf("%s holds %q in clear text", f, plain)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type found struct {
		kid, alg string
		pem      sql.NullString
		sealed   []byte
	}
	var keys []found
	rows, err := db.Query(`SELECT kid, alg, private_pem, private_sealed FROM signing_keys`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k found
		if err := rows.Scan(&k.kid, &k.alg, &k.pem, &k.sealed); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	if len(keys) == 0 {
		t.Fatal("no signing keys in the copy")
	}
	var candidates [][]byte // everything an attacker might try as a key
	for _, k := range keys {
		if k.pem.Valid {
			t.Errorf("signing key %s has a plaintext PEM", k.kid)
		}
		if block, _ := pem.Decode(k.sealed); block != nil {
			t.Errorf("signing key %s: a PEM block parses", k.kid)
		}
		if _, err := x509.ParsePKCS8PrivateKey(k.sealed); err == nil {
			t.Errorf("signing key %s: a PKCS#8 key parses", k.kid)
		}
		if _, err := auth.ParsePrivateKey(k.kid, k.alg, k.sealed, time.Now(), nil); err == nil {
			t.Errorf("signing key %s parses", k.kid)
		}
		candidates = append(candidates, k.sealed)
	}
	var urlValue sql.NullString
	var urlSealed []byte
	if err := db.QueryRow(`SELECT value, sealed FROM server_secrets WHERE name = 'z3-url-key'`).Scan(&urlValue, &urlSealed); err != nil {
		t.Fatal(err)
	}
	// A ciphertext: version, key id, nonce, then the 64 hex digits sealed with their tag.
	if urlValue.Valid || len(urlSealed) != 1+4+12+64+16 || urlSealed[0] != 1 {
		t.Errorf("the Z3 URL key is not a ciphertext: value %v, %d sealed bytes", urlValue, len(urlSealed))
	}
	if _, err := hex.DecodeString(string(urlSealed)); err == nil {
		t.Error("the stored Z3 URL key decodes as hex")
	}
	candidates = append(candidates, urlSealed, urlSealed[17:], urlSealed[17:17+32], urlSealed[len(urlSealed)-32:])
	var secretSealed []byte
	if err := db.QueryRow(`SELECT value FROM zambda_secrets WHERE name = 'STRIPE'`).Scan(&secretSealed); err != nil {
		t.Fatal(err)
	}
	if len(secretSealed) != 1+4+12+len(secret)+16 || bytes.Contains(secretSealed, []byte(secret)) {
		t.Errorf("the zambda secret is not a ciphertext: %d bytes", len(secretSealed))
	}
	candidates = append(candidates, secretSealed)

	// The forgeries: a token that lives longer than the real one, and a
	// download URL for the object.
	parts := strings.Split(tok, ".")
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["exp"] = time.Now().Add(12 * time.Hour).Unix()
	claims["jti"] = "forged"
	forgedPayload, _ := json.Marshal(claims)
	var header map[string]any
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	json.Unmarshal(h, &header)
	kid, _ := header["kid"].(string)
	jwt := func(alg string, sign func(signingInput []byte) []byte) string {
		hdr, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT", "kid": kid})
		in := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(forgedPayload)
		return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
	}
	rs256 := func(key *rsa.PrivateKey) func([]byte) []byte {
		return func(in []byte) []byte {
			sum := sha256.Sum256(in)
			sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}
	}
	hs256 := func(key []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, key); m.Write(in); return m.Sum(nil) }
	}
	expires := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	presigned := func(key []byte) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("download\n" + w.Admin.ProjectID + "\ndocs\na.txt\n" + expires))
		q := url.Values{"action": {"download"}, "expires": {expires}, "signature": {base64.RawURLEncoding.EncodeToString(m.Sum(nil))}}
		return w.URL + "/z3/objects/" + w.Admin.ProjectID + "/docs/a.txt?" + q.Encode()
	}
	me := func(token string) int {
		req, _ := http.NewRequest("GET", w.URL+"/v1/m2m/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	if st := me(jwt("RS256", rs256(stranger))); st != 401 {
		t.Errorf("a token signed by another key under the real kid: %d, want 401", st)
	}
	for i, c := range candidates {
		if st := me(jwt("HS256", hs256(c))); st != 401 {
			t.Errorf("a token signed with found value %d: %d, want 401", i, st)
		}
		for _, key := range [][]byte{c, []byte(hex.EncodeToString(c))} {
			if st, _, _ := download(t, presigned(key)); st != 403 {
				t.Errorf("a URL signed with found value %d: %d, want 403", i, st)
			}
		}
	}

	// With the key file the copy opens: the same forgeries then work.
	master, err := os.ReadFile(filepath.Join(w.DataDir, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(master)))
	sealer, err := seal.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	signed := false
	for _, k := range keys {
		if k.kid != kid {
			continue
		}
		signed = true
		pemBytes, err := sealer.Open(seal.SigningKey(k.kid), k.sealed)
		if err != nil {
			t.Fatal(err)
		}
		key, err := auth.ParsePrivateKey(k.kid, k.alg, pemBytes, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if st := me(jwt("RS256", rs256(key.Private))); st != 200 {
			t.Errorf("the control forgery with the opened signing key: %d, want 200", st)
		}
	}
	if !signed {
		t.Errorf("the token's key %s is not in the copy", kid)
	}
	urlKeyHex, err := sealer.Open(seal.ServerSecret("z3-url-key"), urlSealed)
	if err != nil {
		t.Fatal(err)
	}
	urlKey, _ := hex.DecodeString(string(urlKeyHex))
	if st, _, _ := download(t, presigned(urlKey)); st != 200 {
		t.Errorf("the control URL signed with the opened URL key: %d, want 200", st)
	}
}

// On both databases: a server whose secrets key does not open what is
// stored refuses to start and says what to do, and so does one with no key
// at all once the database holds sealed values (it makes no key of its
// own); a server with the right key starts.
func TestSecretsKeyRefusals(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			key := base64.StdEncoding.EncodeToString(seal.NewKey())
			var first *ward
			if b.Name == "postgres" {
				first = startWardEnv(t, b, []string{"WARD_SECRETS_KEY=" + key})
			} else {
				first = startWard(t, b) // the key file
				k, err := os.ReadFile(filepath.Join(first.DataDir, "secrets.key"))
				if err != nil {
					t.Fatal(err)
				}
				key = strings.TrimSpace(string(k))
			}
			tok := first.token(t, first.Admin)
			if st := first.api(t, tok, "POST", "/secret", `{"name":"S","value":"v"}`, nil); st != 200 {
				t.Fatalf("set secret: %d", st)
			}
			// Another replica: on PostgreSQL with a data directory of its
			// own; on SQLite a copy of the stopped server's database in a
			// data directory without its key file.
			if b.Name == "sqlite" {
				first.kill9(t)
			}
			replica := func(env ...string) *ward {
				r := &ward{DataDir: t.TempDir(), DB: first.DB, URL: first.URL, log: &syncBuffer{}, env: env}
				if b.Name == "sqlite" {
					for _, f := range []string{"ward.db", "ward.db-wal"} {
						data, err := os.ReadFile(filepath.Join(first.DataDir, f))
						if err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(filepath.Join(r.DataDir, f), data, 0o600); err != nil {
							t.Fatal(err)
						}
					}
				}
				return r
			}
			for _, tc := range []struct {
				name string
				env  []string
				want string
			}{
				{"another key", []string{"WARD_SECRETS_KEY=" + base64.StdEncoding.EncodeToString(seal.NewKey())},
					"the secrets key does not match this database: set WARD_SECRETS_KEY to the key the other replicas use"},
				{"no key", nil, "holds keys and secrets sealed with a secrets key, but none is configured"},
			} {
				r := replica(tc.env...)
				out := r.serveFails(t)
				if !strings.Contains(out, tc.want) {
					t.Errorf("%s: the refusal does not say %q:\n%s", tc.name, tc.want, out)
				}
				t.Logf("%s: %s", tc.name, out)
				if _, err := os.Stat(filepath.Join(r.DataDir, "secrets.key")); err == nil {
					t.Errorf("%s: the refused server made a key file", tc.name)
				}
			}
			r := replica("WARD_SECRETS_KEY=" + key)
			r.URL = "http://" + freeAddr(t)
			r.flags = []string{"--public-url", first.URL}
			r.launch(t)
			var got map[string]string
			if st := r.api(t, tok, "GET", "/secret/S", "", &got); st != 200 || got["value"] != "v" {
				t.Fatalf("the replica with the right key reads the secret: %d %v", st, got)
			}
		})
	}
}

// On both databases: `ward admin rotate-secrets-key` (the key file, or
// WARD_SECRETS_KEY with WARD_NEW_SECRETS_KEY) while the server runs. The
// running server keeps its tokens and presigned URLs working but can no
// longer read or store secrets (503); restarted with the new key it reads
// them again, and with the old key it refuses to start.
func TestRotateSecretsKey(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			oldKey := base64.StdEncoding.EncodeToString(seal.NewKey())
			newKey := base64.StdEncoding.EncodeToString(seal.NewKey())
			var w *ward
			if b.Name == "postgres" {
				w = startWardEnv(t, b, []string{"WARD_SECRETS_KEY=" + oldKey})
			} else {
				w = startWard(t, b)
			}
			tok := w.token(t, w.Admin)
			if st := w.api(t, tok, "POST", "/secret", `{"name":"S","value":"before"}`, nil); st != 200 {
				t.Fatalf("set secret: %d", st)
			}
			if st := w.api(t, tok, "PUT", "/z3/docs", "", nil); st != 200 {
				t.Fatalf("create bucket: %d", st)
			}
			upload(t, w.presign(t, tok, "docs", "a.txt", "upload"), strings.NewReader("hello"), 5)
			get := w.presign(t, tok, "docs", "a.txt", "download")

			if b.Name == "postgres" {
				w.env = append(w.env, "WARD_NEW_SECRETS_KEY="+newKey)
			}
			out := string(w.admin(t, "rotate-secrets-key"))
			if !strings.Contains(out, "Next:") {
				t.Errorf("the rotation does not say what to do next:\n%s", out)
			}
			if b.Name == "sqlite" {
				old, err := os.ReadFile(filepath.Join(w.DataDir, "secrets.key.old"))
				if err != nil {
					t.Fatal(err)
				}
				oldKey = strings.TrimSpace(string(old))
			}

			// The running server, with the old key in memory.
			if st, _, _ := download(t, get); st != 200 {
				t.Errorf("a presigned URL after the rotation: %d", st)
			}
			if st := w.api(t, w.token(t, w.Admin), "GET", "/secret/S", "", nil); st != 503 {
				t.Errorf("reading a secret with the old key: %d, want 503", st)
			}
			if st := w.api(t, tok, "POST", "/secret", `{"name":"S2","value":"x"}`, nil); st != 503 {
				t.Errorf("storing a secret with the old key: %d, want 503", st)
			}

			w.kill9(t)
			w.env = []string{"WARD_SECRETS_KEY=" + oldKey}
			if out := w.serveFails(t); !strings.Contains(out, "the secrets key does not match this database") {
				t.Errorf("the old key: the refusal does not say why:\n%s", out)
			}
			w.env = nil // SQLite: the key file holds the new key
			if b.Name == "postgres" {
				w.env = []string{"WARD_SECRETS_KEY=" + newKey}
			}
			w.launch(t)
			var got map[string]string
			if st := w.api(t, tok, "GET", "/secret/S", "", &got); st != 200 || got["value"] != "before" {
				t.Fatalf("the secret after restarting with the new key: %d %v", st, got)
			}
			if st, _, _ := download(t, get); st != 200 {
				t.Errorf("a presigned URL from before the rotation, after the restart: %d", st)
			}
		})
	}
}
