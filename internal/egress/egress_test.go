package egress

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func mustNew(t *testing.T, cfg Config) *Policy {
	t.Helper()
	p, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDefaultRules: what the default policy refuses, and why.
func TestDefaultRules(t *testing.T) {
	def := mustNew(t, Config{})
	for _, tc := range []struct {
		addr string
		rule string // "" = allowed
	}{
		{"8.8.8.8:443", ""},
		{"[2606:4700:4700::1111]:443", ""},
		{"203.0.113.7:80", ""}, // documentation ranges stand for public hosts
		{"198.51.100.1:80", ""},
		{"[2001:db8::1]:80", ""},
		{"127.0.0.1:5432", "a loopback address"},
		{"127.8.9.10:80", "a loopback address"},
		{"[::1]:80", "a loopback address"},
		{"0.0.0.0:80", "the unspecified address"},
		{"[::]:80", "the unspecified address"},
		{"10.0.0.1:80", "a private address"},
		{"172.16.0.1:80", "a private address"},
		{"172.31.255.255:80", "a private address"},
		{"192.168.1.1:80", "a private address"},
		{"[fc00::1]:80", "a private address"},
		{"[fd12:3456::1]:80", "a private address"},
		{"169.254.169.254:80", "the cloud metadata address"},
		{"[fd00:ec2::254]:80", "the cloud metadata address"},
		{"169.254.1.1:80", "a link-local address"},
		{"[fe80::1]:80", "a link-local address"},
		{"[fe80::1%eth0]:80", "a link-local address"},
		{"100.64.0.1:80", "carrier-grade NAT"},
		{"100.127.255.254:80", "carrier-grade NAT"},
		{"192.0.0.8:80", "IETF protocol assignment"},
		{"198.18.0.1:80", "benchmarking"},
		{"198.19.255.1:80", "benchmarking"},
		{"224.0.0.1:80", "a multicast address"},
		{"239.255.255.250:1900", "a multicast address"},
		{"[ff02::1]:80", "a multicast address"},
		{"255.255.255.255:80", "the broadcast address"},
		{"0.1.2.3:80", "this network"},
		{"240.0.0.1:80", "a reserved address"},
		{"[64:ff9b::a00:1]:80", "NAT64"},
		{"[64:ff9b:1::1]:80", "NAT64"},
		{"[::7f00:1]:80", "a reserved IPv6 address"},
		{"[fec0::1]:80", "site-local"},
		// IPv4-mapped forms are judged as the IPv4 address.
		{"[::ffff:127.0.0.1]:80", "a loopback address"},
		{"[::ffff:10.0.0.1]:80", "a private address"},
		{"[::ffff:169.254.169.254]:80", "the cloud metadata address"},
		{"[::ffff:100.64.0.1]:80", "carrier-grade NAT"},
		{"[::ffff:0.0.0.0]:80", "the unspecified address"},
		{"[::ffff:8.8.8.8]:443", ""},
	} {
		for name, p := range map[string]*Policy{"nil": nil, "New": def} {
			err := p.Check(netip.MustParseAddrPort(tc.addr))
			if tc.rule == "" {
				if err != nil {
					t.Errorf("%s: Check(%s) = %v, want allowed", name, tc.addr, err)
				}
				continue
			}
			var de *DeniedError
			if !errors.Is(err, ErrDenied) || !errors.As(err, &de) || !strings.Contains(de.Rule, tc.rule) || de.Protected {
				t.Errorf("%s: Check(%s) = %v, want a refusal as %q", name, tc.addr, err, tc.rule)
			}
		}
	}
	if err := def.Check(netip.AddrPort{}); !errors.Is(err, ErrDenied) {
		t.Errorf("Check(zero) = %v, want ErrDenied", err)
	}
}

func TestErrorText(t *testing.T) {
	p := mustNew(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Protect: []string{"127.0.0.1:5432"}})
	for _, tc := range []struct{ addr, want string }{
		{"10.1.2.3:443", "egress: 10.1.2.3:443 is a private address (refused by the egress policy; open it with --egress-allow 10.1.2.3/32)"},
		{"[::ffff:10.1.2.3]:443", "egress: [::ffff:10.1.2.3]:443 is a private address (refused by the egress policy; open it with --egress-allow 10.1.2.3/32)"},
		{"[fe80::1%eth0]:80", "egress: [fe80::1%eth0]:80 is a link-local address (refused by the egress policy; open it with --egress-allow fe80::1/128)"},
		{"127.0.0.1:5432", "egress: 127.0.0.1:5432 is one of Ward's own service addresses (its database or debug server) (always refused)"},
	} {
		if err := p.Check(netip.MustParseAddrPort(tc.addr)); err == nil || err.Error() != tc.want {
			t.Errorf("Check(%s) = %v\nwant %s", tc.addr, err, tc.want)
		}
	}
}

