package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/hl7v2"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

type fixture struct {
	t     testing.TB
	st    *store.Store
	fsvc  *fhir.Service
	svc   *Service
	admin auth.Principal
	other auth.Principal // admin of a second project
}

func newFixture(t testing.TB, b storetest.Backend, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, st: storetest.Open(t, b)}
	authz := iam.New(f.st, "http://x/invite/", time.Now, iam.Deps{})
	for _, p := range []*auth.Principal{&f.admin, &f.other} {
		creds, err := authz.CreateProject(ctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.st.GetM2MByClientID(ctx, creds.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		*p = auth.Principal{ProjectID: creds.ProjectID, Kind: auth.KindM2M, ID: c.ID}
	}
	f.fsvc = fhir.New(f.st, authz, fhir.Config{DefaultCount: 20, MaxCount: 1000}, time.Now)
	eg, err := egress.New(ctx, egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = New(cfg, f.st, f.fsvc, eg, slog.New(slog.DiscardHandler), time.Now)
	return f
}

func (f *fixture) create(p auth.Principal, typ, body string) string {
	f.t.Helper()
	r, _, err := f.fsvc.Create(context.Background(), p, typ, []byte(body), "")
	if err != nil {
		f.t.Fatalf("create %s: %v", typ, err)
	}
	return r.ID
}

// order creates a Patient, Practitioner, Coverage and a ServiceRequest.
func (f *fixture) order(p auth.Principal) string {
	pt := f.create(p, "Patient", `{"resourceType":"Patient","name":[{"family":"Doe|^~&","given":["Jane"]}],"birthDate":"1980-02-03","gender":"female"}`)
	dr := f.create(p, "Practitioner", `{"resourceType":"Practitioner","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}],"name":[{"family":"House","given":["Greg"]}]}`)
	org := f.create(p, "Organization", `{"resourceType":"Organization","name":"Acme Insurance"}`)
	cov := f.create(p, "Coverage", `{"resourceType":"Coverage","status":"active","subscriberId":"SUB1","beneficiary":{"reference":"Patient/`+pt+`"},"payor":[{"reference":"Organization/`+org+`","display":"Acme Insurance","identifier":{"value":"PAY1"}}]}`)
	return f.create(p, "ServiceRequest", `{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Patient/`+pt+`"},
		"requester":{"reference":"Practitioner/`+dr+`"},"insurance":[{"reference":"Coverage/`+cov+`"}],
		"code":{"coding":[{"system":"urn:ward:lab:lab-1","code":"GLU","display":"Glucose"},{"system":"http://loinc.org","code":"2345-7"}]}}`)
}

// fakeLab is a loopback MLLP lab: it records the frames it receives and
// answers each with answer(frame) (nil: close without answering).
type fakeLab struct {
	ln     net.Listener
	mu     sync.Mutex
	frames []string
	answer func(n int, frame string) []byte
}

func startLab(t testing.TB, answer func(n int, frame string) []byte) *fakeLab {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLab{ln: ln, answer: answer}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
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
					l.mu.Lock()
					l.frames = append(l.frames, string(fr))
					n := len(l.frames)
					l.mu.Unlock()
					a := l.answer(n, string(fr))
					if a == nil {
						return
					}
					if hl7v2.WriteFrame(c, a) != nil {
						return
					}
				}
			}()
		}
	}()
	return l
}

func (l *fakeLab) received() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.frames...)
}

