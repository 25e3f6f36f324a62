package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/hl7v2"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// labStandIn is a loopback lab speaking HL7 v2 over MLLP, as a reference
// lab's interface engine does: it takes ORM^O01 orders, drops a copy of
// a control id it has already taken (answering AA again), ACKs, and then
// sends an ORU^R01 for each order to Ward's MLLP listener, twice (a lab
// resending after a lost ACK), with the route's secret in MSH-8. The
// test's node side tells it the route (guid and secret) over HTTP
// (POST /route), since only routeCreate's caller learns the secret.
type labStandIn struct {
	t        *testing.T
	ln       net.Listener
	control  *httptest.Server
	wardMLLP string

	mu      sync.Mutex
	route   struct{ RouteGUID, ResultSecret string }
	orders  map[string]bool // control ids taken
	frames  int
	results []string // the ACK codes Ward answered the ORUs with
	sending sync.WaitGroup
}

func newLabStandIn(t *testing.T, wardMLLP string) *labStandIn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &labStandIn{t: t, ln: ln, wardMLLP: wardMLLP, orders: map[string]bool{}}
	l.control = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch r.URL.Path {
		case "/route":
			if err := json.NewDecoder(r.Body).Decode(&l.route); err != nil {
				http.Error(w, err.Error(), 400)
			}
		case "/state":
			_ = json.NewEncoder(w).Encode(map[string]any{"orders": len(l.orders), "frames": l.frames, "results": l.results})
		}
	}))
	go l.accept()
	t.Cleanup(func() { ln.Close(); l.control.Close(); l.sending.Wait() })
	return l
}

func (l *labStandIn) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				fr, err := hl7v2.ReadFrame(r, 1<<20)
				if err != nil {
					return
				}
				ack, oru := l.order(fr)
				if err := hl7v2.WriteFrame(c, ack); err != nil {
					return
				}
				if oru != "" {
					l.sending.Add(1)
					go func() { defer l.sending.Done(); l.sendResult(oru); l.sendResult(oru) }()
				}
			}
		}()
	}
}

// order checks an ORM^O01 and returns the ACK and, for a new order, the
// ORU^R01 to send back.
func (l *labStandIn) order(fr []byte) ([]byte, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames++
	m, err := hl7v2.Parse(fr)
	if err != nil {
		l.t.Errorf("lab: the order does not parse: %v", err)
		return []byte("MSH|^~\\&|LAB\rMSA|AR|\r"), ""
	}
	msh := m.Segments[0]
	ctrl := msh.V(10)
	ack := hl7v2.NewMessage(hl7v2.Value("LAB"), hl7v2.Value("LAB"), hl7v2.Value(msh.V(3)), hl7v2.Value(msh.V(4)),
		hl7v2.Value(time.Now().UTC().Format("20060102150405")), hl7v2.Value(""), hl7v2.Components("ACK", "O01", "ACK"),
		hl7v2.Value("LA"+ctrl), hl7v2.Value("P"), hl7v2.Value("2.5.1"))
	if msh.C(9, 1) != "ORM" || msh.C(9, 2) != "O01" || msh.V(12) != "2.5.1" {
		l.t.Errorf("lab: not an ORM^O01 v2.5.1: %q", fr)
	}
	obr, ok := m.Segment("OBR")
	if !ok || obr.V(2) == "" {
		ack.Add("MSA", hl7v2.Value("AR"), hl7v2.Value(ctrl), hl7v2.Value("no OBR with a placer order number"))
		return ack.Encode(), ""
	}
	ack.Add("MSA", hl7v2.Value("AA"), hl7v2.Value(ctrl))
	if l.orders[ctrl] {
		return ack.Encode(), "" // a copy: acknowledged, not processed again
	}
	l.orders[ctrl] = true
	oru := "MSH|^~\\&|LAB|LAB|WARD|" + l.route.RouteGUID + "|20261207101500|" + l.route.ResultSecret + "|ORU^R01^ORU_R01|R" + ctrl + "|P|2.5.1\r" +
		"PID|1||x\r" +
		"OBR|1|" + obr.V(2) + "||" + obr.C(4, 1) + "^" + obr.C(4, 2) + "^L|||20261207093000+0000||||||||||||||||||F\r" +
		"OBX|1|NM|2345-7^Glucose^LN||101|mg/dL|70-99|H|||F\r"
	return ack.Encode(), oru
}