func TestAllowAndProtect(t *testing.T) {
	pre := netip.MustParsePrefix
	for _, tc := range []struct {
		name    string
		cfg     Config
		allowed []string
		refused []string
		protect []string // refused as Ward's own
	}{
		{"one loopback address", Config{Allow: []netip.Prefix{pre("127.0.0.1/32")}},
			[]string{"127.0.0.1:8080", "[::ffff:127.0.0.1]:8080"}, []string{"127.0.0.2:8080", "[::1]:8080", "10.0.0.1:80"}, nil},
		{"mapped range written as IPv6", Config{Allow: []netip.Prefix{pre("::ffff:10.0.0.0/104")}},
			[]string{"10.9.9.9:80", "[::ffff:10.9.9.9]:80"}, []string{"192.168.0.1:80", "[::ffff:192.168.0.1]:80"}, nil},
		{"host bits cleared", Config{Allow: []netip.Prefix{pre("10.1.2.3/16")}},
			[]string{"10.1.200.1:80"}, []string{"10.2.0.1:80"}, nil},
		{"database on loopback", Config{Allow: []netip.Prefix{pre("127.0.0.0/8"), pre("::1/128")}, Protect: []string{"127.0.0.1:5432"}},
			[]string{"127.0.0.1:5433", "[::1]:8080"}, nil,
			// A server on 127.0.0.1 may listen on every local address: the port is closed on all of them.
			[]string{"127.0.0.1:5432", "[::ffff:127.0.0.1]:5432", "127.0.0.2:5432", "[::1]:5432"}},
		{"everything allowed, database still closed", Config{Allow: []netip.Prefix{pre("0.0.0.0/0"), pre("::/0")}, Protect: []string{"localhost:5432"}},
			[]string{"10.0.0.1:5432", "127.0.0.1:80", "203.0.113.1:5432"}, nil, []string{"127.0.0.1:5432", "0.0.0.0:5432", "[::]:5432"}},
		{"debug server on every interface", Config{Allow: []netip.Prefix{pre("127.0.0.0/8")}, Protect: []string{":6060"}},
			[]string{"127.0.0.1:6061"}, nil, []string{"127.0.0.1:6060", "0.0.0.0:6060"}},
		{"remote database: that address only", Config{Allow: []netip.Prefix{pre("10.0.0.0/8")}, Protect: []string{"10.0.0.5:5432"}},
			[]string{"10.0.0.6:5432", "10.0.0.5:5433"}, nil, []string{"10.0.0.5:5432"}},
		{"protected public address", Config{Protect: []string{"[2001:db8::5]:5432"}},
			[]string{"[2001:db8::5]:5433", "[2001:db8::6]:5432"}, nil, []string{"[2001:db8::5]:5432"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.cfg)
			for _, a := range tc.allowed {
				if err := p.Check(netip.MustParseAddrPort(a)); err != nil {
					t.Errorf("Check(%s) = %v, want allowed", a, err)
				}
			}
			for _, a := range tc.refused {
				var de *DeniedError
				if err := p.Check(netip.MustParseAddrPort(a)); !errors.As(err, &de) || de.Protected {
					t.Errorf("Check(%s) = %v, want refused by a default rule", a, err)
				}
			}
			for _, a := range tc.protect {
				var de *DeniedError
				if err := p.Check(netip.MustParseAddrPort(a)); !errors.As(err, &de) || !de.Protected {
					t.Errorf("Check(%s) = %v, want refused as Ward's own", a, err)
				}
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Allow: []netip.Prefix{{}}}, "invalid allowed range"},
		{Config{Protect: []string{"no-port"}}, `protected address "no-port"`},
		{Config{Protect: []string{"127.0.0.1:pg"}}, "port must be a number"},
		{Config{Protect: []string{"127.0.0.1:70000"}}, "port must be a number"},
		{Config{Protect: []string{"nowhere.invalid:5432"}}, "resolve protected address"},
	} {
		if _, err := New(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestWith(t *testing.T) {
	base := mustNew(t, Config{Protect: []string{"10.0.0.5:5432"}})
	public := netip.MustParseAddrPort("10.0.0.5:8080")
	p := base.With(public, netip.MustParseAddrPort("10.0.0.5:5432"), netip.MustParseAddrPort("[::ffff:192.168.1.2]:443"))
	for addr, want := range map[string]bool{
		"10.0.0.5:8080": true, "[::ffff:10.0.0.5]:8080": true, "192.168.1.2:443": true,
		"10.0.0.5:8081": false, "10.0.0.6:8080": false,
		"10.0.0.5:5432": false, // With never opens a protected address
	} {
		if err := p.Check(netip.MustParseAddrPort(addr)); (err == nil) != want {
			t.Errorf("With: Check(%s) = %v, want allowed=%v", addr, err, want)
		}
	}
	if base.Check(public) == nil {
		t.Error("With changed the policy it was called on")
	}
	if p.With(netip.MustParseAddrPort("10.0.0.7:80")).Check(public) != nil {
		t.Error("a copy of a copy lost the first copy's addresses")
	}
	if err := (*Policy)(nil).With(public).Check(public); err != nil {
		t.Errorf("nil.With: %v", err)
	}
}
