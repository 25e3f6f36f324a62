package e2e

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// leaseCluster is `ward serve` replicas on one PostgreSQL and one data
// directory (Z3 holds the zambda code every replica runs), each with a
// work directory of its own, as behind one load balancer (one public URL).
type leaseCluster struct {
	dsn, dataDir, publicURL string
	env, flags              []string
	db                      *sql.DB
	made                    int // replicas made so far
}

func newLeaseCluster(t *testing.T, flags ...string) *leaseCluster {
	t.Helper()
	b := storetest.Backends()[1]
	if b.Name != "postgres" {
		t.Fatal("backend 1 is not PostgreSQL")
	}
	c := &leaseCluster{dsn: b.DSN(t), dataDir: t.TempDir(), publicURL: "http://" + freeAddr(t), flags: flags,
		env: []string{"WARD_SECRETS_KEY=" + base64.StdEncoding.EncodeToString(seal.NewKey())}}
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c.db = db
	return c
}

// replica makes a replica, not started; the first one made serves the
// public URL.
func (c *leaseCluster) replica(t *testing.T) *ward {
	url := c.publicURL
	if c.made > 0 {
		url = "http://" + freeAddr(t)
	}
	c.made++
	return &ward{DataDir: c.dataDir, DB: c.dsn, URL: url, log: &syncBuffer{}, env: c.env,
		flags: append([]string{"--public-url", c.publicURL, "--work-dir", t.TempDir()}, c.flags...)}
}

// admin reads the credentials the first start wrote.
func (c *leaseCluster) admin(t *testing.T) creds {
	t.Helper()
	var admin creds
	raw, err := os.ReadFile(filepath.Join(c.dataDir, "admin-credentials.json"))
	if err == nil {
		err = json.Unmarshal(raw, &admin)
	}
	if err != nil {
		t.Fatalf("admin credentials: %v", err)
	}
	return admin
}

// signal sends sig to a replica's process.
func (w *ward) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// hangFirst is a zambda whose first run of a tick notes that it is running
// (an Observation, with its execution role's token) and hangs until its
// replica is killed; the retry answers 200. The request id ends in the
// attempt number.
const hangFirst = `exports.index = async (event, context) => {
  if (context.awsRequestId.endsWith('-0')) {
    const res = await fetch(event.secrets.FHIR_BASE + '/Observation', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + event.accessToken, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Observation', status: 'preliminary', code: { text: 'running ' + context.awsRequestId } }),
    });
    if (res.status !== 201) return { statusCode: 500, body: JSON.stringify({ message: 'note: ' + res.status }) };
    await new Promise((resolve) => setTimeout(resolve, 55000));
  }
  return { statusCode: 200, body: '{}' };
};
`

