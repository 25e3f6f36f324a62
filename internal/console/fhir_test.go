package console

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSearchQuery: the search box's text (outside input) becomes a query
// that always names a page size, keeps every parameter the box gave, and
// encodes to a query string that parses back to itself (so nothing the
// developer typed can add a path or a fragment to the API request).
func FuzzSearchQuery(f *testing.F) {
	f.Add("name=smith&_sort=-_lastUpdated")
	f.Add("?_count=5")
	f.Add("a=%zz")
	f.Add("x=1#frag/../../v1/iam/role")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := searchQuery(q)
		if err != nil {
			return
		}
		if v.Get("_count") == "" {
			t.Fatalf("searchQuery(%q) has no _count", q)
		}
		enc := v.Encode()
		if strings.ContainsAny(enc, "#/?") {
			t.Fatalf("encoded query %q holds a URL delimiter", enc)
		}
		back, err := url.ParseQuery(enc)
		if err != nil || back.Encode() != enc {
			t.Fatalf("round trip of %q: %q, %v", enc, back.Encode(), err)
		}
	})
}

func TestSearchQueryKeepsCount(t *testing.T) {
	for q, want := range map[string]string{"": "20", "?_count=5": "5", "name=x": "20"} {
		v, err := searchQuery(q)
		if err != nil || v.Get("_count") != want {
			t.Errorf("searchQuery(%q) = %v, %v; want _count %s", q, v, err, want)
		}
	}
	if _, err := searchQuery("a=%zz"); err == nil {
		t.Error("a malformed query was accepted")
	}
}
