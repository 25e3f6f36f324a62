package fax

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/z3"
)

// TestPhaxioRequests checks each request against Phaxio's documented shape
// (API v2.1) and how each kind of answer is classed.
func TestPhaxioRequests(t *testing.T) {
	var got []string
	status, answer := http.StatusOK, `{"success":true,"message":"ok","data":{"id":77,"phone_number":"+18475551234"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		line := r.Method + " " + r.URL.EscapedPath() + " " + user + ":" + pass
		if r.Method == http.MethodPost {
			if err := r.ParseMultipartForm(1 << 20); err != nil {
				t.Errorf("%s: %v", line, err)
			}
			for _, k := range []string{"country_code", "area_code", "to", "caller_id"} {
				if v := r.FormValue(k); v != "" {
					line += " " + k + "=" + v
				}
			}
			if f, h, err := r.FormFile("file"); err == nil {
				b, _ := io.ReadAll(f)
				line += " file=" + h.Filename + ":" + string(b)
			}
		}
		got = append(got, line)
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	p := &Phaxio{BaseURL: srv.URL, APIKey: "k", APISecret: "s", AreaCode: "847", Client: srv.Client()}
	ctx := context.Background()
	if n, err := p.Provision(ctx); err != nil || n != "+18475551234" {
		t.Fatalf("Provision = %q, %v", n, err)
	}
	if err := p.Release(ctx, "+18475551234"); err != nil {
		t.Fatal(err)
	}
	sent, err := p.Send(ctx, Fax{To: "+12175550142", From: "+18475551234", Document: Document{Name: "a.pdf", Bytes: []byte("%PDF")}})
	if err != nil || sent.ID != "77" || sent.Status != "queued" || sent.Delivered {
		t.Fatalf("Send = %+v, %v", sent, err)
	}
	want := []string{
		"POST /v2.1/phone_numbers k:s country_code=1 area_code=847",
		"DELETE /v2.1/phone_numbers/+18475551234 k:s",
		"POST /v2.1/faxes k:s to=+12175550142 caller_id=+18475551234 file=a.pdf:%PDF",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, tc := range []struct {
		status  int
		body    string
		refused bool
	}{
		{422, `{"success":false,"message":"bad number"}`, true},
		{401, `{"success":false,"message":"Invalid API credentials"}`, true},
		{200, `{"success":false,"message":"odd"}`, true},
		{429, `{"success":false,"message":"slow down"}`, false},
		{503, `not json`, false},
	} {
		status, answer = tc.status, tc.body
		_, err := p.Send(ctx, Fax{To: "+1", Document: Document{Name: "a"}})
		if err == nil || errors.Is(err, ErrRefused) != tc.refused {
			t.Errorf("answer %d %s: err %v, refused want %v", tc.status, tc.body, err, tc.refused)
		}
	}
}

func TestFaxNumbers(t *testing.T) {
	m := map[string]any{"telecom": []any{
		map[string]any{"system": "phone", "value": "+12175550100"},
		map[string]any{"system": "fax", "value": "(217) 555-0101"},
		map[string]any{"system": "fax", "value": "not a number"},
		map[string]any{"system": "fax"},
		"junk",
	}}
	if got := faxNumbers(m); len(got) != 1 || got[0] != "+12175550101" {
		t.Fatalf("faxNumbers = %v", got)
	}
}

// FuzzParseZ3URL: what parses names a valid bucket and one clean object
// path: never a folder, never a ".." segment, never empty.
func FuzzParseZ3URL(f *testing.F) {
	const pub = "http://ward.test"
	for _, s := range []string{pub + "/v1/z3/faxes/a/b.pdf", "z3://faxes/x.pdf", pub + "/v1/z3/faxes/../x", "z3://_internal/x", pub + "/v1/z3/b/a/", "https://evil/v1/z3/b/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		b, p, err := ParseZ3URL(pub, u)
		if err != nil {
			return
		}
		if z3.ValidBucket(b) != nil || p == "" || strings.HasSuffix(p, "/") || strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
			t.Fatalf("ParseZ3URL(%q) = %q, %q", u, b, p)
		}
	})
}

// TestPhaxioSignature: the documented construction (URL, then parameters
// sorted by name, then file parts with their SHA-1), and a multipart body
// parses to what signs the same.
func TestPhaxioSignature(t *testing.T) {
	const u = "https://ward.example/fax/v1/phaxio/callback/p/c"
	cb := Callback{Values: map[string][]string{"success": {"true"}, "fax": {`{"id":1}`}}, Files: map[string][]string{"file": {"da39a3ee5e6b4b0d3255bfef95601890afd80709"}}}
	m := hmac.New(sha1.New, []byte("tok"))
	m.Write([]byte(u + `fax{"id":1}successtrue` + "file" + "da39a3ee5e6b4b0d3255bfef95601890afd80709"))
	if got, want := PhaxioSignature("tok", u, cb), hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("success", "true")
	_ = mw.WriteField("fax", `{"id":1}`)
	fw, _ := mw.CreateFormFile("file", "empty.pdf")
	_, _ = fw.Write(nil)
	_ = mw.Close()
	parsed, err := ParseCallback(mw.FormDataContentType(), body.Bytes())
	if err != nil || PhaxioSignature("tok", u, parsed) != PhaxioSignature("tok", u, cb) {
		t.Fatalf("parsed %+v, %v", parsed, err)
	}
	if _, err := ParseCallback("text/plain", nil); err == nil {
		t.Fatal("a text/plain callback parsed")
	}
}

// FuzzParseCallback: any body either fails to parse or parses to values
// whose signature is stable (the same bytes sign the same twice).
func FuzzParseCallback(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", []byte("success=true&fax=%7B%22id%22%3A1%7D"))
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"fax\"\r\n\r\n{}\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		a, err := ParseCallback(ctype, body)
		if err != nil {
			return
		}
		b, err := ParseCallback(ctype, body)
		if err != nil || PhaxioSignature("k", "u", a) != PhaxioSignature("k", "u", b) {
			t.Fatalf("unstable parse of %q", body)
		}
	})
}

// TestOnboardRace: onboards at once end with one number, the same for
// every caller, on both backends (the losers give theirs back).
func TestOnboardRace(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := storetest.Open(t, b)
			s := New(Config{PublicURL: "http://ward.test"}, Deps{Numbers: st,
				Providers: func(context.Context, string) (map[string]string, error) { return nil, nil },
				Log:       slog.New(slog.NewTextHandler(io.Discard, nil))})
			got := make([]string, 8)
			var wg sync.WaitGroup
			for i := range got {
				wg.Go(func() {
					n, err := s.Onboard(context.Background(), "p1")
					if err != nil {
						t.Error(err)
					}
					got[i] = n
				})
			}
			wg.Wait()
			have, err := st.FaxNumbers(context.Background(), "p1")
			if err != nil || len(have) != 1 {
				t.Fatalf("numbers after the race = %+v, %v", have, err)
			}
			for _, n := range got {
				if n != have[0].Number {
					t.Fatalf("onboards answered %v; the project has %s", got, have[0].Number)
				}
			}
		})
	}
}
