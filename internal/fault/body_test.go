package fault

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadBody(t *testing.T) {
	broken := errors.New("connection reset")
	for _, tc := range []struct {
		name   string
		body   io.Reader
		limit  int64 // 0: no MaxBytesReader
		want   string
		status int
		msg    string
	}{
		{"within the limit", strings.NewReader("12345"), 5, "12345", 0, ""},
		{"over the limit", strings.NewReader("123456"), 5, "", http.StatusRequestEntityTooLarge, "the request body is larger than the limit of 5 bytes"},
		{"a failed read", io.MultiReader(strings.NewReader("12"), errReader{broken}), 0, "", http.StatusBadRequest, "could not read the request body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if tc.limit > 0 {
				body = http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(body), tc.limit)
			}
			b, err := ReadBody(body)
			if tc.status == 0 {
				if err != nil || string(b) != tc.want {
					t.Fatalf("ReadBody = %q, %v; want %q", b, err, tc.want)
				}
				return
			}
			if status, msg := Public(err); status != tc.status || msg != tc.msg {
				t.Fatalf("ReadBody error answers %d %q, want %d %q", status, msg, tc.status, tc.msg)
			}
		})
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
