package sms

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	word := strings.Repeat("a", 9) + " " // 10 characters
	for _, tc := range []struct {
		name  string
		in    string
		parts int
	}{
		{"short", "hello", 1},
		{"exactly 160", strings.Repeat("x", 160), 1},
		{"161 without spaces", strings.Repeat("x", 161), 2},
		{"words", strings.Repeat(word, 40), 3},
		{"multibyte", strings.Repeat("é", 170), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Split(tc.in)
			if len(got) != tc.parts {
				t.Fatalf("%d parts, want %d: %q", len(got), tc.parts, got)
			}
			for _, p := range got {
				if n := utf8.RuneCountInString(p); n > MaxPart || n == 0 {
					t.Fatalf("part of %d characters: %q", n, p)
				}
			}
		})
	}
	// Words are never cut: every part of the word message is whole words.
	for _, p := range Split(strings.Repeat(word, 40)) {
		for _, w := range strings.Fields(p) {
			if w != strings.TrimSpace(word) {
				t.Fatalf("cut word %q in %q", w, p)
			}
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(strings.Repeat("ab ", 100))
	f.Add(strings.Repeat("x", 400))
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		parts := Split(s)
		words := strings.Join(strings.Fields(s), " ")
		var joined []string
		for _, p := range parts {
			if utf8.RuneCountInString(s) > MaxPart && utf8.RuneCountInString(p) > MaxPart {
				t.Fatalf("part over %d: %q", MaxPart, p)
			}
			joined = append(joined, strings.Fields(p)...)
		}
		// Nothing but whitespace is lost, only at cuts (a word longer
		// than a part is cut, so compare without the spaces).
		if strings.ReplaceAll(strings.Join(joined, " "), " ", "") != strings.ReplaceAll(words, " ", "") {
			t.Fatalf("content changed: %q -> %q", s, parts)
		}
	})
}

func TestMobileNumber(t *testing.T) {
	for _, tc := range []struct {
		name, telecom, want, err string
	}{
		{"mobile", `[{"system":"phone","use":"home","value":"+15550000000"},{"system":"phone","use":"mobile","value":"+1 (555) 123-4567"}]`, "+15551234567", ""},
		{"sms wins", `[{"system":"phone","use":"mobile","value":"+15551111111"},{"system":"sms","value":"+447700900123"}]`, "+447700900123", ""},
		{"ten digits are North American", `[{"system":"phone","use":"mobile","value":"555-123-4567"}]`, "+15551234567", ""},
		{"ended period skipped", `[{"system":"phone","use":"mobile","value":"+15551111111","period":{"end":"2020-01-01"}}]`, "", "no mobile number"},
		{"home only", `[{"system":"phone","use":"home","value":"+15551111111"}]`, "", "no mobile number"},
		{"none", `[]`, "", "no mobile number"},
		{"letters", `[{"system":"phone","use":"mobile","value":"+1555CALLNOW"}]`, "", "not a phone number"},
		{"too short", `[{"system":"phone","use":"mobile","value":"12345"}]`, "", "international form"},
		{"too long", `[{"system":"phone","use":"mobile","value":"+1234567890123456"}]`, "", "international form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MobileNumber([]byte(`{"resourceType":"Patient","telecom":` + tc.telecom + `}`))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// Twilio's published vectors (its helper libraries' RequestValidator tests).
func TestSignature(t *testing.T) {
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	doc := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"},
		"From": {"+14158675309"}, "To": {"+18005551212"}}
	repeated := url.Values{"Sid": {"CA123"}, "SidAccount": {"AC123"}, "Digits": {"5678", "1234", "1234"}}
	tampered := url.Values{}
	for k, v := range doc {
		tampered[k] = v
	}
	tampered.Set("Digits", "9999")
	for _, tc := range []struct {
		name, token, url string
		form             url.Values
		sig              string
		ok               bool
	}{
		{"documented", "12345", u, doc, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", true},
		{"repeated params", "12345", u, repeated, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", true},
		{"other token", "54321", u, doc, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", false},
		{"other url", "12345", u + "&x=1", doc, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", false},
		{"tampered param", "12345", u, tampered, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", false},
		{"empty signature", "12345", u, doc, "", false},
		{"empty token", "", u, doc, Signature("", u, doc), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := VerifySignature(tc.token, tc.url, tc.form, tc.sig); got != tc.ok {
				t.Fatalf("verify = %v, want %v", got, tc.ok)
			}
		})
	}
}

func FuzzParseCallback(f *testing.F) {
	f.Add([]byte("MessageSid=SM1&MessageStatus=delivered"))
	f.Add([]byte("SmsSid=SM1&SmsStatus=failed&ErrorCode=30003"))
	f.Add([]byte("%zz"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, form, err := ParseCallback(body)
		if err != nil {
			return
		}
		// A parsed callback is a known status of a named message, and its
		// signature is checked over the same form.
		if c.MessageSID == "" || !callbackStatuses[c.Status] || form == nil {
			t.Fatalf("accepted %q as %+v", body, c)
		}
		if !VerifySignature("tok", "https://w/x", form, Signature("tok", "https://w/x", form)) {
			t.Fatal("own signature does not verify")
		}
	})
}

func TestTwilioSend(t *testing.T) {
	var calls atomic.Int32
	answers := []int{503, 429, 201}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		user, pass, ok := r.BasicAuth()
		if r.URL.Path != "/2010-04-01/Accounts/AC1/Messages.json" || !ok || user != "AC1" || pass != "tok" {
			http.Error(w, `{"message":"bad request shape"}`, 400)
			return
		}
		body, _ := io.ReadAll(r.Body)
		f, _ := url.ParseQuery(string(body))
		if f.Get("To") != "+15551234567" || f.Get("From") != "+15550000000" || f.Get("Body") != "hi" || f.Get("StatusCallback") != "https://w/cb" {
			http.Error(w, `{"message":"bad form"}`, 400)
			return
		}
		st := answers[min(int(n)-1, len(answers)-1)]
		w.WriteHeader(st)
		if st == 201 {
			io.WriteString(w, `{"sid":"SM123","status":"queued"}`)
		} else {
			io.WriteString(w, `{"message":"busy"}`)
		}
	}))
	defer srv.Close()
	tw := &Twilio{BaseURL: srv.URL, AccountSID: "AC1", AuthToken: "tok", From: "+15550000000", Client: srv.Client(), Backoff: time.Millisecond}
	sent, err := tw.Send(context.Background(), Message{To: "+15551234567", Body: "hi", StatusCallback: "https://w/cb"})
	if err != nil || sent.ID != "SM123" || sent.Delivered {
		t.Fatalf("sent %+v, %v", sent, err)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d calls, want 3 (two retries)", calls.Load())
	}
	// A 4xx is final: refused, not retried.
	calls.Store(0)
	tw.AuthToken = "wrong"
	if _, err := tw.Send(context.Background(), Message{To: "+15551234567", Body: "hi"}); !errors.Is(err, ErrRefused) || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls, want ErrRefused after 1", err, calls.Load())
	}
	// Retries stop at Attempts.
	calls.Store(0)
	answers = []int{500}
	tw.AuthToken, tw.Attempts = "tok", 2
	if _, err := tw.Send(context.Background(), Message{To: "+15551234567", Body: "hi", StatusCallback: "https://w/cb"}); err == nil || errors.Is(err, ErrRefused) || calls.Load() != 2 {
		t.Fatalf("err %v after %d calls, want a transient error after 2", err, calls.Load())
	}
}
