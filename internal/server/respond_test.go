package server

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
)

// A throttled login tells the client when to come back.
func TestTooManyHasRetryAfter(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest("POST", "/x", nil), fault.TooMany(90*time.Second, "too many failed logins"))
	if w.Code != 429 || w.Header().Get("Retry-After") != "90" {
		t.Fatalf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}