// labAck is the lab's ACK of frame with code (and ERR-8 text).
func labAck(frame, code, text string) []byte {
	m, err := hl7v2.Parse([]byte(frame))
	if err != nil {
		return nil
	}
	a := hl7v2.NewMessage(hl7v2.Value("LAB"), hl7v2.Value("LAB"), hl7v2.Value("WARD"), hl7v2.Value(""), hl7v2.Value("20261207120000"),
		hl7v2.Value(""), hl7v2.Components("ACK", "O01", "ACK"), hl7v2.Value("L1"), hl7v2.Value("P"), hl7v2.Value("2.5.1"))
	a.Add("MSA", hl7v2.Value(code), hl7v2.Value(m.Segments[0].V(10)))
	if text != "" {
		a.Add("ERR", hl7v2.Value(""), hl7v2.Value(""), hl7v2.Value(""), hl7v2.Value("E"), hl7v2.Value(""), hl7v2.Value(""), hl7v2.Value(""), hl7v2.Value(text))
	}
	return a.Encode()
}

func (f *fixture) route(p auth.Principal, addr string) Created {
	f.t.Helper()
	c, err := f.svc.CreateRoute(context.Background(), p.ProjectID, []byte(`{"accountNumber":"ACCT-1","labGuid":"lab-1","mllpAddress":"`+addr+`"}`))
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func submitBody(sr string) []byte {
	return []byte(`{"accountNumber":"ACCT-1","serviceRequest":"ServiceRequest/` + sr + `"}`)
}

func TestSubmitIdempotent(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{})
			lab := startLab(t, func(_ int, fr string) []byte { return labAck(fr, "AA", "") })
			f.route(f.admin, lab.ln.Addr().String())
			sr := f.order(f.admin)
			ctx := context.Background()
			out, err := f.svc.Submit(ctx, f.admin, submitBody(sr))
			if err != nil {
				t.Fatal(err)
			}
			got := lab.received()
			if len(got) != 1 {
				t.Fatalf("lab received %d messages, want 1", len(got))
			}
			m, err := hl7v2.Parse([]byte(got[0]))
			if err != nil {
				t.Fatal(err)
			}
			msh, _ := m.Segment("MSH")
			pid, _ := m.Segment("PID")
			obr, _ := m.Segment("OBR")
			in1, _ := m.Segment("IN1")
			checks := []struct{ name, got, want string }{
				{"MSH-9", msh.C(9, 1) + "^" + msh.C(9, 2), "ORM^O01"},
				{"MSH-10", msh.V(10), out["controlId"].(string)},
				{"MSH-12", msh.V(12), "2.5.1"},
				{"PID-5 (escaped delimiters survive)", pid.C(5, 1), "Doe|^~&"},
				{"PID-7", pid.V(7), "19800203"},
				{"PID-8", pid.V(8), "F"},
				{"IN1-36", in1.V(36), "SUB1"},
				{"OBR-2", obr.V(2), sr},
				{"OBR-4", obr.C(4, 1) + "^" + obr.C(4, 3), "GLU^L"},
				{"OBR-16 NPI", obr.C(16, 1), "1234567893"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			// The same submit again: answered from the record, not sent.
			again, err := f.svc.Submit(ctx, f.admin, submitBody(sr))
			if err != nil || again["duplicate"] != true || again["controlId"] != out["controlId"] {
				t.Fatalf("second submit: %v, %v", again, err)
			}
			if n := len(lab.received()); n != 1 {
				t.Fatalf("lab received %d messages after a repeated submit, want 1", n)
			}
		})
	}
}

func TestSubmitRetriesWithoutAnswer(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{AckTimeout: 2 * time.Second, RetryDelay: time.Millisecond})
	// The first connection is dropped unanswered; the second is ACKed.
	lab := startLab(t, func(n int, fr string) []byte {
		if n == 1 {
			return nil
		}
		return labAck(fr, "AA", "")
	})
	f.route(f.admin, lab.ln.Addr().String())
	sr := f.order(f.admin)
	if _, err := f.svc.Submit(context.Background(), f.admin, submitBody(sr)); err != nil {
		t.Fatal(err)
	}
	got := lab.received()
	if len(got) != 2 {
		t.Fatalf("lab received %d messages, want 2", len(got))
	}
	// Both attempts carry the same control id: the lab can drop the copy.
	a, _ := hl7v2.Parse([]byte(got[0]))
	b, _ := hl7v2.Parse([]byte(got[1]))
	if a.Segments[0].V(10) != b.Segments[0].V(10) {
		t.Fatalf("retry changed the control id: %q, %q", a.Segments[0].V(10), b.Segments[0].V(10))
	}
}

