package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// config is every setting, from flags with WARD_* environment twins.
type config struct {
	Addr           string
	DataDir        string
	Database       string
	PublicURL      string
	MaxBodyBytes   int64
	MaxResponse    int
	RequestTimeout time.Duration
	TokenTTL       time.Duration
}

// parseConfig reads flags; an environment variable sets a flag's default.
func parseConfig(name string, args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	env := func(key, def string) string {
		if v, ok := os.LookupEnv(key); ok {
			return v
		}
		return def
	}
	fs.StringVar(&c.Addr, "addr", env("WARD_ADDR", "127.0.0.1:8080"), "listen address (WARD_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", env("WARD_DATA_DIR", "ward-data"), "data directory (WARD_DATA_DIR)")
	fs.StringVar(&c.Database, "database", env("WARD_DATABASE", ""), "postgres://... URL; empty means SQLite in the data directory (WARD_DATABASE)")
	fs.StringVar(&c.PublicURL, "public-url", env("WARD_PUBLIC_URL", ""), "URL clients reach Ward at; default http://<addr> (WARD_PUBLIC_URL)")
	maxBody := fs.Int64("max-body-bytes", 6<<20, "request body limit in bytes (WARD_MAX_BODY_BYTES)")
	fs.IntVar(&c.MaxResponse, "max-response-bytes", 6<<20, "largest FHIR search response in bytes")
	timeout := fs.Duration("request-timeout", 30*time.Second, "per-request deadline (WARD_REQUEST_TIMEOUT)")
	ttl := fs.Duration("token-ttl", time.Hour, "access token lifetime (WARD_TOKEN_TTL)")
	if v, ok := os.LookupEnv("WARD_MAX_BODY_BYTES"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("WARD_MAX_BODY_BYTES must be a positive number of bytes")
		}
		*maxBody = n
	}
	for key, dst := range map[string]*time.Duration{"WARD_REQUEST_TIMEOUT": timeout, "WARD_TOKEN_TTL": ttl} {
		if v, ok := os.LookupEnv(key); ok {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return c, fmt.Errorf("%s must be a positive duration such as 30s", key)
			}
			*dst = d
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.MaxBodyBytes, c.RequestTimeout, c.TokenTTL = *maxBody, *timeout, *ttl
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	for len(c.PublicURL) > 0 && c.PublicURL[len(c.PublicURL)-1] == '/' {
		c.PublicURL = c.PublicURL[:len(c.PublicURL)-1]
	}
	return c, nil
}

// dsn is the database to open: the URL, or the SQLite file in the data dir.
func (c config) dsn() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "ward.db")
}
