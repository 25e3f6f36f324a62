package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wardhealth/ward/internal/egress"
)

// privateRanges are what the deprecated --allow-private-jwks opens, for
// JWKS fetches only.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
}

// egressPolicies builds the egress policy for every outbound request, and
// the one for JWKS fetches (the same, unless --allow-private-jwks). Ward's
// debug server and database stay refused whatever --egress-allow opens.
func egressPolicies(ctx context.Context, c config, log *slog.Logger) (all, jwks *egress.Policy, err error) {
	protect, err := databaseAddrs(c.Database)
	if err != nil {
		return nil, nil, err
	}
	if c.DebugAddr != "" {
		protect = append(protect, c.DebugAddr)
	}
	all, err = egress.New(ctx, egress.Config{Allow: c.EgressAllow, Protect: protect})
	if err != nil {
		return nil, nil, err
	}
	log.Info("egress policy: outbound requests reach public addresses and the allowed ranges, never Ward's own addresses",
		"allowed", prefixStrings(all.Allowed()), "protected", protect)
	if !c.AllowPrivateJWKS {
		return all, all, nil
	}
	log.Warn("--allow-private-jwks is deprecated: use --egress-allow with the ranges the JWKS servers are on")
	jwks, err = egress.New(ctx, egress.Config{Allow: append(slices.Clone(c.EgressAllow), privateRanges...), Protect: protect})
	return all, jwks, err
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// databaseAddrs are the host:port addresses of a postgres:// DSN, as the
// driver reads it (PGHOST and PGPORT included); none for SQLite, and none
// for unix sockets, which are not dialled over the network.
func databaseAddrs(dsn string) ([]string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, nil
	}
	pc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("--database: %w", err)
	}
	var out []string
	add := func(host string, port uint16) {
		hp := net.JoinHostPort(host, strconv.Itoa(int(port)))
		if !strings.HasPrefix(host, "/") && !slices.Contains(out, hp) {
			out = append(out, hp)
		}
	}
	add(pc.Host, pc.Port)
	for _, f := range pc.Fallbacks {
		add(f.Host, f.Port)
	}
	return out, nil
}
