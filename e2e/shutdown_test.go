package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestShutdownUnderLoad sends SIGTERM to `ward serve` while clients create
// Patients as fast as they can and a Subscription delivers each create to
// a webhook that answers slowly, and never, to its first requests. Then:
//   - every request the server handled (its access log names each request
//     id) reached its client in full; the clients' other requests were
//     refused before the server read them;
//   - the server exited within --shutdown-grace, with a log line per step;
//   - no delivery was marked failed (one attempt is all a delivery gets
//     here, so a stop counted as a failure would fail it): those cut at the
//     end of the grace were released, and a restarted server delivers
//     every acknowledged create.
func TestShutdownUnderLoad(t *testing.T) {
	const grace = 4 * time.Second
	var hooks atomic.Int32
	release := make(chan struct{})
	var mu sync.Mutex
	delivered := map[string]bool{}
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &res)
		if hooks.Add(1) <= 3 {
			// Held past the grace: the stop must cut these and give them back.
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		} else {
			time.Sleep(50 * time.Millisecond) // a slow endpoint, so some deliveries are in flight at the stop
		}
		mu.Lock()
		delivered[fmt.Sprint(res["id"])] = true
		mu.Unlock()
	}))
	defer rc.Close()
	defer close(release)

	w := startWardWith(t, storetest.Backends()[0], "--shutdown-grace", grace.String(), "--egress-allow", "127.0.0.1/32",
		"--subscription-max-attempts", "1", "--subscription-retry-base", "50ms", "--subscription-retry-max", "100ms")
	tok := w.token(t, w.Admin)
	st, sub := w.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Shutdown", rc.URL))
	if st != 201 {
		t.Fatalf("subscription: %d %v", st, sub)
	}
	subID := sub["id"].(string)

	type outcome struct {
		id   string // request id
		err  error  // nil: a whole answer
		resp string // the created Patient's id, for a 201
	}
	var outcomes sync.Map
	var sent atomic.Int32
	var clients sync.WaitGroup
	refused := make(chan struct{})
	for c := range 8 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			hc := &http.Client{Timeout: 2 * grace}
			for n := 0; ; n++ {
				select {
				case <-refused:
					return
				default:
				}
				id := fmt.Sprintf("shutdown-%d-%d", c, n)
				b, _ := json.Marshal(patient("Shutdown"))
				req, _ := http.NewRequest("POST", w.URL+"/fhir/Patient", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/fhir+json")
				req.Header.Set("x-oystehr-request-id", id)
				sent.Add(1)
				o := outcome{id: id}
				res, err := hc.Do(req)
				if err == nil {
					var body []byte
					body, err = io.ReadAll(res.Body)
					res.Body.Close()
					var p map[string]any
					if err == nil && res.StatusCode == 201 {
						if jerr := json.Unmarshal(body, &p); jerr != nil {
							err = fmt.Errorf("incomplete answer (%d bytes): %w", len(body), jerr)
						}
						o.resp = fmt.Sprint(p["id"])
					} else if err == nil {
						err = fmt.Errorf("status %d: %s", res.StatusCode, body)
					}
				}
				o.err = err
				outcomes.Store(id, o)
				if err != nil {
					time.Sleep(5 * time.Millisecond) // throttles retries against a stopped server; no synchronisation
				}
			}
		}()
	}
	waitFor(t, "load and deliveries in flight", 30*time.Second, func() bool { return sent.Load() > 200 && hooks.Load() > 10 })

	exited := make(chan time.Duration, 1)
	stopped := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.cmd.Wait(); exited <- time.Since(stopped) }()
	select {
	case took := <-exited:
		if took > grace {
			t.Errorf("ward exited %v after SIGTERM, more than the grace %v", took, grace)
		}
		t.Logf("ward exited %v after SIGTERM", took)
	case <-time.After(3 * grace):
		t.Fatalf("ward did not exit after SIGTERM")
	}
	close(refused)
	clients.Wait()

	// What the server handled, from its access log.
	handled := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(w.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
			Status    int    `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "request" && strings.HasPrefix(line.RequestID, "shutdown-") {
			handled[line.RequestID] = line.Status
		}
	}
	var acked []string
	var complete, failedBefore int
	outcomes.Range(func(_, v any) bool {
		o := v.(outcome)
		status, seen := handled[o.id]
		switch {
		case o.err == nil:
			complete++
			acked = append(acked, o.resp)
		case seen:
			t.Errorf("request %s was handled (status %d) but its client got: %v", o.id, status, o.err)
		default:
			failedBefore++
			if !isRefusal(o.err) {
				t.Errorf("request %s, never handled, failed with %v; want a refused or reset connection", o.id, o.err)
			}
		}
		return true
	})
	t.Logf("%d requests answered in full, %d refused after the stop", complete, failedBefore)
	if complete == 0 {
		t.Fatal("no request was answered")
	}
	for _, step := range []string{"shutdown: stopping", "shutdown: http server stopped", "shutdown: background work stopped",
		"shutdown: closed zambda workers", "shutdown: closed store", "shutdown: done", "delivery cut by the stop, released"} {
		if !strings.Contains(w.log.String(), step) {
			t.Errorf("no log line %q", step)
		}
	}

	// Nothing has failed, and a restart delivers what the stop released.
	w.launch(t)
	for ref, ev := range w.events(t, tok, subID) {
		if ev[0] == "failed" {
			t.Errorf("delivery of %s is failed (%s attempts): the stop was counted against it", ref, ev[1])
		}
	}
	waitFor(t, "every acknowledged create to be delivered", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range acked {
			if !delivered[id] {
				return false
			}
		}
		return true
	})
}

// isRefusal: the request never reached a handler: the connection was
// refused, or reset or closed before the request was read (it was queued
// on the closed listener, or sent on a keep-alive connection the server
// closed as idle).
func isRefusal(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return strings.Contains(err.Error(), "server closed idle connection")
}
