package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// authorizerCode is the Node.js authorizer of the end-to-end test; with the
// secret AUTHORIZER_LOCAL=true it decides from the token's own claims, so
// the figures are Ward's and the worker's, not an identity provider's.
const authorizerCode = "../e2e/testdata/authorizer/index.js"

// benchIssuer is the iss of the foreign tokens (any URL Ward does not own).
const benchIssuer = "https://idp.bench.example"

// foreignToken is shaped like an outside IdP's access token: RS256 with a
// key id Ward does not hold, so Ward's own verification fails and the
// request goes to the project's authorizer, as a real one would.
func foreignToken(name string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now().Unix()
	return enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "bench-idp-key"}) + "." +
		enc(map[string]any{"iss": benchIssuer, "sub": name, "jti": name, "iat": now, "exp": now + 3600, "scope": "system/*.rs"}) + "." +
		base64.RawURLEncoding.EncodeToString([]byte("signature-ward-does-not-check"))
}

// authorizerSuite measures what the SMART authorizer function adds to a
// FHIR read: (a) a Ward-issued token, the baseline; (b) a foreign token
// whose decision is cached; (c) a never-seen foreign token on every
// request, so each one runs the (warm) Node.js authorizer. Each runs with
// one caller (latency) and with o.clients callers (throughput).
func authorizerSuite(ctx context.Context, o options, w *ward) error {
	code, err := os.ReadFile(authorizerCode)
	if err != nil {
		return fmt.Errorf("authorizer code (run from bench/): %w", err)
	}
	var role struct{ ID string }
	if err := w.api(ctx, "POST", "/iam/role", `{"name":"smart-bench","accessPolicy":{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}}`, &role); err != nil {
		return err
	}
	for name, value := range map[string]string{"AUTHORIZER_ROLE_ID": role.ID, "AUTHORIZER_LOCAL": "true"} {
		if err := w.api(ctx, "POST", "/secret", fmt.Sprintf(`{"name":%q,"value":%q}`, name, value), nil); err != nil {
			return err
		}
	}
	zid, err := w.deploy(ctx, "smart-authorizer", "nodejs20.x", zipOf(map[string][]byte{"index.js": code}))
	if err != nil {
		return err
	}
	if err := w.api(ctx, "PATCH", "/project", fmt.Sprintf(`{"authorizerZambdaId":%q,"authorizerIssuers":[%q]}`, zid, benchIssuer), nil); err != nil {
		return err
	}
	base := w.url + "/fhir"
	client := newClient(o.clients)
	code2, body, err := do(ctx, client, "POST", base+"/Patient", w.token, []byte(`{"resourceType":"Patient","name":[{"family":"Bench"}]}`), "application/fhir+json")
	if err != nil || code2 != 201 {
		return fmt.Errorf("create patient: %d %v %s", code2, err, body)
	}
	var pat struct{ ID string }
	if err := json.Unmarshal(body, &pat); err != nil {
		return fmt.Errorf("create patient: %w", err)
	}
	readURL := base + "/Patient/" + pat.ID

	// read sends the FHIR read with a token; foreign tokens name the project.
	read := func(ctx context.Context, c *http.Client, token string, foreign bool) (int, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", readURL, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if foreign {
			req.Header.Set("x-oystehr-project-id", w.project)
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("read the answer: %w", err)
		}
		return res.StatusCode, nil
	}
	// Check the set-up answers before measuring anything: the first foreign
	// request also starts the Node worker (a cold start, not measured).
	cached := foreignToken("bench-cached")
	if st, err := read(ctx, client, cached, true); err != nil || st != 200 {
		return fmt.Errorf("foreign token refused: %d %v (is the authorizer deployed? see the ward log)", st, err)
	}
	var seq atomic.Int64
	fresh := func() string { return foreignToken(fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), seq.Add(1))) }
	if st, err := read(ctx, client, fresh(), true); err != nil || st != 200 {
		return fmt.Errorf("fresh foreign token refused: %d %v", st, err)
	}

	type scenario struct {
		name string
		fn   request
	}
	scenarios := []scenario{
		{"(a) Ward token (baseline)", func(ctx context.Context, c *http.Client) (int, error) { return read(ctx, c, w.token, false) }},
		{"(b) foreign token, cached decision", func(ctx context.Context, c *http.Client) (int, error) { return read(ctx, c, cached, true) }},
		{"(c) fresh foreign token (Node authorizer, warm)", func(ctx context.Context, c *http.Client) (int, error) {
			return read(ctx, c, fresh(), true)
		}},
	}
	fmt.Printf("GET /fhir/Patient/{id}; 1 caller for latency, %d callers for throughput\n\n", o.clients)
	fmt.Printf("| scenario | p50 (1 caller) | p99 (1 caller) | overhead p50 / p99 | req/s (%d callers) | p50 | p99 | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|\n", o.clients)
	var baseline stats
	for i, sc := range scenarios {
		if !selected(o, "abc"[i:i+1]) {
			continue
		}
		one := measure(ctx, sc.name, 1, o.warmup, o.duration, sc.fn)
		many := measure(ctx, sc.name, o.clients, o.warmup, o.duration, sc.fn)
		overhead := "-"
		if i == 0 {
			baseline = one
		} else if baseline.n > 0 {
			overhead = fmt.Sprintf("%s / %s", signedMS(one.p50-baseline.p50), signedMS(one.p99-baseline.p99))
		}
		fmt.Printf("| %s | %s | %s | %s | %.0f | %s | %s | %d |\n", sc.name, ms(one.p50), ms(one.p99), overhead, many.rate, ms(many.p50), ms(many.p99), one.errors+many.errors)
		for _, s := range []stats{one, many} {
			if s.firstErr != "" {
				fmt.Println("  first error:", s.firstErr)
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\nload average after the run: %s\n", strings.Join(strings.Fields(string(load))[:3], " "))
	return nil
}

// signedMS shows a difference with its sign (noise can make it negative).
func signedMS(d time.Duration) string {
	if d < 0 {
		return "-" + ms(-d)
	}
	return "+" + ms(d)
}
