package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// The parts TestReplicas puts in front of and beside its replicas: an
// S3-compatible store, a round-robin load balancer, clients at several
// loopback addresses; and the scenarios run through them.

// sharedS3 is gofakes3 on loopback with one bucket.
type sharedS3 struct {
	*httptest.Server
	mem    *s3mem.Backend
	bucket string
}

func newSharedS3(t *testing.T, bucket string) *sharedS3 {
	t.Helper()
	mem := s3mem.New()
	if err := mem.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(s.Close)
	return &sharedS3{Server: s, mem: mem, bucket: bucket}
}

// objects is how many objects the bucket holds.
func (s *sharedS3) objects(t *testing.T) int {
	t.Helper()
	objs, err := s.mem.ListBucket(s.bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	return len(objs.Contents)
}

// rrProxy is a load balancer as an operator would put in front of the
// replicas: each request goes to the next replica in turn (a dead one
// answers 502, no retry), X-Forwarded-For gets the client's address
// appended, Forwarded is dropped, and Host stays the public one.
type rrProxy struct {
	*httptest.Server
	next   atomic.Uint64
	failed atomic.Int64 // requests answered 502 (replica unreachable)
}

func newRRProxy(t *testing.T, rs []*ward) *rrProxy {
	t.Helper()
	targets := make([]*url.URL, len(rs))
	for i, r := range rs {
		u, err := url.Parse(r.URL)
		if err != nil {
			t.Fatal(err)
		}
		targets[i] = u
	}
	lb := &rrProxy{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targets[(lb.next.Add(1)-1)%uint64(len(targets))])
			// Keep what earlier hops (or the client) wrote, as nginx's
			// $proxy_add_x_forwarded_for does: Ward must read past it.
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			lb.failed.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	lb.Server = httptest.NewServer(proxy)
	t.Cleanup(lb.Close)
	return lb
}

// clientFromAddr is an HTTP client whose connections come from ip (any of
// 127.0.0.0/8 on Linux), a client machine of its own as the proxy sees
// it. It does not follow redirects.
func clientFromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// testZ3AcrossReplicas: with every replica on one S3 store, an object
// uploaded through replica 1 is listed and downloaded through 2 and 3, a
// presigned URL made by one replica works on another (it points at the
// public URL), a tampered one is refused everywhere, and no byte lands in
// a data directory.
func testZ3AcrossReplicas(t *testing.T, rs []*ward, lb *rrProxy, s3 *sharedS3, adminTok string) {
	if st := rs[0].api(t, adminTok, "PUT", "/z3/shared-reports", "", nil); st != 200 {
		t.Fatalf("create bucket: %d", st)
	}
	data := bytes.Repeat([]byte("replicated bytes "), 4096)
	// onReplica sends a presigned URL's request to replica r instead of
	// the load balancer.
	onReplica := func(signed string, r *ward) string {
		if !strings.HasPrefix(signed, lb.URL+"/") {
			t.Fatalf("presigned URL %s is not under the public URL %s", signed, lb.URL)
		}
		return r.URL + strings.TrimPrefix(signed, lb.URL)
	}
	up := rs[0].presign(t, adminTok, "shared-reports", "2026/q4.bin", "upload")
	req, _ := http.NewRequest("PUT", onReplica(up, rs[0]), bytes.NewReader(data))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 && res.StatusCode != 204 {
		t.Fatalf("upload through %s: %d", rs[0].URL, res.StatusCode)
	}
	want := sha256.Sum256(data)
	for i, signer := range rs {
		for j, r := range rs {
			if i == j {
				continue
			}
			var list []struct {
				Key  string `json:"key"`
				Size int64  `json:"size"`
			}
			if st := r.api(t, adminTok, "GET", "/z3/shared-reports/2026/", "", &list); st != 200 || len(list) != 1 || list[0].Size != int64(len(data)) {
				t.Fatalf("list through %s: %d %+v", r.URL, st, list)
			}
			down := signer.presign(t, adminTok, "shared-reports", "2026/q4.bin", "download")
			res, err := http.Get(onReplica(down, r))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || sha256.Sum256(got) != want {
				t.Errorf("URL presigned by replica %d, downloaded through replica %d: %d, %d bytes (want %d)", i+1, j+1, res.StatusCode, len(got), len(data))
			}
		}
	}
	// And as the URL says, through the load balancer.
	res, err = http.Get(rs[1].presign(t, adminTok, "shared-reports", "2026/q4.bin", "download"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || sha256.Sum256(got) != want {
		t.Errorf("presigned download through the load balancer: %d, %d bytes", res.StatusCode, len(got))
	}
	// Hostile: another object's path under a valid signature, and a
	// changed signature, on a replica that did not sign.
	down := rs[0].presign(t, adminTok, "shared-reports", "2026/q4.bin", "download")
	for name, bad := range map[string]string{
		"other path": strings.Replace(down, "q4.bin", "q3.bin", 1),
		"bad sig":    tamperQuery(t, down),
	} {
		res, err := http.Get(onReplica(bad, rs[2]))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode < 400 || res.StatusCode >= 500 {
			t.Errorf("%s: %d, want a 4xx refusal", name, res.StatusCode)
		}
	}
	if n := s3.objects(t); n == 0 {
		t.Error("no object reached the S3 store")
	}
	for _, r := range rs {
		if m, _ := filepath.Glob(filepath.Join(r.DataDir, "z3", "*", "*")); len(m) > 0 {
			t.Errorf("object bytes in %s with the S3 backend: %v", r.DataDir, m)
		}
	}
}

// tamperQuery flips one character of every query value that looks like a
// signature (the longest one).
func tamperQuery(t *testing.T, signed string) string {
	t.Helper()
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	longest := ""
	for k, v := range q {
		if len(v) > 0 && len(v[0]) > len(q.Get(longest)) {
			longest = k
		}
	}
	if longest == "" {
		t.Fatalf("presigned URL without a query: %s", signed)
	}
	v := []byte(q.Get(longest))
	if v[0] == 'A' {
		v[0] = 'B'
	} else {
		v[0] = 'A'
	}
	q.Set(longest, string(v))
	u.RawQuery = q.Encode()
	return u.String()
}

// devSignInVia posts the developer sign-in form (the built-in ward-cli
// client) through c and returns the status: 200 (the consent page) or
// 303 when signed in, 401 wrong credentials, 429 throttled.
func devSignInVia(t *testing.T, c *http.Client, base, email, password string, header http.Header) int {
	t.Helper()
	challenge := sha256.Sum256([]byte(email + "-verifier"))
	form := url.Values{"response_type": {"code"}, "client_id": {"ward-cli"}, "redirect_uri": {"http://127.0.0.1:9/cb"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"},
		"state": {"s"}, "action": {"signin"}, "email": {email}, "password": {password}}
	req, _ := http.NewRequest("POST", base+"/oauth/authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// testThrottleBehindProxy: sign-in throttling counts the client's address
// as the trusted proxy reports it, across replicas (the proxy spreads the
// attempts over all three). Without --trusted-proxies every client would
// be the proxy's address and one address's failures would lock out all.
func testThrottleBehindProxy(t *testing.T, lb *rrProxy, adminTok string) {
	w := &ward{URL: lb.URL}
	var role struct{ ID string }
	if st := w.api(t, adminTok, "POST", "/iam/role", `{"name":"throttle-dev","accessPolicy":{"rule":[{"resource":"IAM:Role:*","action":"IAM:ListAllRoles","effect":"Allow"}]}}`, &role); st != 200 {
		t.Fatalf("create role: %d", st)
	}
	const email, password = "dev61@example.org", "correct horse battery staple"
	var inv struct {
		InvitationURL string `json:"invitationUrl"`
	}
	if st := w.api(t, adminTok, "POST", "/developer/invite", `{"email":"`+email+`","practitioner":{"resourceType":"Practitioner","name":[{"family":"Sixtyone"}]},"roles":["`+role.ID+`"]}`, &inv); st != 200 {
		t.Fatalf("invite developer: %d", st)
	}
	res, err := http.Post(inv.InvitationURL, "application/json", strings.NewReader(`{"password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("accept invitation: %d", res.StatusCode)
	}
	signedIn := func(st int) bool { return st == 200 || st == 303 }
	a, b, c, d := clientFromAddr("127.0.0.2"), clientFromAddr("127.0.0.3"), clientFromAddr("127.0.0.4"), clientFromAddr("127.0.0.5")

	// 60 accounts guessed from A: 20 failures, then A is refused for all.
	counts := map[int]int{}
	for i := range 60 {
		counts[devSignInVia(t, a, lb.URL, fmt.Sprintf("guess%d@example.org", i), "wrong password", nil)]++
	}
	if counts[401] != 20 || counts[429] != 40 {
		t.Errorf("60 failed sign-ins on 60 accounts from one address: %v, want 20 401s then 429s", counts)
	}
	// A client at A naming another address itself is still A.
	spoof := http.Header{"X-Forwarded-For": {"203.0.113.7"}, "Forwarded": {"for=203.0.113.8"}}
	if st := devSignInVia(t, a, lb.URL, "guess61@example.org", "wrong password", spoof); st != 429 {
		t.Errorf("A with a forged X-Forwarded-For: %d, want 429", st)
	}
	// Account 61 from B (correct password): not locked out by A.
	if st := devSignInVia(t, b, lb.URL, email, password, nil); !signedIn(st) {
		t.Errorf("account 61 from another address after A's failures: %d, want signed in", st)
	}

	// One account failing 5 times from C: C is refused for it, even with
	// the right password; D still signs in.
	for i := range 5 {
		if st := devSignInVia(t, c, lb.URL, email, "wrong password", nil); st != 401 {
			t.Errorf("failure %d from C: %d, want 401", i+1, st)
		}
	}
	if st := devSignInVia(t, c, lb.URL, email, password, nil); st != 429 {
		t.Errorf("C after 5 failures on the account, right password: %d, want 429", st)
	}
	if st := devSignInVia(t, d, lb.URL, email, password, nil); !signedIn(st) {
		t.Errorf("D after C's 5 failures: %d, want signed in", st)
	}
}

// testPutsThroughProxy: three PUTs of one new resource at once through
// the proxy (one per replica) all succeed, none 409.
func testPutsThroughProxy(t *testing.T, lb *rrProxy, adminTok string) {
	const n = 3
	statuses := make(chan int, n)
	for i := range n {
		go func() {
			body := fmt.Sprintf(`{"resourceType":"Patient","id":"lb-race","birthDate":"2001-02-%02d"}`, i+1)
			req, _ := http.NewRequest("PUT", lb.URL+"/fhir/Patient/lb-race", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+adminTok)
			req.Header.Set("Content-Type", "application/fhir+json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	counts := map[int]int{}
	for range n {
		counts[<-statuses]++
	}
	if counts[200]+counts[201] != n || counts[201] != 1 {
		t.Errorf("%d concurrent PUTs through the proxy: %v, want one 201 and 200s", n, counts)
	}
}

// testKillUnderLoad: writers create Patients through the proxy while one
// replica is SIGKILLed and started again. Every create answered 2xx is
// readable afterwards, and a subscription on them delivers every one (at
// least once).
func testKillUnderLoad(t *testing.T, rs []*ward, lb *rrProxy, rc *receiver, adminTok string) {
	w := &ward{URL: lb.URL}
	st, sub := w.fhirDo(t, adminTok, "POST", "Subscription", subscriptionFor("Patient?family=Killtest", rc.URL+"/kill"))
	if st != 201 || sub["status"] != "active" {
		t.Fatalf("create subscription: %d %v", st, sub)
	}
	var (
		mu       sync.Mutex
		acked    []string
		statuses = map[int]int{}
	)
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	client := &http.Client{Timeout: 30 * time.Second}
	create := func() {
		b, _ := json.Marshal(patient("Killtest"))
		req, _ := http.NewRequest("POST", lb.URL+"/fhir/Patient", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+adminTok)
		req.Header.Set("Content-Type", "application/fhir+json")
		res, err := client.Do(req)
		if err != nil {
			mu.Lock()
			statuses[0]++
			mu.Unlock()
			return
		}
		defer res.Body.Close()
		var out struct {
			ID string `json:"id"`
		}
		derr := json.NewDecoder(res.Body).Decode(&out)
		mu.Lock()
		defer mu.Unlock()
		statuses[res.StatusCode]++
		if res.StatusCode/100 == 2 {
			if derr != nil || out.ID == "" {
				t.Errorf("a %d create without an id: %v", res.StatusCode, derr)
				return
			}
			acked = append(acked, out.ID)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					create()
				}
			}
		}()
	}
	atLeast := func(what string, n int) {
		waitFor(t, what, 30*time.Second, func() bool { return ackedN() >= n })
	}
	atLeast("writes before the kill", 30)
	victim := rs[1]
	failedBefore := lb.failed.Load()
	victim.kill9(t)
	atLeast("writes while a replica is down", ackedN()+30)
	if lb.failed.Load() == failedBefore {
		t.Error("no request failed while a replica was down: was it killed?")
	}
	victim.launch(t)
	atLeast("writes after the restart", ackedN()+30)
	close(stop)
	wg.Wait()
	mu.Lock()
	ids := append([]string(nil), acked...)
	t.Logf("creates under a kill -9: %d acknowledged, statuses %v", len(ids), statuses)
	mu.Unlock()

	for _, id := range ids {
		if st, _ := w.fhirDo(t, adminTok, "GET", "Patient/"+id, nil); st != 200 {
			t.Errorf("acknowledged Patient/%s: read %d", id, st)
		}
	}
	missing := func() []string {
		seen := map[string]bool{}
		for _, d := range rc.deliveries() {
			if d.Path == "/kill" {
				if id, ok := d.Resource["id"].(string); ok {
					seen[id] = true
				}
			}
		}
		var out []string
		for _, id := range ids {
			if !seen[id] {
				out = append(out, id)
			}
		}
		return out
	}
	// A delivery leased by the killed replica waits out its lease
	// (the attempt timeout plus 30 s) before another replica takes it.
	stopped := time.Now()
	deadline := stopped.Add(90 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling interval, bounded by the deadline
	}
	if m := missing(); len(m) > 0 {
		t.Errorf("%d of %d acknowledged creates never delivered, e.g. %v", len(m), len(ids), m[:min(5, len(m))])
	}
	n := 0
	for _, d := range rc.deliveries() {
		if d.Path == "/kill" {
			n++
		}
	}
	t.Logf("every acknowledged create delivered %s after the reads (%d deliveries for %d creates)", time.Since(stopped).Round(100*time.Millisecond), n, len(ids))
}
