package server

import (
	"math"
	"net/http/httptest"
	"testing"
)

// TestWriteJSON: a value encodes before anything is sent, so one that
// cannot (a bug) panics with nothing written, for the recovering
// middleware to log and answer 500; others go out with a newline.
func TestWriteJSON(t *testing.T) {
	for _, tc := range []struct {
		name      string
		v         any
		want      string
		wantPanic bool
	}{
		{"object", map[string]int{"a": 1}, "{\"a\":1}\n", false},
		{"no body", nil, "", false},
		{"does not encode", map[string]float64{"x": math.Inf(1)}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			func() {
				defer func() {
					if p := recover(); (p != nil) != tc.wantPanic {
						t.Errorf("panic = %v, want one: %v", p, tc.wantPanic)
					}
				}()
				writeJSON(rec, 201, tc.v)
			}()
			if rec.Body.String() != tc.want {
				t.Errorf("body %q, want %q", rec.Body.String(), tc.want)
			}
			if tc.wantPanic && rec.Header().Get("Content-Type") != "" {
				t.Error("headers went out before the panic")
			}
		})
	}
}
