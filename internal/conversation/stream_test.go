package conversation

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// ordered reads events through Order until it has n messages.
func ordered(t *testing.T, s *Service, sub *Sub, n int) []Message {
	t.Helper()
	var got []Message
	for len(got) < n {
		evs, err := s.Order(t.Context(), sub, next(t, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Kind == "message" {
				got = append(got, ev.Message)
			}
		}
	}
	return got
}

func checkSeq(t *testing.T, got []Message, from int64) {
	t.Helper()
	for i, m := range got {
		if m.Seq != from+int64(i) {
			t.Fatalf("message %d has number %d, want %d (numbers %v)", i, m.Seq, from+int64(i), seqs(got))
		}
	}
}

func seqs(ms []Message) []int64 {
	var out []int64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

// TestMessagesNumbered: concurrent senders (sharing batches, several in
// flight) on two replicas get one number each, 1..n without gaps, and a
// stream on each replica passes all of them once, in number order, live
// events that came out of order included.
func TestMessagesNumbered(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r := newRig(t, b)
			a, _ := r.replica(t, time.Now)
			other := a
			if r.st.Dialect() == store.Postgres {
				other, _ = r.replica(t, time.Now)
			}
			doc, pat := caller("p1", "Practitioner/doc"), caller("p1", "Patient/pat")
			conv := createConv(t, a, doc, doc.Profile, pat.Profile)
			addChat(t, a, doc, conv, doc.Profile, pat.Profile)
			var subs []*Sub
			for _, s := range []*Service{a, other} {
				sub, err := open(t, s, pat, conv)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.Start(t.Context(), sub, 0, false); err != nil {
					t.Fatal(err)
				}
				defer s.Close(sub)
				subs = append(subs, sub)
			}
			const senders, each = 8, 25
			var wg sync.WaitGroup
			nums := make(chan int64, senders*each)
			for i := range senders {
				s := a
				if i%2 == 1 {
					s = other
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range each {
						m, err := s.Message(t.Context(), doc, conv, []byte(fmt.Sprintf(`{"message":"m %d %d"}`, i, j)))
						if err != nil {
							t.Error(err)
							return
						}
						nums <- m.Seq
					}
				}()
			}
			wg.Wait()
			close(nums)
			seen := map[int64]bool{}
			for n := range nums {
				if n < 1 || n > senders*each || seen[n] {
					t.Fatalf("number %d twice or out of 1..%d", n, senders*each)
				}
				seen[n] = true
			}
			for i, sub := range subs {
				s := []*Service{a, other}[i]
				got := ordered(t, s, sub, senders*each)
				checkSeq(t, got, 1)
			}
		})
	}
}

// TestResume: a stream opened with the last number it had gets what it
// missed (at most MaxResume, then it must reconnect), only the messages
// its holder was a member for, then live ones.
func TestResume(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r := newRig(t, b)
			s, _ := r.replica(t, time.Now)
			doc, pat, late := caller("p1", "Practitioner/doc"), caller("p1", "Patient/pat"), caller("p1", "Practitioner/late")
			conv := createConv(t, s, doc, doc.Profile, pat.Profile, late.Profile)
			addChat(t, s, doc, conv, doc.Profile, pat.Profile)
			send := func(n int) {
				for i := range n {
					if _, err := s.Message(t.Context(), doc, conv, []byte(fmt.Sprintf(`{"message":"hello %d"}`, i))); err != nil {
						t.Fatal(err)
					}
				}
			}
			send(3)
			addChat(t, s, doc, conv, late.Profile)
			send(2) // 4, 5

			sub, err := open(t, s, pat, conv)
			if err != nil {
				t.Fatal(err)
			}
			evs, more, err := s.Start(t.Context(), sub, 1, true)
			if err != nil || more || len(evs) != 4 {
				t.Fatalf("resume after 1: %d events, more %v, %v", len(evs), more, err)
			}
			var got []Message
			for _, ev := range evs {
				got = append(got, ev.Message)
			}
			checkSeq(t, got, 2)
			if got[0].Body != "hello 1" || got[0].Author != doc.Profile || got[0].ID == "" {
				t.Fatalf("replayed message: %+v", got[0])
			}
			send(1)
			if live := ordered(t, s, sub, 1); live[0].Seq != 6 {
				t.Fatalf("live after the replay: %d, want 6", live[0].Seq)
			}
			s.Close(sub)

			// A member added after messages 1-3 does not get them replayed.
			subLate, err := open(t, s, late, conv)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(subLate)
			evs, _, err = s.Start(t.Context(), subLate, 0, true)
			if err != nil || len(evs) != 3 || evs[0].Message.Seq != 4 {
				t.Fatalf("a late member's replay: %+v %v", evs, err)
			}
			// A replay of only messages before it joined still moves it on.
			subLate2, err := open(t, s, late, conv)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(subLate2)
			if evs, _, err := s.Start(t.Context(), subLate2, 0, true); err != nil || len(evs) != 3 || subLate2.Position() != 6 {
				t.Fatalf("position after a replay: %d (%d events, %v), want 6", subLate2.Position(), len(evs), err)
			}

			// Far behind: one replay is bounded.
			send(MaxResume + 10)
			subFar, err := open(t, s, pat, conv)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(subFar)
			evs, more, err = s.Start(t.Context(), subFar, 6, true)
			if err != nil || !more || len(evs) != MaxResume || evs[0].Message.Seq != 7 {
				t.Fatalf("far behind: %d events, more %v, %v", len(evs), more, err)
			}
		})
	}
}

