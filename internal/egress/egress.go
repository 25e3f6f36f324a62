// Package egress is the one policy every outbound request Ward makes on a
// tenant's behalf goes through: rest-hook subscription deliveries, client
// JWKS fetches, and (next) zambda workers and providers.
//
// One policy, because each of those takes a URL from an API caller: without
// a guard, a Subscription endpoint or a jwksUrl makes Ward a proxy into its
// own network (SSRF): the host's loopback services, the private network,
// the cloud metadata service at 169.254.169.254, and Ward's own database
// and debug server. By default only public unicast addresses are reached;
// an operator opens ranges with --egress-allow, and Ward's own addresses
// (Config.Protect) stay refused whatever is opened.
//
// The check is made on the address actually dialled, after DNS and for
// every address tried (Policy.DialContext), so a name that resolves to a
// public address when a URL is registered and to 127.0.0.1 when it is used
// (DNS rebinding) is still refused. CheckURL is the early, best-effort
// check at registration time, for a clear 400; it never replaces the dial
// check.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// ErrDenied is wrapped by every refusal (a *DeniedError).
var ErrDenied = errors.New("egress: address refused")

// DeniedError is one refusal: the address and the rule that refused it, in
// plain words, so that callers can put it into a 400 or a delivery record.
type DeniedError struct {
	Addr netip.AddrPort // the address refused, as dialled or resolved
	Host string         // the name that resolved to Addr, if any (CheckURL), or what was not an address
	Rule string         // e.g. "a loopback address"
	// Protected: one of Ward's own addresses, refused even when an allowed
	// range covers it.
	Protected bool
}

func (e *DeniedError) Error() string {
	what := e.Addr.String()
	switch {
	case !e.Addr.IsValid():
		return fmt.Sprintf("egress: %q is %s", e.Host, e.Rule)
	case e.Host != "":
		what = e.Host + " (" + what + ")"
	}
	if e.Protected {
		return fmt.Sprintf("egress: %s is %s (always refused)", what, e.Rule)
	}
	a := e.Addr.Addr().Unmap().WithZone("")
	return fmt.Sprintf("egress: %s is %s (refused by the egress policy; open it with --egress-allow %s)", what, e.Rule,
		netip.PrefixFrom(a, a.BitLen()))
}

func (e *DeniedError) Unwrap() error { return ErrDenied }

// Config is what an operator opens and what stays closed.
type Config struct {
	// Allow opens ranges the default refuses (e.g. 10.0.0.0/8 for webhooks
	// on the private network, 127.0.0.1/32 for a test receiver). IPv4 ranges
	// are written as IPv4: addresses are unmapped before they are compared.
	Allow []netip.Prefix
	// Protect lists host:port addresses that are always refused, even when
	// Allow covers them: Ward's database and debug server. Names are
	// resolved by New. A local address (loopback, unspecified such as
	// ":6060", or one of this machine's) protects its port on every local
	// address, since a server listening on all interfaces answers on each.
	Protect []string
}

// Policy decides which addresses Ward may connect to. It is immutable and
// safe for concurrent use. A nil *Policy is the default policy: public
// unicast addresses only, nothing protected.
type Policy struct {
	allow   []netip.Prefix
	exact   map[netip.AddrPort]bool // opened by With
	protect map[netip.AddrPort]bool
	// localPorts are protected ports of local addresses; local holds this
	// machine's interface addresses (read once, by New).
	localPorts map[uint16]bool
	local      map[netip.Addr]bool
}

// New builds the policy, resolving the names in cfg.Protect.
func New(ctx context.Context, cfg Config) (*Policy, error) {
	p := &Policy{}
	for _, pre := range cfg.Allow {
		if !pre.IsValid() {
			return nil, fmt.Errorf("egress: invalid allowed range %v", pre)
		}
		p.allow = append(p.allow, normalize(pre))
	}
	if len(cfg.Protect) == 0 {
		return p, nil
	}
	p.protect, p.localPorts, p.local = map[netip.AddrPort]bool{}, map[uint16]bool{}, map[netip.Addr]bool{}
	ifaces, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("egress: list this machine's addresses: %w", err)
	}
	for _, ia := range ifaces {
		if n, ok := ia.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok {
				p.local[a.Unmap()] = true
			}
		}
	}
	for _, hp := range cfg.Protect {
		if err := p.addProtected(ctx, hp); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Policy) addProtected(ctx context.Context, hostport string) error {
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("egress: protected address %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return fmt.Errorf("egress: protected address %q: the port must be a number", hostport)
	}
	var addrs []netip.Addr
	if host == "" {
		addrs = []netip.Addr{netip.IPv4Unspecified()}
	} else if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return fmt.Errorf("egress: resolve protected address %q: %w", hostport, err)
	}
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		p.protect[netip.AddrPortFrom(a, uint16(port))] = true
		if p.isLocal(a) {
			p.localPorts[uint16(port)] = true
		}
	}
	return nil
}

