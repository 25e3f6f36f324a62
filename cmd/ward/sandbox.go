package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/zambda/sandbox"
)

// zambdaSandbox builds what every zambda worker runs in (--zambda-sandbox):
// bubblewrap unless "off". Where bubblewrap cannot work, functions are
// refused with the reason, unless the operator chose "off"; "on" makes
// that a start-up error instead. Workers reach the outside through the
// egress policy, and Ward's own public URL besides.
func zambdaSandbox(ctx context.Context, c config, policy *egress.Policy, log *slog.Logger) (sandbox.Sandbox, func(), error) {
	if c.ZambdaSandbox == "off" {
		log.Warn("zambda sandbox is OFF (--zambda-sandbox=off): functions run as Ward's own user, can read its files and reach its network; run only trusted code")
		return sandbox.NewDirect(log, "--zambda-sandbox=off"), func() {}, nil
	}
	network, err := sandboxNetwork(ctx, c.PublicURL, policy)
	if err != nil {
		return nil, nil, err
	}
	sb, err := sandbox.NewBwrap(ctx, sandbox.Config{WorkDir: filepath.Join(c.WorkDir, "run"), Network: network, Logger: log})
	if err != nil {
		if c.ZambdaSandbox == "on" {
			return nil, nil, fmt.Errorf("--zambda-sandbox=on, but the sandbox cannot work here: %w", err)
		}
		u := sandbox.Unavailable{Reason: err.Error()}
		log.Error("zambda sandbox unavailable: functions will be refused until it is fixed (or --zambda-sandbox=off is given)", "reason", err)
		return u, func() {}, nil
	}
	log.Info("zambda sandbox", "enforced", sb.Info().Enforced, "not_enforced", sb.Info().Missing)
	return sb, func() { sb.Close() }, nil
}

// sandboxNetwork lets workers reach Ward's public URL: its port on the
// sandbox's loopback is forwarded there when the URL's host is loopback or
// a name (the name then resolves to 127.0.0.1 inside), and the egress
// policy allows its addresses even when they are private (a load
// balancer's). Everything else goes through the egress policy.
func sandboxNetwork(ctx context.Context, publicURL string, policy *egress.Policy) (sandbox.Network, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" {
		return sandbox.Network{}, fmt.Errorf("--public-url %q: %v", publicURL, err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return sandbox.Network{}, fmt.Errorf("--public-url %q: bad port", publicURL)
	}
	var own []netip.AddrPort
	if ip, err := netip.ParseAddr(host); err == nil {
		own = append(own, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
	} else if ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host); err == nil {
		for _, ip := range ips {
			own = append(own, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
		}
	}
	allowed := policy.With(own...)
	n := sandbox.Network{Dial: allowed.DialContext}
	ip, ipErr := netip.ParseAddr(host)
	switch {
	case p == sandbox.RuntimeAPIPort: // taken inside: the proxy reaches it
	case ipErr == nil && ip.IsLoopback():
		n.Forward = []sandbox.Forward{{Port: p, Addr: net.JoinHostPort(host, port)}}
	case ipErr != nil: // a name: 127.0.0.1 inside, forwarded to the name outside
		n.Forward = []sandbox.Forward{{Port: p, Addr: net.JoinHostPort(host, port)}}
		n.Hosts = []string{host}
	}
	return n, nil
}