// TestReplicasCronTakeOver: a cron run whose replica is killed (-9)
// mid-run is retried by a survivor once the tick's lease lapses, within
// the function's retry policy; the tick ends with the retry's outcome and
// two runs counted.
func TestReplicasCronTakeOver(t *testing.T) {
	requireNode(t)
	c := newLeaseCluster(t, "--cron-lease", "3s")
	rs := []*ward{c.replica(t), c.replica(t), c.replica(t)}
	for _, r := range rs {
		r.start(t)
	}
	for _, r := range rs {
		r.waitHealthy(t)
	}
	admin := c.admin(t)
	tok := rs[1].token(t, admin)
	var role struct {
		ID string `json:"id"`
	}
	if st := rs[1].api(t, tok, "POST", "/iam/role", `{"name":"noter","accessPolicy":{"rule":[{"resource":"FHIR:Observation:*","action":"FHIR:Create","effect":"Allow"}]}}`, &role); st != 200 {
		t.Fatalf("create role: %d", st)
	}
	if st := rs[1].api(t, tok, "POST", "/secret", `{"name":"FHIR_BASE","value":"`+rs[0].URL+`/fhir"}`, nil); st != 200 {
		t.Fatalf("set secret: %d", st)
	}
	code := zipFiles(t, map[string]string{"index.js": "data:" + hangFirst}, nil)
	// rate(1 hour): the first tick is the creation, and no other comes
	// during the test.
	id := rs[1].deployZambda(t, tok, `{"name":"hangs-once","runtime":"nodejs20.x","triggerMethod":"cron","timeoutInSeconds":60,
		"executionRoleId":"`+role.ID+`","schedule":{"expression":"rate(1 hour)","retryPolicy":{"maximumRetry":1}}}`, code)

	runLine := regexp.MustCompile(`"msg":"cron: run","zambda":"` + id + `","tick":"[^"]*","attempt":1,`)
	var runner *ward
	waitFor(t, "a replica to start the tick's first run", 90*time.Second, func() bool {
		for _, r := range rs {
			if runLine.MatchString(r.log.String()) {
				runner = r
				return true
			}
		}
		return false
	})
	waitFor(t, "the first run to note that it is running", 30*time.Second, func() bool {
		st, out := rs[1].fhirDo(t, tok, "GET", "Observation", nil)
		return st == 200 && strings.Contains(fmt.Sprint(out["entry"]), "running cron-")
	})
	runner.kill9(t)
	killed := time.Now()

	var attempts int
	var outcome, by string
	waitFor(t, "a survivor to retry the tick", 60*time.Second, func() bool {
		err := c.db.QueryRow(`SELECT attempts, outcome, claimed_by FROM zambda_ticks WHERE zambda_id = $1`, id).Scan(&attempts, &outcome, &by)
		return err == nil && outcome != ""
	})
	t.Logf("the retry finished %v after the kill (cron lease 3s)", time.Since(killed).Round(10*time.Millisecond))
	if attempts != 2 || outcome != "status 200" {
		t.Fatalf("tick: %d runs, outcome %q; want 2 runs, the retry answering 200", attempts, outcome)
	}
	var took *ward
	for _, r := range rs {
		if r != runner && strings.Contains(r.log.String(), `"msg":"cron: took over a tick whose lease lapsed","zambda":"`+id) {
			took = r
		}
	}
	if took == nil {
		t.Fatal("no survivor logged taking the tick over")
	}
	if !regexp.MustCompile(`"msg":"cron: run","zambda":"` + id + `","tick":"[^"]*","attempt":2,"max_attempts":2`).MatchString(took.log.String()) {
		t.Fatalf("the survivor did not log the retry as attempt 2 of 2:\n%s", took.log.String())
	}
}