func TestSubmitErrors(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{AckTimeout: 300 * time.Millisecond, RetryDelay: time.Millisecond, Attempts: 2})
	reject := startLab(t, func(_ int, fr string) []byte { return labAck(fr, "AR", "account ACCT-1 is suspended") })
	silent := startLab(t, func(int, string) []byte { return nil })
	ctx := context.Background()
	sr := f.order(f.admin)
	body := func(route string) []byte {
		return []byte(`{"accountNumber":"ACCT-1","routeGuid":"` + route + `","serviceRequest":["ServiceRequest/` + sr + `"]}`)
	}
	rej := f.route(f.admin, reject.ln.Addr().String())
	sil := f.route(f.admin, silent.ln.Addr().String())
	otherRoute := f.route(f.other, reject.ln.Addr().String())
	otherSR := f.order(f.other)
	tests := []struct {
		name string
		p    auth.Principal
		body []byte
		kind error
		text string
	}{
		{"lab rejects", f.admin, body(rej.RouteGUID), fault.ErrInvalid, "account ACCT-1 is suspended"},
		{"lab never answers", f.admin, body(sil.RouteGUID), fault.ErrUnavailable, "did not acknowledge"},
		{"another project's route", f.admin, body(otherRoute.RouteGUID), fault.ErrNotFound, "no lab route"},
		{"another project's ServiceRequest", f.admin, []byte(`{"accountNumber":"ACCT-1","routeGuid":"` + rej.RouteGUID + `","serviceRequest":"ServiceRequest/` + otherSR + `"}`), fault.ErrNotFound, ""},
		{"two routes share the account", f.admin, submitBody(sr), fault.ErrInvalid, "routeGuid"},
		{"not a ServiceRequest", f.admin, []byte(`{"accountNumber":"ACCT-1","serviceRequest":"Patient/x"}`), fault.ErrInvalid, "ServiceRequest/<id>"},
		{"no account", f.admin, []byte(`{"serviceRequest":"ServiceRequest/x"}`), fault.ErrInvalid, "accountNumber"},
		{"not JSON", f.admin, []byte(`[`), fault.ErrInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Submit(ctx, tt.p, tt.body)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("got %v, want %v containing %q", err, tt.kind, tt.text)
			}
		})
	}
	if n := len(silent.received()); n != 2 {
		t.Errorf("the silent lab got %d attempts, want 2", n)
	}
}

func TestRouteAddressChecked(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	for _, addr := range []string{"10.0.0.1:2575", "169.254.169.254:80", "nohost", "127.0.0.1:0", ":2575", "127.0.0.1:99999"} {
		_, err := f.svc.CreateRoute(context.Background(), f.admin.ProjectID, []byte(`{"accountNumber":"A","labGuid":"L","mllpAddress":"`+addr+`"}`))
		if !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("mllpAddress %q: %v, want a 400", addr, err)
		}
	}
	if _, err := f.svc.CreateRoute(context.Background(), f.admin.ProjectID, []byte(`{"accountNumber":"A\rMSH|","labGuid":"L","mllpAddress":"127.0.0.1:2575"}`)); !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("a CR in accountNumber: %v, want a 400", err)
	}
}

