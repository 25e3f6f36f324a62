package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

const (
	// DialTimeout bounds one connection (every address tried, together).
	DialTimeout = 5 * time.Second
	// ResolveTimeout bounds CheckURL's DNS lookup: it runs while an API
	// caller waits.
	ResolveTimeout = 2 * time.Second
)

// DialContext connects like net.Dialer.DialContext, checking every address
// it tries, after DNS, just before connecting: what is checked is what is
// dialled, so a name that changes its answer cannot slip through. Only TCP
// is dialled.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("egress: dial %s %s: only TCP connections are made", network, address)
	}
	d := net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second,
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &DeniedError{Host: address, Rule: "not an IP address and port"}
			}
			return p.Check(ap)
		}}
	return d.DialContext(ctx, network, address)
}

// HTTPClient is an HTTP client whose every connection, redirects included,
// is dialled through the policy. It never uses a proxy: an HTTP_PROXY
// from the environment would dial on Ward's behalf, unchecked. timeout is
// the client's whole-request deadline (0: none).
func (p *Policy) HTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = p.DialContext
	return &http.Client{Transport: t, Timeout: timeout}
}

// CheckURL is the early check when a URL is registered (a subscription
// endpoint): raw must be an http(s) URL, and if its host is an address or
// resolves now (within ResolveTimeout), no address may be refused; the
// *DeniedError names the rule. A name that does not resolve is not an error
// here: it may resolve later, and the dial is checked then.
func (p *Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("egress: %q is not an http(s) URL", raw)
	}
	port := uint64(80)
	if u.Scheme == "https" {
		port = 443
	}
	if ps := u.Port(); ps != "" {
		if port, err = strconv.ParseUint(ps, 10, 16); err != nil {
			return fmt.Errorf("egress: %q has an invalid port", raw)
		}
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(netip.AddrPortFrom(a, uint16(port)))
	}
	ctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		// The resolver may answer IPv4 in its IPv4-mapped form.
		if err := p.Check(netip.AddrPortFrom(a.Unmap(), uint16(port))); err != nil {
			var de *DeniedError
			if errors.As(err, &de) {
				de.Host = host
			}
			return err
		}
	}
	return nil
}
