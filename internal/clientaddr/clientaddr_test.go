package clientaddr

import (
	"net/http"
	"testing"
)

func TestClient(t *testing.T) {
	r, err := Parse("10.0.0.0/8, 127.0.0.1,fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer, xff string
		fwd             []string
		want            string
	}{
		{"no proxy", "203.0.113.5:4000", "", nil, "203.0.113.5"},
		{"untrusted peer's header ignored", "203.0.113.5:4000", "198.51.100.1", nil, "203.0.113.5"},
		{"untrusted peer's Forwarded ignored", "203.0.113.5:4000", "", []string{"for=198.51.100.1"}, "203.0.113.5"},
		{"trusted proxy", "10.1.2.3:4000", "198.51.100.1", nil, "198.51.100.1"},
		{"client spoofs a left entry", "10.1.2.3:4000", "1.2.3.4, 198.51.100.1", nil, "198.51.100.1"},
		{"two trusted proxies", "10.1.2.3:4000", "1.2.3.4, 198.51.100.1, 10.9.9.9", nil, "198.51.100.1"},
		{"trusted loopback without header", "127.0.0.1:4000", "", nil, "127.0.0.1"},
		{"all hops trusted", "10.1.2.3:4000", "10.0.0.7, 10.0.0.8", nil, "10.0.0.7"},
		{"trusted proxy without header", "10.1.2.3:4000", "", nil, "10.1.2.3"},
		{"malformed entry stops at the last good hop", "10.1.2.3:4000", "198.51.100.1, garbage, 10.0.0.9", nil, "10.0.0.9"},
		{"malformed rightmost entry", "10.1.2.3:4000", "198.51.100.1, nonsense", nil, "10.1.2.3"},
		{"IPv6 client", "[fd00::1]:4000", "2001:db8::7", nil, "2001:db8::7"},
		{"IPv6 peer untrusted", "[2001:db8::9]:4000", "198.51.100.1", nil, "2001:db8::9"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:4000", "198.51.100.1", nil, "198.51.100.1"},
		{"Forwarded", "10.1.2.3:4000", "", []string{`for=192.0.2.60;proto=http;by=203.0.113.43`}, "192.0.2.60"},
		{"Forwarded IPv6 with port", "10.1.2.3:4000", "", []string{`for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"Forwarded list, case, spaces", "10.1.2.3:4000", "", []string{`for=1.2.3.4`, `For=198.51.100.1 , for=10.0.0.2`}, "198.51.100.1"},
		{"Forwarded wins over X-Forwarded-For", "10.1.2.3:4000", "1.2.3.4", []string{`for=198.51.100.1`}, "198.51.100.1"},
		{"Forwarded obfuscated", "10.1.2.3:4000", "", []string{`for=_hidden, for=10.0.0.2`}, "10.0.0.2"},
		{"Forwarded unknown", "10.1.2.3:4000", "", []string{`for=unknown`}, "10.1.2.3"},
		{"Forwarded without for", "10.1.2.3:4000", "", []string{`proto=https`}, "10.1.2.3"},
		{"peer without port", "203.0.113.5", "", nil, "203.0.113.5"},
		{"unparsable peer kept", "@pipe", "198.51.100.1", nil, "@pipe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
			if c.xff != "" {
				req.Header.Set("X-Forwarded-For", c.xff)
			}
			for _, f := range c.fwd {
				req.Header.Add("Forwarded", f)
			}
			if got := r.Client(req); got != c.want {
				t.Fatalf("Client = %q, want %q", got, c.want)
			}
		})
	}
	// Trusting nobody, headers never count.
	req := &http.Request{RemoteAddr: "10.1.2.3:1", Header: http.Header{"X-Forwarded-For": {"198.51.100.1"}}}
	if got := (Resolver{}).Client(req); got != "10.1.2.3" {
		t.Fatalf("zero Resolver = %q", got)
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"10.0.0.0/8", true},
		{"10.0.0.1, ::1, fd00::/8", true},
		{"10.0.0.0/33", false},
		{"proxy.example", false},
		{"10.0.0.0/8,,", true},
	}
	for _, c := range cases {
		if _, err := Parse(c.in); (err == nil) != c.ok {
			t.Errorf("Parse(%q) = %v, want ok %v", c.in, err, c.ok)
		}
	}
}
