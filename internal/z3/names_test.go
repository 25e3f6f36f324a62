package z3

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/fault"
)

// The rule itself is tested in package bucketname; here: the API's error
// is a 400 with the reason, for Oystehr's own names and hostile ones.
func TestValidBucket(t *testing.T) {
	const project = "0b6f5a4e-2d36-4c1f-9a59-0b8f1c1e2a10"
	for _, tc := range []struct {
		name string
		bad  string // part of the message; "" = valid
	}{
		{name: project + "-TelemedRecordings"},
		{name: project + "-invoiceable-patients-reports"},
		{name: "reports"}, {name: "a_b"}, {name: strings.Repeat("a", 255)},
		{name: "", bad: "empty"},
		{name: strings.Repeat("a", 256), bad: "1-255 characters"},
		{name: "..", bad: "two dots"},
		{name: ".", bad: `"."`},
		{name: "a/b", bad: `"/"`},
		{name: "a\x00b", bad: `"\x00"`},
		{name: "_zambda-code", bad: "reserved"},
		{name: "*", bad: `"*"`},
	} {
		err := ValidBucket(tc.name)
		if tc.bad == "" {
			if err != nil {
				t.Errorf("ValidBucket(%q) = %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), tc.bad) {
			t.Errorf("ValidBucket(%q) = %v, want a 400 mentioning %q", clip(tc.name), err, tc.bad)
		}
	}
}

func TestValidSignedBucket(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"_zambda-code", true}, {"reports", true}, {"Telemed-Recordings", true},
		{"_", false}, {"__x", false}, {"_a..b", false}, {"_a/b", false}, {"..", false}, {"", false},
	} {
		if err := ValidSignedBucket(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidSignedBucket(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		folder   bool
		bad      string // part of the error message
	}{
		{in: "a/b.pdf", want: "a/b.pdf"},
		{in: "/a/b.pdf", want: "a/b.pdf"},
		{in: "dir/", want: "dir/", folder: true},
		{in: "", want: "", folder: true},
		{in: "é/ünïcode.txt", want: "é/ünïcode.txt"},
		{in: "a b/c+d.txt", want: "a b/c+d.txt"},
		{in: "a//b", bad: "empty segment"},
		{in: "a/../b", bad: `".." segment`},
		{in: "./b", bad: `"." segment`},
		{in: "..", bad: `".." segment`},
		{in: "a\x00b", bad: "control character"},
		{in: "a\nb", bad: "control character"},
		{in: "a\\b", bad: `"\"`},
		{in: strings.Repeat("x", MaxKeyBytes+1), bad: "limit"},
		{in: "\xff", bad: "UTF-8"},
	} {
		got, folder, err := CleanPath(tc.in)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("CleanPath(%q) error = %v, want one mentioning %q", tc.in, err, tc.bad)
			}
			continue
		}
		if err != nil || got != tc.want || folder != tc.folder {
			t.Errorf("CleanPath(%q) = %q, %v, %v; want %q, %v", tc.in, got, folder, err, tc.want, tc.folder)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"a/b", "a//b", "../x", "dir/", "é", "a\x00", "/x/y/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, _, err := CleanPath(in)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) || len(got) > MaxKeyBytes || strings.HasPrefix(got, "/") {
			t.Fatalf("CleanPath(%q) = %q", in, got)
		}
		for _, seg := range strings.Split(strings.TrimSuffix(got, "/"), "/") {
			if got != "" && (seg == "" || seg == "." || seg == "..") {
				t.Fatalf("CleanPath(%q) = %q has segment %q", in, got, seg)
			}
		}
		again, _, err := CleanPath(got)
		if err != nil || again != got {
			t.Fatalf("CleanPath not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}

func TestSignedURLs(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := signer{key: []byte("0123456789abcdef0123456789abcdef"), base: "https://ward.example"}
	target := Target{ProjectID: "p1", Bucket: "docs", Path: "a b/ré port.pdf", Action: Upload, Expires: now.Add(15 * time.Minute)}
	raw := s.url(target)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "https://ward.example/z3/objects/p1/docs/a%20b/r%C3%A9%20port.pdf?") {
		t.Fatalf("url = %s", raw)
	}
	// The server sees the decoded path.
	path := strings.TrimPrefix(u.Path, SignedPrefix+"p1/docs/")
	if _, err := s.verify("p1", "docs", path, u.Query(), Upload, now); err != nil {
		t.Fatalf("valid URL refused: %v", err)
	}
	tamper := func(f func(q url.Values)) url.Values {
		q := u.Query()
		f(q)
		return q
	}
	for _, tc := range []struct {
		name                  string
		project, bucket, path string
		q                     url.Values
		want                  Action
		at                    time.Time
		msg                   string
	}{
		{"other project", "p2", "docs", path, u.Query(), Upload, now, "signature does not match"},
		{"other bucket", "p1", "other", path, u.Query(), Upload, now, "signature does not match"},
		{"other path", "p1", "docs", "x.pdf", u.Query(), Upload, now, "signature does not match"},
		{"longer expiry", "p1", "docs", path, tamper(func(q url.Values) { q.Set("expires", "99999999999") }), Upload, now, "signature does not match"},
		{"download with upload URL", "p1", "docs", path, u.Query(), Download, now, "for uploading (PUT) only"},
		{"swapped action", "p1", "docs", path, tamper(func(q url.Values) { q.Set("action", "download") }), Download, now, "signature does not match"},
		{"expired", "p1", "docs", path, u.Query(), Upload, now.Add(15 * time.Minute), "expired"},
		{"no signature", "p1", "docs", path, tamper(func(q url.Values) { q.Del("signature") }), Upload, now, "not a valid presigned"},
	} {
		if _, err := s.verify(tc.project, tc.bucket, tc.path, tc.q, tc.want, tc.at); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.msg)
		}
	}
}
