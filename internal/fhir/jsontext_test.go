package fhir

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/fault"
)

func TestCheckJSONText(t *testing.T) {
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"plain", `{"a":"b"}`, true},
		{"tab, newline, return escaped", `{"a":"x\ty\nz\r"}`, true},
		{"accents and emoji", `{"a":"García 😀 \u00e9 \ud83d\ude00"}`, true},
		{"escaped backslash then u0000 text", `{"a":"\\u0000"}`, true},
		{"NUL escape", `{"a":"x\u0000y"}`, false},
		{"NUL escape in a key", `{"\u0000":"y"}`, false},
		{"other control escape", `{"a":"\u001F"}`, false},
		{"upper-case hex", `{"a":"\u001f"}`, false},
		{"raw control byte", "{\"a\":\"x\x01y\"}", false},
		{"backspace escape (found by FuzzCheckJSONText)", `{"":"\b0000"}`, false},
		{"form feed escape", `{"a":"\f"}`, false},
		{"escaped backslash then b", `{"a":"\\b"}`, true},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", false},
		{"lone high surrogate", `{"a":"\ud83d"}`, false},
		{"high surrogate then letter", `{"a":"\ud83dx"}`, false},
		{"lone low surrogate", `{"a":"\ude00"}`, false},
		{"outside strings is the decoder's", `{"a":1}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkJSONText([]byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("got %v, want an invalid-request error", err)
			}
		})
	}
}

// FuzzCheckJSONText: whatever it accepts, when it is JSON, decodes to
// strings that are valid UTF-8 without U+FFFD that was not sent and
// without forbidden control characters.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\u0000"}`, `{"a":"\ud83d\ude00"}`, "{\"a\":\"\xff\"}", `["\\u0000"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkJSONText(body) != nil {
			return
		}
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				if !utf8.ValidString(x) || strings.ContainsFunc(x, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' }) {
					t.Fatalf("accepted %q decodes to %q", body, x)
				}
				if strings.ContainsRune(x, utf8.RuneError) && !strings.Contains(string(body), "\uFFFD") && !strings.Contains(strings.ToLower(string(body)), `\ufffd`) {
					t.Fatalf("accepted %q decodes to a replacement character", body)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					walk(k)
					walk(e)
				}
			}
		}
		walk(v)
	})
}