// TestReplicasDeliveryFenced: a replica frozen (SIGSTOP) mid-delivery past
// its lease, then resumed (SIGCONT), cannot overwrite the delivery another
// replica took over and delivered: the receiver sees two sends, not
// three, $events says delivered and lists both attempts (the frozen one's
// marked stale), and the frozen replica logs its result refused.
func TestReplicasDeliveryFenced(t *testing.T) {
	c := newLeaseCluster(t, "--subscription-lease", "2s", "--egress-allow", "127.0.0.1/32")
	var sends atomic.Int32
	firstIn, releaseFirst := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sends.Add(1) == 1 {
			close(firstIn)
			<-releaseFirst // answered only once its sender is frozen and overtaken
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(func() { once.Do(func() { close(releaseFirst) }); rc.Close() })

	frozen := c.replica(t) // alone at first, so it is the one that sends first
	frozen.launch(t)
	admin := c.admin(t)
	tok := frozen.token(t, admin)
	st, sub := frozen.fhirDo(t, tok, "POST", "Subscription", subscriptionFor("Patient?family=Frozen", rc.URL+"/hook"))
	if st != 201 {
		t.Fatalf("create subscription: %d %v", st, sub)
	}
	subID := sub["id"].(string)
	if st, out := frozen.fhirDo(t, tok, "POST", "Patient", patient("Frozen")); st != 201 {
		t.Fatalf("create patient: %d %v", st, out)
	}
	select {
	case <-firstIn:
	case <-time.After(30 * time.Second):
		t.Fatal("the first replica did not send the delivery")
	}
	frozen.signal(t, syscall.SIGSTOP)
	froze := time.Now()
	defer frozen.signal(t, syscall.SIGCONT) // before the cleanup's kill, in case the test stops early

	survivors := []*ward{c.replica(t), c.replica(t)}
	for _, r := range survivors {
		r.start(t)
	}
	for _, r := range survivors {
		r.waitHealthy(t)
	}
	waitFor(t, "a survivor to take the delivery over and deliver it", 60*time.Second, func() bool {
		d := deliveryEvents(t, survivors[0], tok, subID)
		return d.status == "delivered"
	})
	t.Logf("delivered by a survivor %v after the freeze (subscription lease 2s; survivors started meanwhile)", time.Since(froze).Round(10*time.Millisecond))
	once.Do(func() { close(releaseFirst) }) // the frozen sender's answer waits in its socket
	frozen.signal(t, syscall.SIGCONT)
	waitFor(t, "the resumed replica to have its result refused", 30*time.Second, func() bool {
		return strings.Contains(frozen.log.String(), "result refused, the delivery's lease lapsed")
	})

	if n := sends.Load(); n != 2 {
		t.Fatalf("the receiver got %d sends, want 2 (the frozen one and the survivor's)", n)
	}
	d := deliveryEvents(t, survivors[1], tok, subID)
	// The frozen attempt ends as the 500 its receiver answered or, when
	// the survivors took longer than the delivery timeout (10 s) to start
	// and deliver (a loaded machine), as that timeout, which fired on
	// SIGCONT before the answer was read: no HTTP status then. Either way
	// it is stale and the survivor's 200 stands.
	if d.status != "delivered" || len(d.attempts) != 2 || !d.attempts[0].stale || d.attempts[0].status != 500 && d.attempts[0].status != 0 ||
		d.attempts[1].stale || d.attempts[1].status != 200 {
		t.Fatalf("$events: %+v; want delivered, the frozen attempt (500, or none if it timed out) stale, then the survivor's (200)", d)
	}
}

type eventAttempt struct {
	status int
	stale  bool
}

type eventDelivery struct {
	status   string
	attempts []eventAttempt
}

// deliveryEvents reads the subscription's one delivery from $events.
func deliveryEvents(t *testing.T, w *ward, token, subID string) eventDelivery {
	t.Helper()
	st, out := w.fhirDo(t, token, "GET", "Subscription/"+subID+"/$events", nil)
	if st != 200 {
		t.Fatalf("$events: %d %v", st, out)
	}
	var d eventDelivery
	var out2 struct {
		Parameter []struct {
			Name string `json:"name"`
			Part []struct {
				Name      string `json:"name"`
				ValueCode string `json:"valueCode"`
				Part      []struct {
					Name         string `json:"name"`
					ValueInteger int    `json:"valueInteger"`
					ValueBoolean bool   `json:"valueBoolean"`
				} `json:"part"`
			} `json:"part"`
		} `json:"parameter"`
	}
	raw, _ := json.Marshal(out)
	if err := json.Unmarshal(raw, &out2); err != nil {
		t.Fatal(err)
	}
	for _, p := range out2.Parameter {
		if p.Name != "delivery" {
			continue
		}
		for _, part := range p.Part {
			switch part.Name {
			case "status":
				d.status = part.ValueCode
			case "attempt":
				var a eventAttempt
				for _, ap := range part.Part {
					switch ap.Name {
					case "httpStatus":
						a.status = ap.ValueInteger
					case "stale":
						a.stale = ap.ValueBoolean
					}
				}
				d.attempts = append(d.attempts, a)
			}
		}
	}
	return d
}
