package main

import (
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
)

func TestDatabaseAddrs(t *testing.T) {
	t.Setenv("PGHOST", "")
	t.Setenv("PGPORT", "")
	for _, tc := range []struct {
		dsn  string
		want []string
	}{
		{"", nil},
		{"ward-data/ward.db", nil},
		{"postgres://ward:secret@db.example:6543/ward?sslmode=disable", []string{"db.example:6543"}},
		{"postgresql://ward@127.0.0.1/ward", []string{"127.0.0.1:5432"}},
		{"postgres://ward@[::1]:5433/ward?sslmode=disable", []string{"[::1]:5433"}},
		{"postgres://ward@a.example:1,b.example:2/ward?sslmode=disable", []string{"a.example:1", "b.example:2"}},
		{"postgres:///ward?host=/var/run/postgresql", nil}, // a unix socket: not dialled over the network
	} {
		got, err := databaseAddrs(tc.dsn)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("databaseAddrs(%q) = %v, %v; want %v", tc.dsn, got, err, tc.want)
		}
	}
}

// TestEgressPolicies: --egress-allow opens a range but never Ward's
// database or debug server; --allow-private-jwks widens JWKS fetches only.
func TestEgressPolicies(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := config{Database: "postgres://ward@127.0.0.1:5432/ward?sslmode=disable", DebugAddr: "127.0.0.1:6060",
		EgressAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	for _, private := range []bool{false, true} {
		c.AllowPrivateJWKS = private
		all, jwks, err := egressPolicies(t.Context(), c, log)
		if err != nil {
			t.Fatal(err)
		}
		for addr, want := range map[string][2]bool{ // allowed by {all, jwks}
			"127.0.0.1:8080":  {true, true},
			"127.0.0.1:5432":  {false, false},
			"127.0.0.1:6060":  {false, false},
			"10.0.0.1:443":    {false, private},
			"169.254.169.254": {false, false},
			"203.0.113.1:443": {true, true},
		} {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				ap = netip.AddrPortFrom(netip.MustParseAddr(addr), 80)
			}
			if got := [2]bool{all.Check(ap) == nil, jwks.Check(ap) == nil}; got != want {
				t.Errorf("allow-private-jwks=%v: %s allowed by {all, jwks} = %v, want %v", private, addr, got, want)
			}
		}
	}
}
