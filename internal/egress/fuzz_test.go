package egress

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseAllow: ParseAllow never panics; what it accepts is one valid,
// canonical (masked, IPv4 as IPv4) prefix per non-empty item, containing
// its own address, and printing the list parses back to the same list; an
// error names the item.
func FuzzParseAllow(f *testing.F) {
	for _, s := range []string{"", "127.0.0.1/32", "10.0.0.0/8, 192.168.0.0/16", "::1", "fd00::/8,127.0.0.1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.0/104", "10.0.0.5/8", "fe80::1%eth0", "1.2.3.4/33", "a,,b", " , ", "0.0.0.0/0", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAllow(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "egress: allow list item ") {
				t.Fatalf("error %q does not name the item", err)
			}
			return
		}
		items := 0
		for _, it := range strings.Split(s, ",") {
			if strings.TrimSpace(it) != "" {
				items++
			}
		}
		if len(got) != items {
			t.Fatalf("%d prefixes from %d items", len(got), items)
		}
		var printed []string
		for _, p := range got {
			if !p.IsValid() || p.Masked() != p || !p.Contains(p.Addr()) || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("ParseAllow(%q) gave %v", s, p)
			}
			printed = append(printed, p.String())
		}
		again, err := ParseAllow(strings.Join(printed, ","))
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("round trip of %v: %v, %v", got, again, err)
		}
	})
}

func TestParseAllow(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"", "", ""},
		{"127.0.0.1/32", "127.0.0.1/32", ""},
		{"127.0.0.1", "127.0.0.1/32", ""},
		{" 10.0.0.0/8 , fd00::/8,", "10.0.0.0/8 fd00::/8", ""},
		{"::1", "::1/128", ""},
		{"::ffff:127.0.0.1", "127.0.0.1/32", ""},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", ""},
		{"10.0.0.0/8,nope", "", `item 2 "nope": not an IP address or CIDR range`},
		{"10.0.0.5/8", "", "write 10.0.0.0/8 for the range or 10.0.0.5/32 for the one address"},
		{"1.2.3.4/33", "", `item 1 "1.2.3.4/33": not a CIDR range`},
		{"fe80::1%eth0", "", "zone"},
		{"localhost", "", "not an IP address"},
	} {
		got, err := ParseAllow(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAllow(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if err != nil || strings.Join(s, " ") != tc.want {
			t.Errorf("ParseAllow(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}
