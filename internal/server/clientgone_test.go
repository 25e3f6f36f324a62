package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// TestClientGoneIsNoServerError: a FHIR read whose client hangs up while
// it waits for its turn ends without an ERROR line and is logged with
// status 499, not 5xx.
func TestClientGoneIsNoServerError(t *testing.T) {
	var logs lockedBuffer
	ts := newTestServerWith(t, nil, func(st *store.Store, _ *seal.Sealer, d *Deps) {
		h := slog.NewJSONHandler(&logs, nil)
		d.Log = slog.New(h)
		d.FHIR = fhir.NewHandler(fhir.New(st, d.IAM, fhir.Config{}, time.Now), testURL+"/fhir", slog.New(h))
	})
	held := ts.srv.reads.Enter(context.Background())
	defer held.Leave()
	ctx, hangUp := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/fhir/Patient?name=x", nil)
	req.Header.Set("Authorization", "Bearer "+ts.token)
	gone := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		gone <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.reads.Waiting() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the read never queued")
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	hangUp()
	if err := <-gone; err == nil {
		t.Fatal("the request was answered")
	}
	for !strings.Contains(logs.String(), `"msg":"request","method":"GET","path":"/fhir/Patient"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no access line:\n%s", logs.String())
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	if out := logs.String(); strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, `"status":499`) {
		t.Fatalf("want no ERROR and status 499:\n%s", out)
	}
}

// TestWhoCanceled: only a cancellation without a cause of its own is the
// client's; deadlines and a shutdown's cut stay server errors (logged).
func TestWhoCanceled(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cut, cancelCause := context.WithCancelCause(context.Background())
	cancelCause(errors.New("shutdown: the grace period is over"))
	expired, cancel2 := context.WithTimeout(context.Background(), -time.Second)
	defer cancel2()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		err    error
		gone   bool
		status int
	}{
		{"client hung up", canceled, fmt.Errorf("query: %w", context.Canceled), true, fault.StatusClientGone},
		{"client hung up, other error", canceled, errors.New("disk on fire"), false, 500},
		{"shutdown cut", cut, fmt.Errorf("query: %w", context.Canceled), false, 500},
		{"deadline", expired, fmt.Errorf("query: %w", context.DeadlineExceeded), false, 500},
		{"canceled error, live request", context.Background(), context.Canceled, false, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fault.ClientGone(tc.ctx, tc.err); got != tc.gone {
				t.Fatalf("ClientGone = %v", got)
			}
			var logs lockedBuffer
			s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil))}
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest("GET", "/v1/x", nil).WithContext(tc.ctx), tc.err)
			if w.Code != tc.status || strings.Contains(logs.String(), "ERROR") == tc.gone {
				t.Fatalf("status %d, log %q", w.Code, logs.String())
			}
		})
	}
}
