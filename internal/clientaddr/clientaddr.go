// Package clientaddr finds a request's client address behind reverse
// proxies: X-Forwarded-For and Forwarded are believed only as far as they
// were written by proxies the operator trusts.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver knows which peers are trusted proxies. The zero value trusts
// none: the client is always the TCP peer.
type Resolver struct {
	trusted []netip.Prefix
}

// Parse reads a comma-separated list of CIDR ranges or single addresses
// ("10.0.0.0/8,127.0.0.1"); "" trusts no proxy.
func Parse(list string) (Resolver, error) {
	var r Resolver
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return Resolver{}, fmt.Errorf("trusted proxy %q is neither a CIDR range nor an address: %w", f, err)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

func (r Resolver) trusts(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client is the request's client address. From an untrusted peer it is
// the peer, whatever the headers say. From a trusted proxy it walks the
// Forwarded for= list (or, without Forwarded, X-Forwarded-For) right to
// left, skipping trusted proxies, and returns the first address that is not
// one: each proxy appends the peer it saw, so only the entries right of the
// first untrusted one were written by proxies the operator runs. A
// malformed or obfuscated entry stops the walk at the last hop known good.
func (r Resolver) Client(req *http.Request) string {
	peer, ok := parseAddr(req.RemoteAddr)
	if !ok {
		return req.RemoteAddr
	}
	if !r.trusts(peer) {
		return peer.String()
	}
	hops := forwardedFor(req.Header.Values("Forwarded"))
	if hops == nil {
		hops = splitList(req.Header.Values("X-Forwarded-For"))
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseAddr(hops[i])
		if !ok {
			break
		}
		client = a
		if !r.trusts(a) {
			break
		}
	}
	return client.String()
}

// forwardedFor is the for= value of each element of the Forwarded headers
// (RFC 7239), in order; an element without one yields "" (malformed). nil
// when there is no Forwarded header.
func forwardedFor(values []string) []string {
	elems := splitList(values)
	if elems == nil {
		return nil
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		for _, pair := range strings.Split(e, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
				out[i] = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
	}
	return out
}

// splitList splits comma-separated header values into trimmed entries.
// Quoted commas do not occur in the values read here.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// parseAddr reads an address with or without a port, IPv6 in brackets or
// not, and drops any zone and IPv4-in-IPv6 mapping.
func parseAddr(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