func (p *Policy) isLocal(a netip.Addr) bool {
	return a.IsLoopback() || a.IsUnspecified() || p.local[a]
}

// normalize writes an IPv4-mapped range as IPv4 and clears host bits.
func normalize(pre netip.Prefix) netip.Prefix {
	if a := pre.Addr(); a.Is4In6() && pre.Bits() >= 96 {
		pre = netip.PrefixFrom(a.Unmap(), pre.Bits()-96)
	}
	return pre.Masked()
}

// With returns a copy of p that also allows exactly these address:ports
// (Ward's own public URL for zambda workers, even when it is private). It
// does not open a protected address.
func (p *Policy) With(allow ...netip.AddrPort) *Policy {
	q := &Policy{exact: map[netip.AddrPort]bool{}}
	if p != nil {
		*q = *p
		q.exact = map[netip.AddrPort]bool{}
		for k := range p.exact {
			q.exact[k] = true
		}
	}
	for _, ap := range allow {
		q.exact[netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())] = true
	}
	return q
}

// Allowed is the ranges opened beyond the default (for logs).
func (p *Policy) Allowed() []netip.Prefix {
	if p == nil {
		return nil
	}
	return slices.Clone(p.allow)
}

// Check is nil if Ward may connect to ap, else a *DeniedError (wrapping
// ErrDenied) naming the rule.
func (p *Policy) Check(ap netip.AddrPort) error {
	if !ap.IsValid() {
		return &DeniedError{Host: ap.String(), Rule: "not an IP address and port"}
	}
	a := ap.Addr().Unmap().WithZone("")
	key := netip.AddrPortFrom(a, ap.Port())
	if p != nil {
		if p.protect[key] || p.localPorts[key.Port()] && p.isLocal(a) {
			return &DeniedError{Addr: ap, Rule: "one of Ward's own service addresses (its database or debug server)", Protected: true}
		}
		if p.exact[key] {
			return nil
		}
		for _, pre := range p.allow {
			if pre.Contains(a) {
				return nil
			}
		}
	}
	if rule := defaultRule(a); rule != "" {
		return &DeniedError{Addr: ap, Rule: rule}
	}
	return nil
}

// defaultRule names the default rule that refuses a, or "" for a public unicast
// address. IPv4-mapped addresses are judged as the IPv4 address they map.
// The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32) are treated as public: they are on nobody's internal
// network, and tests use them to stand for public hosts.
func defaultRule(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return "not an IP address"
	}
	if a.IsUnspecified() {
		return "the unspecified address (it reaches this machine)"
	}
	for _, r := range refused {
		for _, pre := range r.prefixes {
			if pre.Contains(a) {
				return r.rule
			}
		}
	}
	if !a.IsGlobalUnicast() {
		return "not a global unicast address"
	}
	return ""
}

// refusal is a default rule: the ranges it covers and its name.
type refusal struct {
	rule     string
	prefixes []netip.Prefix
}

func refuse(rule string, prefixes ...string) refusal {
	r := refusal{rule: rule}
	for _, s := range prefixes {
		r.prefixes = append(r.prefixes, netip.MustParsePrefix(s))
	}
	return r
}

// refused are the default rules, first match wins.
var refused = []refusal{
	refuse("the cloud metadata address (link-local)", "169.254.169.254/32", "fd00:ec2::254/128"),
	refuse("a loopback address", "127.0.0.0/8", "::1/128"),
	refuse("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
	refuse("a link-local address", "169.254.0.0/16", "fe80::/10"),
	refuse("a site-local address (deprecated)", "fec0::/10"),
	refuse("a carrier-grade NAT address (100.64.0.0/10)", "100.64.0.0/10"),
	refuse("an IETF protocol assignment (192.0.0.0/24)", "192.0.0.0/24"),
	refuse("a benchmarking address (198.18.0.0/15)", "198.18.0.0/15"),
	refuse("the broadcast address", "255.255.255.255/32"),
	refuse("a multicast address", "224.0.0.0/4", "ff00::/8"),
	refuse("a \"this network\" address (0.0.0.0/8)", "0.0.0.0/8"),
	refuse("a reserved address (240.0.0.0/4)", "240.0.0.0/4"),
	refuse("a NAT64 address (it may reach a private IPv4 address)", "64:ff9b::/96", "64:ff9b:1::/48"),
	refuse("a reserved IPv6 address (::/8)", "::/8"),
}