// sendResult sends an ORU to Ward and records the ACK code.
func (l *labStandIn) sendResult(oru string) {
	c, err := net.DialTimeout("tcp", l.wardMLLP, 5*time.Second)
	if err != nil {
		l.t.Errorf("lab: dial Ward's MLLP listener: %v", err)
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := hl7v2.WriteFrame(c, []byte(oru)); err != nil {
		l.t.Errorf("lab: send result: %v", err)
		return
	}
	fr, err := hl7v2.ReadFrame(bufio.NewReader(c), 1<<20)
	if err != nil {
		l.t.Errorf("lab: no ACK from Ward: %v", err)
		return
	}
	m, err := hl7v2.Parse(fr)
	code := "?"
	if err == nil {
		msa, _ := m.Segment("MSA")
		code = msa.V(1)
	}
	l.mu.Lock()
	l.results = append(l.results, code)
	l.mu.Unlock()
}

// mllpExchange sends raw (framed unless frame is false) to addr and
// returns the answer frame, or "" with the error when the connection
// closed without one.
func mllpExchange(t *testing.T, addr string, raw []byte, frame bool) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if frame {
		err = hl7v2.WriteFrame(c, raw)
	} else {
		_, err = c.Write(raw)
	}
	if err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	fr, err := hl7v2.ReadFrame(r, 1<<20)
	if err != nil {
		return "", err
	}
	if _, err := hl7v2.ReadFrame(r, 1<<20); err == nil && !frame {
		t.Error("a second frame after garbage")
	}
	return string(fr), nil
}

// TestLabsWithSDK drives the SDK's lab service against a real `ward serve`
// with its MLLP listener on: routes, the compendium, submit to a loopback
// lab that ACKs and sends results back, which become a DiagnosticReport
// based on the ServiceRequest; then hostile MLLP input at Ward's listener.
func TestLabsWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			mllp := freeAddr(t)
			lab := newLabStandIn(t, mllp)
			w := startWardWith(t, b, "--egress-allow", "127.0.0.1/32", "--mllp-addr", mllp, "--lab-ack-timeout", "5s")
			other := w.createProject(t, "other")
			nodeTest(t, "lab.test.mjs", map[string]string{
				"WARD_URL":               w.URL,
				"WARD_ADMIN_CREDENTIALS": filepath.Join(w.DataDir, "admin-credentials.json"),
				"WARD_B_CLIENT_ID":       other.ClientID,
				"WARD_B_CLIENT_SECRET":   other.ClientSecret,
				"LAB_MLLP":               lab.ln.Addr().String(),
				"LAB_CONTROL":            lab.control.URL,
			})
			lab.sending.Wait()
			lab.mu.Lock()
			orders, frames, results := len(lab.orders), lab.frames, append([]string(nil), lab.results...)
			route := lab.route
			lab.mu.Unlock()
			// Two submits of one order: one order taken by the lab, the
			// second never sent (Ward knew the lab had accepted it).
			if orders != 1 || frames != 1 {
				t.Errorf("lab took %d orders in %d frames, want 1 in 1", orders, frames)
			}
			if strings.Join(results, ",") != "AA,AA" {
				t.Errorf("Ward answered the results (sent twice) with %v, want AA,AA", results)
			}

			// Hostile input at the listener.
			good := "MSH|^~\\&|LAB|LAB|WARD|" + route.RouteGUID + "|20261207101500|" + route.ResultSecret + "|ORU^R01|H1|P|2.5.1\rOBR|1|nope||X^Y^L\r"
			tests := []struct {
				name  string
				raw   []byte
				frame bool
				want  string // in the answer; "" for a closed connection without one
			}{
				{"wrong secret", []byte(strings.Replace(good, route.ResultSecret, "guessed", 1)), true, "MSA|AR|H1|unknown route or wrong secret"},
				{"unknown order", []byte(good), true, "MSA|AR|H1|OBR 1: ServiceRequest nope is not known"},
				{"not HL7", []byte("hello"), true, "MSA|AR"},
				{"garbage outside a frame", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, "MSA|AR"},
				{"oversized", []byte(good + "NTE|1||" + strings.Repeat("x", 1<<20) + "\r"), true, "MSA|AR||mllp: frame too large"},
			}
			for _, tt := range tests {
				got, err := mllpExchange(t, mllp, tt.raw, tt.frame)
				if tt.name == "oversized" && err != nil {
					// Ward answered and closed while the rest was still
					// being written: the reset may overtake its answer.
					continue
				}
				if !strings.Contains(got, tt.want) {
					t.Errorf("%s: answer %q (%v), want %q", tt.name, got, err, tt.want)
				}
			}
			// The listener still serves after all that.
			if got, _ := mllpExchange(t, mllp, []byte(good), true); !strings.Contains(got, "MSA|AR|H1") {
				t.Errorf("after hostile input: %q", got)
			}
			if strings.Contains(w.log.String(), route.ResultSecret) {
				t.Error("the route's result secret is in Ward's log")
			}
		})
	}
}
