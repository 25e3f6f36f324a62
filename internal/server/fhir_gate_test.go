package server

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/admit"
)

// TestFHIRReadsTakeTurns: with every read slot held, a FHIR read waits
// for one and then answers; a write does not wait at all.
func TestFHIRReadsTakeTurns(t *testing.T) {
	ts := newTestServer(t)
	if status, _ := ts.do(t, "PUT", "/fhir/Patient/turns", ts.token, `{"resourceType":"Patient","id":"turns"}`); status != 201 {
		t.Fatalf("create: %d", status)
	}
	held := ts.srv.reads.Enter(context.Background())
	done := make(chan int, 1)
	go func() {
		status, _ := ts.do(t, "GET", "/fhir/Patient/turns", ts.token, "")
		done <- status
	}()
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.reads.Waiting() != 1 {
		select {
		case status := <-done:
			t.Fatalf("the read answered %d while the only slot was held", status)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the read never queued for a slot")
		}
		time.Sleep(time.Millisecond)
	}
	held.Leave()
	if status := <-done; status != 200 {
		t.Fatalf("read after its turn: %d", status)
	}
	if n := ts.srv.reads.Overflowed(); n != 0 {
		t.Fatalf("%d reads went in without a slot", n)
	}

	held = ts.srv.reads.Enter(context.Background())
	defer held.Leave()
	if status, _ := ts.do(t, "PUT", "/fhir/Patient/turns", ts.token, `{"resourceType":"Patient","id":"turns","active":true}`); status != 200 {
		t.Fatalf("update while reads are full: %d", status)
	}
	if ts.srv.reads.Overflowed() != 0 {
		t.Fatal("a write waited for a read slot")
	}
}

// TestLeavingWriterFreesSlotAtFirstByte: the slot is back before the
// answer goes to the client, whichever of WriteHeader or Write comes first.
func TestLeavingWriterFreesSlotAtFirstByte(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(w *leavingWriter)
	}{
		{"WriteHeader", func(w *leavingWriter) { w.WriteHeader(204) }},
		{"Write", func(w *leavingWriter) { w.Write([]byte("{}")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := admit.New(1, time.Millisecond)
			pass := g.Enter(context.Background())
			tc.write(&leavingWriter{ResponseWriter: httptest.NewRecorder(), pass: &pass})
			next := g.Enter(context.Background())
			defer next.Leave()
			if g.Overflowed() != 0 {
				t.Fatal("the slot was still held after the first byte")
			}
			pass.Leave() // the handler's own Leave afterwards is harmless
			if again := g.Enter(context.Background()); g.Overflowed() != 1 {
				again.Leave()
				t.Fatal("a second Leave freed the next caller's slot")
			}
		})
	}
}
