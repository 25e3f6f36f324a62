package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/policy/policytest"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/tokens"
)

const testURL = "http://ward.test"

type rig struct {
	st   *store.Store
	keys *tokens.Keys
	fhir *fhir.Service
}

func newRig(t testing.TB, b storetest.Backend) *rig {
	t.Helper()
	st := storetest.Open(t, b)
	sealer := sealtest.Setup(t, st)
	keys, err := tokens.LoadKeys(t.Context(), st, sealer, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{st: st, keys: keys, fhir: fhir.New(st, policytest.AllowAll{}, fhir.Config{}, time.Now)}
}

// replica is one process's conversation service over the rig's database.
func (r *rig) replica(t testing.TB, now func() time.Time) (*Service, *Local) {
	t.Helper()
	listening := make(chan struct{}, 1)
	revoked, err := tokens.LoadRevocations(t.Context(), r.st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLocal(LocalConfig{Listening: func() {
		select {
		case listening <- struct{}{}:
		default:
		}
	}}, NewHub(), r.st, r.st, r.keys.Ring, testURL, revoked, now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if r.st.Dialect() == store.Postgres {
		select {
		case <-listening:
		case <-time.After(10 * time.Second):
			t.Fatal("replica listener never listened")
		}
	}
	return New(r.fhir, l, time.Now), l
}

func caller(project, profile string) Caller {
	return Caller{P: auth.Principal{ProjectID: project, Kind: auth.KindUser, ID: strings.ReplaceAll(profile, "/", "-")}, Profile: profile}
}

// createConv makes a conversation whose Encounter lists who (created as
// resources first).
func createConv(t testing.TB, s *Service, c Caller, who ...string) string {
	t.Helper()
	var ps []string
	for _, w := range who {
		typ, id, _ := strings.Cut(w, "/")
		if _, _, err := s.fhir.Update(t.Context(), c.P, typ, id, []byte(`{"resourceType":"`+typ+`","id":"`+id+`"}`), ""); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, `{"individual":{"reference":"`+w+`"}}`)
	}
	enc, err := s.Create(t.Context(), c, []byte(`{"encounter":{"resourceType":"Encounter","status":"in-progress","class":{"code":"VR"},"participant":[`+strings.Join(ps, ",")+`]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	id := conversationID(m)
	if id == "" || id != m["id"] {
		t.Fatalf("conversation id %q, encounter %v", id, m)
	}
	return id
}

func addChat(t testing.TB, s *Service, c Caller, conv string, who ...string) {
	t.Helper()
	var ps []string
	for _, w := range who {
		ps = append(ps, `{"participantReference":"`+w+`","channel":"chat"}`)
	}
	if err := s.AddParticipant(t.Context(), c, conv, []byte(`{"encounterReference":"Encounter/`+conv+`","participants":[`+strings.Join(ps, ",")+`]}`)); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, s *Service, c Caller, conv string) (*Sub, error) {
	t.Helper()
	tok, _, err := s.Token(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s.Open(t.Context(), tok, conv)
}

// next waits for sub's next event.
func next(t *testing.T, sub *Sub) Event {
	t.Helper()
	select {
	case ev := <-sub.Events():
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return Event{}
}

func kindOf(err error) error {
	for _, k := range []error{fault.ErrInvalid, fault.ErrUnauthorized, fault.ErrForbidden, fault.ErrNotFound, fault.ErrNotSupported} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

func TestConversation(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r := newRig(t, b)
			s, _ := r.replica(t, time.Now)
			doc, pat, other := caller("p1", "Practitioner/doc"), caller("p1", "Patient/pat"), caller("p1", "Practitioner/other")
			conv := createConv(t, s, doc, "Practitioner/doc", "Patient/pat", "Practitioner/other")
			addChat(t, s, doc, conv, "Practitioner/doc", "Patient/pat")

			subDoc, err := open(t, s, doc, conv)
			if err != nil {
				t.Fatal(err)
			}
			subPat, err := open(t, s, pat, conv)
			if err != nil {
				t.Fatal(err)
			}
			// In the Encounter but never added to the chat: refused.
			if _, err := open(t, s, other, conv); kindOf(err) != fault.ErrForbidden {
				t.Fatalf("non-member open: %v", err)
			}

			m, err := s.Message(t.Context(), doc, conv, []byte(`{"message":"hello ✓","attributes":{"k":1}}`))
			if err != nil {
				t.Fatal(err)
			}
			for _, sub := range []*Sub{subDoc, subPat} {
				ev := next(t, sub)
				if ev.Kind != "message" || ev.Message.Body != "hello ✓" || ev.Message.Author != "Practitioner/doc" || ev.Message.ID != m.ID {
					t.Fatalf("event %+v", ev)
				}
			}
			// The record: a Communication part of the Encounter, from the
			// sender to the other members, found by a search.
			q, err := search.ParseQuery("Communication", url.Values{"encounter": {"Encounter/" + conv}, "_sort": {"sent"}}, false)
			if err != nil {
				t.Fatal(err)
			}
			page, err := r.fhir.Search(t.Context(), doc.P, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Matches) != 1 {
				t.Fatalf("search found %d Communications", len(page.Matches))
			}
			var comm map[string]any
			_ = json.Unmarshal(page.Matches[0].Content, &comm)
			got, _ := json.Marshal([]any{comm["partOf"], comm["sender"], comm["recipient"], comm["payload"], comm["status"]})
			want := `[[{"reference":"Encounter/` + conv + `"}],{"reference":"Practitioner/doc"},[{"reference":"Patient/pat"}],[{"contentString":"hello ✓"}],"completed"]`
			if string(got) != want {
				t.Fatalf("communication %s\nwant %s", got, want)
			}

			// Removal ends the patient's stream at once, with a notice.
			if err := s.RemoveParticipant(t.Context(), doc, conv, []byte(`{"encounterReference":"Encounter/`+conv+`","participantReference":"Patient/pat"}`)); err != nil {
				t.Fatal(err)
			}
			if ev := next(t, subPat); ev.Kind != "removed" {
				t.Fatalf("removed member got %+v", ev)
			}
			select {
			case <-subPat.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("removed member's stream still open")
			}
			if _, err := s.Message(t.Context(), doc, conv, []byte(`{"message":"after"}`)); err != nil {
				t.Fatal(err)
			}
			if ev := next(t, subDoc); ev.Message.Body != "after" {
				t.Fatalf("member got %+v", ev)
			}
			select {
			case ev := <-subPat.Events():
				t.Fatalf("removed member received %+v", ev)
			default:
			}
			if _, err := open(t, s, pat, conv); kindOf(err) != fault.ErrForbidden {
				t.Fatalf("removed member reopened: %v", err)
			}
		})
	}
}

// TestConversationAcrossReplicas: a message committed through one replica
// reaches a stream open on another (PostgreSQL NOTIFY), and so does a
// removal.
func TestConversationAcrossReplicas(t *testing.T) {
	r := newRig(t, storetest.Backends()[1])
	a, _ := r.replica(t, time.Now)
	b, _ := r.replica(t, time.Now)
	doc, pat := caller("p1", "Practitioner/doc"), caller("p1", "Patient/pat")
	conv := createConv(t, a, doc, "Practitioner/doc", "Patient/pat")
	addChat(t, a, doc, conv, "Practitioner/doc", "Patient/pat")
	sub, err := open(t, b, pat, conv)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("\u2028", MaxMessageChars) // escapes to 6 bytes each: too big for one notice
	for _, body := range []string{"small", big} {
		msg, _ := json.Marshal(map[string]string{"message": body})
		if _, err := a.Message(t.Context(), doc, conv, msg); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, sub); ev.Message.Body != body || ev.Message.Author != "Practitioner/doc" {
			t.Fatalf("other replica got %q from %q", ev.Message.Body, ev.Message.Author)
		}
	}
	if err := a.RemoveParticipant(t.Context(), doc, conv, []byte(`{"encounterReference":"Encounter/`+conv+`","participantReference":"Patient/pat"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("removal did not reach the other replica")
	}
}

func TestConversationHostile(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r := newRig(t, b)
			s, _ := r.replica(t, time.Now)
			past, _ := r.replica(t, func() time.Time { return time.Now().Add(-time.Hour) })
			doc := caller("p1", "Practitioner/doc")
			conv := createConv(t, s, doc, "Practitioner/doc", "Patient/pat")
			addChat(t, s, doc, conv, "Practitioner/doc")
			conv2 := createConv(t, s, doc, "Practitioner/doc")
			// The same profile in another project.
			stranger := caller("p2", "Practitioner/doc")
			tok := func(s *Service, c Caller) string {
				tk, _, err := s.Token(t.Context(), c)
				if err != nil {
					t.Fatal(err)
				}
				return tk
			}
			apiToken, _, err := auth.NewIssuer(r.keys.Ring, testURL, testURL, time.Now).Issue(t.Context(),
				auth.Principal{ProjectID: "p1", Kind: auth.KindUser, ID: "x", FHIRUser: "Practitioner/doc"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			good := tok(s, doc)
			opens := []struct {
				name, token, conv string
				want              error
			}{
				{"expired token", tok(past, doc), conv, fault.ErrUnauthorized},
				{"API access token", apiToken, conv, fault.ErrUnauthorized},
				{"tampered token", good[:len(good)-4] + "AAAA", conv, fault.ErrUnauthorized},
				{"garbage", "x.y.z", conv, fault.ErrUnauthorized},
				{"conversation not joined", good, conv2, fault.ErrForbidden},
				{"another project's conversation", tok(s, stranger), conv, fault.ErrNotFound},
				{"no such conversation", good, "nope", fault.ErrNotFound},
			}
			for _, c := range opens {
				if _, err := s.Open(t.Context(), c.token, c.conv); kindOf(err) != c.want {
					t.Errorf("%s: %v, want %v", c.name, err, c.want)
				}
			}
			ref := `"encounterReference":"Encounter/` + conv + `"`
			calls := []struct {
				name string
				call func() error
				want error
			}{
				{"huge message", func() error {
					_, err := s.Message(t.Context(), doc, conv, []byte(`{"message":"`+strings.Repeat("a", MaxMessageChars+1)+`"}`))
					return err
				}, fault.ErrInvalid},
				{"empty message", func() error { _, err := s.Message(t.Context(), doc, conv, []byte(`{"message":""}`)); return err }, fault.ErrInvalid},
				{"attributes not an object", func() error {
					_, err := s.Message(t.Context(), doc, conv, []byte(`{"message":"a","attributes":[1]}`))
					return err
				}, fault.ErrInvalid},
				{"malformed body", func() error { _, err := s.Message(t.Context(), doc, conv, []byte(`{"message":`)); return err }, fault.ErrInvalid},
				{"message to another project's conversation", func() error {
					_, err := s.Message(t.Context(), stranger, conv, []byte(`{"message":"a"}`))
					return err
				}, fault.ErrNotFound},
				{"message to a plain Encounter", func() error {
					res, _, err := r.fhir.Create(t.Context(), doc.P, "Encounter", []byte(`{"resourceType":"Encounter","status":"planned","class":{"code":"VR"}}`), "")
					if err != nil {
						return err
					}
					_, err = s.Message(t.Context(), doc, res.ID, []byte(`{"message":"a"}`))
					return err
				}, fault.ErrNotFound},
				{"participant not in the Encounter", func() error {
					return s.AddParticipant(t.Context(), doc, conv, []byte(`{`+ref+`,"participants":[{"participantReference":"Patient/zz","channel":"chat"}]}`))
				}, fault.ErrInvalid},
				{"sms channel", func() error {
					return s.AddParticipant(t.Context(), doc, conv, []byte(`{`+ref+`,"participants":[{"participantReference":"Patient/pat","channel":"sms","phoneNumber":"+15555550100"}]}`))
				}, fault.ErrNotSupported},
				{"encounterReference of another conversation", func() error {
					return s.AddParticipant(t.Context(), doc, conv, []byte(`{"encounterReference":"Encounter/`+conv2+`","participants":[{"participantReference":"Practitioner/doc","channel":"chat"}]}`))
				}, fault.ErrInvalid},
				{"create without an Encounter", func() error {
					_, err := s.Create(t.Context(), doc, []byte(`{"encounter":{"resourceType":"Patient"}}`))
					return err
				}, fault.ErrInvalid},
				{"remove a non-member", func() error {
					return s.RemoveParticipant(t.Context(), doc, conv, []byte(`{`+ref+`,"participantReference":"Patient/pat"}`))
				}, fault.ErrNotFound},
			}
			for _, c := range calls {
				if err := c.call(); kindOf(err) != c.want {
					t.Errorf("%s: %v, want %v", c.name, err, c.want)
				}
			}
		})
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{`{"message":"hi"}`, `{"message":"a","attributes":{"x":[1,{"y":null}]}}`, `{"message":""}`, `[]`, `{"message":"a"} x`, `{"attributes":null,"message":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, attrs, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		// What is accepted is within the limits and stays valid.
		if n := len([]rune(in.Message)); n == 0 || n > MaxMessageChars || len(in.Attributes) > MaxAttributesBytes {
			t.Fatalf("accepted %d characters, %d attribute bytes", n, len(in.Attributes))
		}
		if attrs != nil {
			if _, err := json.Marshal(attrs); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzParseNotice(f *testing.F) {
	for _, s := range []string{`{"o":"a","k":"m","p":"p","c":"c","m":{"id":"1","body":"x"}}`, `{"k":"p","p":"p","c":"c","mb":["Patient/1"]}`, `{"k":"m","p":"p","c":"c","r":"Communication/1"}`, `{}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseNotice(b)
		if err != nil {
			return
		}
		if n.Project == "" || n.Conv == "" || (n.Kind == "m" && n.Message == nil && n.Ref == "") {
			t.Fatalf("accepted an incomplete notice %+v", n)
		}
	})
}

// TestHubClose: at shutdown every stream ends and no new one opens.
func TestHubClose(t *testing.T) {
	r := newRig(t, storetest.Backends()[0])
	s, l := r.replica(t, time.Now)
	doc := caller("p1", "Practitioner/doc")
	conv := createConv(t, s, doc, "Practitioner/doc")
	addChat(t, s, doc, conv, "Practitioner/doc")
	sub, err := open(t, s, doc, conv)
	if err != nil {
		t.Fatal(err)
	}
	l.Hub().Close()
	select {
	case <-sub.Done():
	default:
		t.Fatal("stream still open after Close")
	}
	if _, err := open(t, s, doc, conv); !errors.Is(err, fault.ErrUnavailable) {
		t.Fatalf("open after Close: %v", err)
	}
}

// TestStreamEndsWithToken: a stream closes when its token expires.
func TestStreamEndsWithToken(t *testing.T) {
	r := newRig(t, storetest.Backends()[0])
	revoked, err := tokens.LoadRevocations(t.Context(), r.st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLocal(LocalConfig{TokenTTL: time.Second}, NewHub(), r.st, r.st, r.keys.Ring, testURL, revoked, time.Now,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	s := New(r.fhir, l, time.Now)
	doc := caller("p1", "Practitioner/doc")
	conv := createConv(t, s, doc, "Practitioner/doc")
	addChat(t, s, doc, conv, "Practitioner/doc")
	sub, err := open(t, s, doc, conv)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stream outlived its 1 s token")
	}
}
