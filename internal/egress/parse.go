package egress

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseAllow reads an allow list (--egress-allow): comma-separated CIDR
// ranges or bare addresses (a bare address is a /32 or /128). IPv4-mapped
// IPv6 items are written back as IPv4. A range with host bits set
// (10.0.0.5/8) is refused rather than guessed at: 10.0.0.0/8 and
// 10.0.0.5/32 are both plausible. Empty items are skipped.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parseItem(item)
		if err != nil {
			return nil, fmt.Errorf("egress: allow list item %d %q: %w", i+1, item, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseItem(item string) (netip.Prefix, error) {
	if !strings.Contains(item, "/") {
		a, err := netip.ParseAddr(item)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR range")
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("an address with a zone cannot be allowed; drop %%%s", a.Zone())
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(item)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR range such as 10.0.0.0/8 or fd00::/8")
	}
	if m := p.Masked(); m != p {
		one := netip.PrefixFrom(p.Addr(), p.Addr().BitLen())
		return netip.Prefix{}, fmt.Errorf("host bits are set: write %s for the range or %s for the one address", normalize(m), normalize(one))
	}
	return normalize(p), nil
}
