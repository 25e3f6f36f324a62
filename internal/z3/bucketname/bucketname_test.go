package bucketname

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

const project = "0b6f5a4e-2d36-4c1f-9a59-0b8f1c1e2a10"

func TestProblem(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  string // part of the problem; "" = valid
	}{
		// Oystehr's own buckets, S3-style names and the edges of the rule.
		{name: project + "-TelemedRecordings"},
		{name: project + "-invoiceable-patients-reports"},
		{name: "reports"}, {name: "a.b-c"}, {name: "a"}, {name: "A"}, {name: "ab"},
		{name: "Bad_Name"}, {name: "a_b"}, {name: "-abc-"}, {name: ".hidden"}, {name: "v1.2"},
		{name: strings.Repeat("a", MaxLen)},
		// Hostile or reserved.
		{name: "", bad: "empty"},
		{name: strings.Repeat("a", MaxLen+1), bad: "256 characters"},
		{name: strings.Repeat("a", 1<<20), bad: "1048576 characters"},
		{name: ".", bad: `cannot be "."`},
		{name: "..", bad: "two dots"},
		{name: "a..b", bad: "two dots"},
		{name: "../etc", bad: "two dots"},
		{name: "a/b", bad: `"/" at byte 1`},
		{name: "/", bad: `"/" at byte 0`},
		{name: `a\b`, bad: `at byte 1`},
		{name: "a\x00b", bad: `"\x00" at byte 1`},
		{name: "a\nb", bad: `"\n" at byte 1`},
		{name: "a\x7fb", bad: `at byte 1`},
		{name: "a b", bad: `" " at byte 1`},
		{name: "é", bad: "at byte 0"},
		{name: "a\xffb", bad: `"\xff" at byte 1`},
		{name: "%2e%2e", bad: `"%" at byte 0`},
		{name: "a:b", bad: `":" at byte 1`},
		{name: "a*", bad: `"*" at byte 1`},
		{name: "a?b", bad: `"?" at byte 1`},
		{name: "a#b", bad: `"#" at byte 1`},
		{name: "_zambda-code", bad: "reserved for Ward"},
		{name: "_", bad: "reserved for Ward"},
	} {
		got := Problem(tc.name)
		if tc.bad == "" && got != "" || tc.bad != "" && !strings.Contains(got, tc.bad) {
			t.Errorf("Problem(%q) = %q, want one mentioning %q", clip(tc.name), got, tc.bad)
		}
		if len(got) > 400 {
			t.Errorf("Problem(%q) is %d bytes: the name must be clipped", clip(tc.name), len(got))
		}
	}
}

// FuzzBucketName checks the property that matters: an accepted name is one
// URL path segment that nothing rewrites (routers clean "." and "..", clients
// escape other bytes), so the name a client sends is the name Ward stores,
// decides policies on and signs; and it cannot reach Ward's own buckets.
func FuzzBucketName(f *testing.F) {
	for _, s := range []string{"reports", project + "-TelemedRecordings", ".", "..", "a..b", "_x", "a/b", "a\x00", "é", strings.Repeat("Z", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if Problem(name) != "" {
			return
		}
		if name == "" || len(name) > MaxLen || strings.HasPrefix(name, "_") || strings.Contains(name, "..") {
			t.Fatalf("accepted %q", name)
		}
		if url.PathEscape(name) != name || path.Clean("/"+name) != "/"+name || path.Base(name) != name {
			t.Fatalf("accepted %q, which a URL path changes", name)
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`/\:*?"<>|%#`, c) >= 0 {
				t.Fatalf("accepted %q with byte %q", name, c)
			}
		}
	})
}