// sendResult sends raw to the listener at addr and returns the ACK.
func sendResult(t testing.TB, conn net.Conn, r *bufio.Reader, raw string) *hl7v2.Message {
	t.Helper()
	if err := hl7v2.WriteFrame(conn, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	fr, err := hl7v2.ReadFrame(r, 1<<20)
	if err != nil {
		t.Fatalf("no ACK: %v", err)
	}
	m, err := hl7v2.Parse(fr)
	if err != nil {
		t.Fatalf("ACK does not parse: %v", err)
	}
	return m
}

func oru(route, secret, ctrl, sr string) string {
	return "MSH|^~\\&|LAB|ACME|WARD|" + route + "|20261207101500||ORU^R01^ORU_R01|" + ctrl + "|P|2.5.1\r" +
		"MSH-8-PLACEHOLDER" +
		"PID|1||x^^^WARD||Doe^Jane\r" +
		"OBR|1|" + sr + "||GLU^Glucose^L|||20261207093000+0100||||||||||||||||||F\r" +
		"OBX|1|NM|2345-7^Glucose^LN||95.5|mg/dL|70-99|N|||F\r" +
		"OBX|2|ST|8251-1^Comment^LN||fasting \\T\\ rested||||||F\r"
}

// withSecret puts secret into MSH-8.
func withSecret(msg, secret string) string {
	msg = strings.Replace(msg, "MSH-8-PLACEHOLDER", "", 1)
	parts := strings.SplitN(msg, "|", 9)
	parts[7] = secret
	return strings.Join(parts, "|")
}

func startListener(t testing.TB, svc *Service) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func TestResults(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{MaxMessage: 4096})
			ctx := context.Background()
			rt := f.route(f.admin, "127.0.0.1:1")
			otherRt := f.route(f.other, "127.0.0.1:1")
			sr := f.order(f.admin)
			otherSR := f.order(f.other)
			addr := startListener(t, f.svc)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			good := withSecret(oru(rt.RouteGUID, "", "C1", sr), rt.ResultSecret)
			for i, want := range []bool{false, true} {
				ack := sendResult(t, conn, r, good)
				msa, _ := ack.Segment("MSA")
				if msa.V(1) != "AA" || msa.V(2) != "C1" {
					t.Fatalf("send %d: MSA %q %q %q", i, msa.V(1), msa.V(2), msa.V(3))
				}
				if dup := msa.V(3) == "already received"; dup != want {
					t.Fatalf("send %d: duplicate=%v, want %v", i, dup, want)
				}
			}
			q, err := search.ParseQuery("DiagnosticReport", url.Values{"identifier": {ResultIdentifierSystem(rt.RouteGUID) + "|C1/1"}}, false)
			if err != nil {
				t.Fatal(err)
			}
			reps, _, err := f.st.Search(ctx, store.SearchRequest{ProjectID: f.admin.ProjectID, Query: q, Count: 10, Now: time.Now()})
			if err != nil || len(reps) != 1 {
				t.Fatalf("reports of C1: %d, %v", len(reps), err)
			}
			rep := fhir.FromStore(reps[0])
			if rep.VersionID != 1 {
				t.Errorf("report version %d after a repeated message, want 1", rep.VersionID)
			}
			var dr struct {
				Status    string
				BasedOn   []struct{ Reference string }
				Subject   struct{ Reference string }
				Result    []struct{ Reference string }
				Effective string `json:"effectiveDateTime"`
			}
			_ = json.Unmarshal(rep.Content, &dr)
			if dr.Status != "final" || len(dr.BasedOn) != 1 || dr.BasedOn[0].Reference != "ServiceRequest/"+sr ||
				!strings.HasPrefix(dr.Subject.Reference, "Patient/") || len(dr.Result) != 2 || dr.Effective != "2026-12-07T09:30:00+01:00" {
				t.Fatalf("report: %s", rep.Content)
			}
			obs, err := f.fsvc.Read(ctx, f.admin, "Observation", strings.TrimPrefix(dr.Result[0].Reference, "Observation/"))
			if err != nil || !strings.Contains(string(obs.Content), `"value":95.5`) || !strings.Contains(string(obs.Content), `"unit":"mg/dL"`) {
				t.Fatalf("observation: %s %v", obs.Content, err)
			}
			obs2, _ := f.fsvc.Read(ctx, f.admin, "Observation", strings.TrimPrefix(dr.Result[1].Reference, "Observation/"))
			var o2 struct{ ValueString string }
			_ = json.Unmarshal(obs2.Content, &o2)
			if o2.ValueString != "fasting & rested" {
				t.Fatalf("observation 2: %s", obs2.Content)
			}

			hostile := []struct {
				name, msg, code, text string
			}{
				{"wrong secret", withSecret(oru(rt.RouteGUID, "", "C2", sr), "guess"), "AR", "wrong secret"},
				{"no secret", withSecret(oru(rt.RouteGUID, "", "C2", sr), ""), "AR", "wrong secret"},
				{"another project's route with this one's secret", withSecret(oru(otherRt.RouteGUID, "", "C2", sr), rt.ResultSecret), "AR", "wrong secret"},
				{"another project's ServiceRequest", withSecret(oru(rt.RouteGUID, "", "C3", otherSR), rt.ResultSecret), "AR", "is not known"},
				{"unknown ServiceRequest", withSecret(oru(rt.RouteGUID, "", "C4", "nope"), rt.ResultSecret), "AR", "is not known"},
				{"not ORU", strings.Replace(withSecret(oru(rt.RouteGUID, "", "C5", sr), rt.ResultSecret), "ORU^R01", "ADT^A01", 1), "AR", "only ORU^R01"},
				{"not a number", strings.Replace(withSecret(oru(rt.RouteGUID, "", "C6", sr), rt.ResultSecret), "95.5", "NaN", 1), "AR", "not a number"},
				{"not HL7", "hello", "AR", "malformed"},
				{"OBX first", "MSH|^~\\&|L|L|W|" + rt.RouteGUID + "|x|" + rt.ResultSecret + "|ORU^R01|C7|P|2.5.1\rOBX|1|ST|x||y\r", "AR", "OBX before"},
			}
			for _, h := range hostile {
				ack := sendResult(t, conn, r, h.msg)
				msa, _ := ack.Segment("MSA")
				if msa.V(1) != h.code || !strings.Contains(msa.V(3), h.text) {
					t.Errorf("%s: MSA %q %q", h.name, msa.V(1), msa.V(3))
				}
			}
			// Nothing of the refused messages was stored in either project.
			for _, p := range []auth.Principal{f.admin, f.other} {
				rows, _, err := f.st.Search(ctx, store.SearchRequest{ProjectID: p.ProjectID, Query: mustQuery(t, "DiagnosticReport"), Count: 100, Now: time.Now()})
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if p.ProjectID == f.admin.ProjectID {
					want = 1
				}
				if len(rows) != want {
					t.Errorf("project %s has %d reports, want %d", p.ProjectID, len(rows), want)
				}
			}

			// A frame over the limit gets an AR and the connection closes.
			big := strings.Repeat("x", 5000)
			if err := hl7v2.WriteFrame(conn, []byte(good+"NTE|1||"+big+"\r")); err != nil {
				t.Fatal(err)
			}
			fr, err := hl7v2.ReadFrame(r, 1<<20)
			if err != nil || !strings.Contains(string(fr), "MSA|AR") {
				t.Fatalf("oversized: %q %v", fr, err)
			}
			if _, err := hl7v2.ReadFrame(r, 1<<20); err == nil {
				t.Fatal("the connection stayed open after an oversized frame")
			}
			// Bytes outside a frame: the connection is closed.
			c2, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			_, _ = c2.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
			r2 := bufio.NewReader(c2)
			if fr, err := hl7v2.ReadFrame(r2, 1<<20); err != nil || !strings.Contains(string(fr), "MSA|AR") {
				t.Fatalf("garbage: %q %v", fr, err)
			}
			if _, err := hl7v2.ReadFrame(r2, 1<<20); err == nil {
				t.Fatal("the connection stayed open after garbage")
			}
		})
	}
}
