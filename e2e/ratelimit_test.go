package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestRateLimitAcrossReplicas: two `ward serve` on one PostgreSQL with a
// limit of 50 requests a minute per principal. One principal's requests
// spread over both replicas are limited at about 50 in all (each replica
// alone would let 50 through, 100 together), answered 429 with the
// RateLimit headers and Retry-After, as the SDK's error JSON on the
// Project API and an OperationOutcome on FHIR; another principal is not
// affected.
func TestRateLimitAcrossReplicas(t *testing.T) {
	b := storetest.Backends()[1]
	if b.Name != "postgres" {
		t.Fatal("backend 1 is not PostgreSQL")
	}
	dsn := b.DSN(t)
	const limit = 50
	env := []string{"WARD_SECRETS_KEY=" + base64.StdEncoding.EncodeToString(seal.NewKey())}
	rs := []*ward{
		{DataDir: t.TempDir(), DB: dsn, URL: "http://" + freeAddr(t), log: &syncBuffer{}, env: env},
		{DataDir: t.TempDir(), DB: dsn, URL: "http://" + freeAddr(t), log: &syncBuffer{}, env: env},
	}
	debug := freeAddr(t)
	for i, r := range rs {
		r.flags = []string{"--public-url", rs[0].URL, "--rate-limit", strconv.Itoa(limit)}
		if i == 0 {
			r.flags = append(r.flags, "--debug-addr", debug)
		}
		r.start(t)
	}
	for _, r := range rs {
		r.waitHealthy(t)
	}
	var admin creds
	for _, r := range rs {
		if raw, err := os.ReadFile(filepath.Join(r.DataDir, "admin-credentials.json")); err == nil {
			if err := json.Unmarshal(raw, &admin); err != nil {
				t.Fatal(err)
			}
		}
	}
	adminTok := rs[0].token(t, admin)
	a := rs[0].token(t, limitedClient(t, rs[0], adminTok, "a"))
	other := rs[1].token(t, limitedClient(t, rs[0], adminTok, "b"))

	// Windows are whole minutes: start in one with time to spare, so that
	// the counts do not restart halfway.
	if res, _ := limitedGet(t, rs[0], adminTok, "/v1/m2m/me"); res.StatusCode == 200 {
		if left := resetOf(t, res); left < 20 {
			t.Logf("waiting %d s for the next window", left+1)
			time.Sleep(time.Duration(left+1) * time.Second) // a clock boundary, not another process
		}
	}

	// 150 requests, alternating replicas, at most one each 5 ms (a
	// client's pace; the replicas share counts every 100 ms).
	accepted, refusedOn := 0, map[string]int{}
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	for i := range 150 {
		<-pace.C
		r := rs[i%2]
		res, body := limitedGet(t, r, a, "/v1/m2m/me")
		switch res.StatusCode {
		case 200:
			accepted++
		case 429:
			refusedOn[r.URL]++
			var e struct {
				Message string `json:"message"`
				Code    int    `json:"code"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Code != 429 || e.Message == "" {
				t.Fatalf("429 body: %s", body)
			}
			checkRateHeaders(t, res, limit, true)
		default:
			t.Fatalf("request %d: %d %s", i, res.StatusCode, body)
		}
	}
	t.Logf("accepted %d of 150 at a limit of %d over two replicas; refused per replica %v", accepted, limit, refusedOn)
	// Per-replica counting would accept exactly 100; shared counting
	// accepts the limit plus what both take in before a flush.
	if accepted < limit || accepted > limit+limit/2 {
		t.Fatalf("accepted %d requests, want about %d (never %d, a limit per replica)", accepted, limit, 2*limit)
	}
	if len(refusedOn) != 2 {
		t.Fatalf("refused on %v, want both replicas", refusedOn)
	}
	// FHIR answers the same refusal as an OperationOutcome.
	for _, r := range rs {
		res, body := limitedGet(t, r, a, "/fhir/Patient")
		var oo struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(body, &oo); err != nil || res.StatusCode != 429 || oo.ResourceType != "OperationOutcome" {
			t.Fatalf("%s FHIR over the limit: %d %s", r.URL, res.StatusCode, body)
		}
		checkRateHeaders(t, res, limit, true)
	}
	// The refusals are counted in the replica's /metrics.
	res, err := http.Get("http://" + debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := fmt.Sprintf("ward_rate_limited_total %d\n", refusedOn[rs[0].URL]+1); !strings.Contains(string(metrics), want) ||
		!strings.Contains(string(metrics), `ward_subscription_attempts_total{outcome="failed"} 0`) {
		t.Fatalf("metrics lack %q or the subscription counters:\n%s", want, metrics)
	}
	// Another principal of the same project is not affected.
	for _, r := range rs {
		res, body := limitedGet(t, r, other, "/fhir/Patient")
		if res.StatusCode != 200 {
			t.Fatalf("%s another principal: %d %s", r.URL, res.StatusCode, body)
		}
		checkRateHeaders(t, res, limit, false)
	}
}

// limitedClient creates an M2M client with full access and returns its
// credentials.
func limitedClient(t *testing.T, w *ward, adminTok, name string) creds {
	t.Helper()
	var c struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	if st := w.api(t, adminTok, "POST", "/m2m", `{"name":"`+name+`","accessPolicy":{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}}`, &c); st != 200 {
		t.Fatalf("create M2M client: %d", st)
	}
	var s struct {
		Secret string `json:"secret"`
	}
	if st := w.api(t, adminTok, "POST", "/m2m/"+c.ID+"/rotate-secret", "", &s); st != 200 {
		t.Fatalf("client secret: %d", st)
	}
	return creds{ClientID: c.ClientID, ClientSecret: s.Secret}
}

func limitedGet(t *testing.T, w *ward, token, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", w.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// resetOf is the RateLimit header's t: seconds until the window ends.
func resetOf(t *testing.T, res *http.Response) int {
	t.Helper()
	_, after, ok := strings.Cut(res.Header.Get("RateLimit"), ";t=")
	n, err := strconv.Atoi(after)
	if !ok || err != nil {
		t.Fatalf("RateLimit %q has no t", res.Header.Get("RateLimit"))
	}
	return n
}

// checkRateHeaders checks the draft's fields (and Retry-After on a
// refusal, equal to the window's remaining seconds).
func checkRateHeaders(t *testing.T, res *http.Response, limit int, refused bool) {
	t.Helper()
	if p := res.Header.Get("RateLimit-Policy"); p != `"principal";q=`+strconv.Itoa(limit)+`;w=60` {
		t.Fatalf("RateLimit-Policy %q", p)
	}
	rl := res.Header.Get("RateLimit")
	reset := resetOf(t, res)
	if reset < 1 || reset > 60 {
		t.Fatalf("RateLimit %q: t out of the window", rl)
	}
	if refused {
		if !strings.HasPrefix(rl, `"principal";r=0;`) || res.Header.Get("Retry-After") != strconv.Itoa(reset) {
			t.Fatalf("refusal: RateLimit %q, Retry-After %q", rl, res.Header.Get("Retry-After"))
		}
	} else if strings.HasPrefix(rl, `"principal";r=0;`) {
		t.Fatalf("an unaffected principal has nothing left: %q", rl)
	}
}