// TestOrderFillsGaps: a live event ahead of the stream's position comes
// after the ones it skipped (read from the record); one already passed
// is dropped.
func TestOrderFillsGaps(t *testing.T) {
	r := newRig(t, storetest.Backends()[0])
	s, _ := r.replica(t, time.Now)
	doc, pat := caller("p1", "Practitioner/doc"), caller("p1", "Patient/pat")
	conv := createConv(t, s, doc, doc.Profile, pat.Profile)
	addChat(t, s, doc, conv, doc.Profile, pat.Profile)
	var sent []Message
	for i := range 4 {
		m, err := s.Message(t.Context(), doc, conv, []byte(fmt.Sprintf(`{"message":"m%d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	sub, err := open(t, s, pat, conv)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(sub)
	sub.last = 1
	evs, err := s.Order(t.Context(), sub, Event{Kind: "message", Message: sent[3]})
	if err != nil || len(evs) != 3 || evs[0].Message.Seq != 2 || evs[1].Message.Seq != 3 || evs[2].Message.Seq != 4 {
		t.Fatalf("gap fill: %+v %v", evs, err)
	}
	if evs, _ := s.Order(t.Context(), sub, Event{Kind: "message", Message: sent[2]}); len(evs) != 0 {
		t.Fatalf("a message passed already came again: %+v", evs)
	}
	sub.last = 4
	far := sent[3]
	far.Seq = 4 + MaxResume + 2 // MaxResume + 1 missed
	if _, err := s.Order(t.Context(), sub, Event{Kind: "message", Message: far}); err == nil {
		t.Fatal("a gap over MaxResume did not end the stream")
	}
}

func TestParseLastEventID(t *testing.T) {
	for _, c := range []struct {
		in     string
		n      int64
		resume bool
		bad    bool
	}{{"", 0, false, false}, {"0", 0, true, false}, {"42", 42, true, false}, {"-1", 0, false, true},
		{"01HXYZ", 0, false, true}, {"99999999999999999999", 0, false, true}, {" 1", 0, false, true}} {
		n, resume, err := ParseLastEventID(c.in)
		if (err != nil) != c.bad || n != c.n || resume != c.resume {
			t.Errorf("%q: %d %v %v", c.in, n, resume, err)
		}
		if c.bad && kindOf(err) != fault.ErrInvalid {
			t.Errorf("%q: %v, want Invalid", c.in, err)
		}
	}
}

func FuzzParseLastEventID(f *testing.F) {
	for _, s := range []string{"", "0", "17", "-3", "x", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, resume, err := ParseLastEventID(s)
		if err == nil && (n < 0 || (s == "") == resume) {
			t.Fatalf("%q: %d %v", s, n, resume)
		}
		// Accepted: decimal digits only, read as written.
		if err == nil && resume && (strings.TrimLeft(s, "0123456789") != "" || strings.TrimLeft(s, "0") != strings.TrimLeft(fmt.Sprint(n), "0")) {
			t.Fatalf("%q read as %d", s, n)
		}
	})
}

// TestRemovalOnAnotherReplica: a replica whose senders built messages from
// the members it saw before another replica removed one writes them to
// the members as they are at its commit: the removed one is no recipient
// and its stream does not get them.
func TestRemovalOnAnotherReplica(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			r := newRig(t, b)
			a, _ := r.replica(t, time.Now)
			other := a
			if r.st.Dialect() == store.Postgres {
				other, _ = r.replica(t, time.Now)
			}
			doc, pat, x := caller("p1", "Practitioner/doc"), caller("p1", "Patient/pat"), caller("p1", "Patient/x")
			conv := createConv(t, a, doc, doc.Profile, pat.Profile, x.Profile)
			addChat(t, a, doc, conv, doc.Profile, pat.Profile, x.Profile)
			if _, err := a.Message(t.Context(), doc, conv, []byte(`{"message":"before"}`)); err != nil {
				t.Fatal(err) // a now remembers the members, x included
			}
			if err := other.RemoveParticipant(t.Context(), doc, conv, []byte(`{"encounterReference":"Encounter/`+conv+`","participantReference":"Patient/x"}`)); err != nil {
				t.Fatal(err)
			}
			m, err := a.Message(t.Context(), doc, conv, []byte(`{"message":"after"}`))
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.st.GetResource(t.Context(), "p1", "Communication", m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(res.Content), "Patient/x") || !strings.Contains(string(res.Content), "Patient/pat") {
				t.Fatalf("recipients after the removal: %s", res.Content)
			}
			if slices.Contains(m.audience, "Patient/x") {
				t.Fatalf("audience after the removal: %v", m.audience)
			}
		})
	}
}
