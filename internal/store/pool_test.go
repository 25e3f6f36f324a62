package store_test

import (
	"context"
	"testing"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

func TestDefaultMaxConns(t *testing.T) {
	for _, tc := range []struct{ maxConnections, want int }{
		{100, 25}, // PostgreSQL's default: four replicas fit
		{500, 32},
		{10, 4},
		{0, 4},
	} {
		if got := store.DefaultMaxConns(tc.maxConnections); got != tc.want {
			t.Errorf("DefaultMaxConns(%d) = %d, want %d", tc.maxConnections, got, tc.want)
		}
	}
}

// TestPostgresPoolSize: the pool is the configured size, or sized from
// the server's max_connections.
func TestPostgresPoolSize(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	for _, tc := range []struct {
		name     string
		maxConns int
		want     func(maxConnections int) int
	}{
		{"configured", 7, func(int) int { return 7 }},
		{"default", 0, store.DefaultMaxConns},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.OpenWith(ctx, dsn, nil, store.Options{MaxConns: tc.maxConns})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			limit, err := s.QueryInt(ctx, `SELECT current_setting('max_connections')::int`)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.MaxConns(), tc.want(int(limit)); got != want {
				t.Errorf("pool of %d connections, want %d", got, want)
			}
		})
	}
}
