package main

import (
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/egress"
)

// config is every setting, from flags with WARD_* environment twins.
type config struct {
	Addr         string
	DataDir      string
	Database     string
	PublicURL    string
	FHIRPath     string // where the FHIR API is served, "/fhir" by default
	MaxBodyBytes int64
	MaxResponse  int
	// SearchCount is a FHIR search page's size when _count is absent;
	// SearchMaxCount the largest _count honoured (a bigger one is cut).
	SearchCount    int
	SearchMaxCount int
	RequestTimeout time.Duration
	TokenTTL       time.Duration

	// Z3: where object bytes go ("" = files under DataDir/z3, or an
	// s3://bucket/prefix?endpoint=...&region=...&path-style=true URL with the
	// keys in WARD_Z3_S3_ACCESS_KEY and WARD_Z3_S3_SECRET_KEY), presigned URL
	// lifetime, largest object, deadline of one upload or download.
	Z3Backend       string
	Z3URLTTL        time.Duration
	MaxObjectBytes  int64
	TransferTimeout time.Duration

	// The 32-byte master key that seals signing keys, the Z3 URL key and
	// zambda secrets at rest (base64; empty: the key file in the data
	// directory, made on a new database's first start, fine for one server;
	// give every replica the same WARD_SECRETS_KEY on PostgreSQL), and where
	// zambda workers unpack code (default DataDir/functions).
	SecretsKey string
	WorkDir    string

	// DebugAddr, when set, serves Go's pprof profiles there (keep it on
	// loopback: profiles show internals).
	DebugAddr string

	// Subscriptions: attempts before a subscription goes to error, and the
	// first and longest delay between attempts (defaults: 30, 1s, 1h: about
	// a day of retries).
	SubMaxAttempts int
	SubRetryBase   time.Duration
	SubRetryMax    time.Duration

	// ZambdaMaxWorkers bounds the zambda worker processes alive at once;
	// ZambdaProjectWorkers those of one project (0: the runtime's default,
	// a quarter of ZambdaMaxWorkers), so one tenant cannot take them all.
	ZambdaMaxWorkers     int
	ZambdaProjectWorkers int
	// ZambdaSandbox is how workers are isolated: "auto" (bubblewrap, or
	// functions refused where it cannot work), "on" (bubblewrap, or no
	// start), "off" (no isolation: trusted code only).
	ZambdaSandbox string

	// ReadConcurrency is how many FHIR reads and searches run at once
	// (first come, first served): 0 picks (GOMAXPROCS on SQLite, no limit
	// on PostgreSQL, whose server does the work), < 0 is no limit.
	ReadConcurrency int

	// AuthorizerCacheTTL is the longest an authorizer function's decision
	// on a foreign token is reused (never beyond the token's exp).
	AuthorizerCacheTTL time.Duration

	// EgressAllow opens ranges to Ward's outbound requests (rest-hook
	// deliveries, JWKS fetches) beyond public addresses; Ward's database
	// and debug addresses stay closed.
	EgressAllow []netip.Prefix
	// AllowPrivateJWKS (deprecated for EgressAllow) opens loopback and
	// private ranges to backend-service JWKS fetches only.
	AllowPrivateJWKS bool
	// CORSOrigins are browser origins allowed for every project, besides
	// those its applications list.
	CORSOrigins []string
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
	fs.StringVar(&c.FHIRPath, "fhir-path", env("WARD_FHIR_PATH", "/fhir"), "path of the FHIR API under the public URL, e.g. /fhir/r4 (WARD_FHIR_PATH)")
	maxBody := fs.Int64("max-body-bytes", 6<<20, "request body limit in bytes (WARD_MAX_BODY_BYTES)")
	maxResponse := fs.Int64("max-response-bytes", 6<<20, "largest FHIR search response in bytes; a bigger one is a 413 suggesting _count or _elements (WARD_MAX_RESPONSE_BYTES)")
	searchCount := fs.Int64("search-count", 20, "FHIR search page size when _count is absent (WARD_SEARCH_COUNT)")
	searchMax := fs.Int64("search-max-count", 1000, "largest FHIR _count honoured; a bigger one is cut to it (WARD_SEARCH_MAX_COUNT)")
	timeout := fs.Duration("request-timeout", 30*time.Second, "per-request deadline (WARD_REQUEST_TIMEOUT)")
	ttl := fs.Duration("token-ttl", time.Hour, "access token lifetime (WARD_TOKEN_TTL)")
	fs.StringVar(&c.Z3Backend, "z3-backend", env("WARD_Z3_BACKEND", ""), "Z3 bytes: empty for files in the data directory, or s3://bucket/prefix?endpoint=URL&region=R&path-style=true (WARD_Z3_BACKEND)")
	fs.StringVar(&c.WorkDir, "work-dir", env("WARD_WORK_DIR", ""), "where zambda code is unpacked and run; default <data-dir>/functions (WARD_WORK_DIR)")
	c.SecretsKey = os.Getenv("WARD_SECRETS_KEY") // never a flag: it would show in process lists
	fs.StringVar(&c.DebugAddr, "debug-addr", env("WARD_DEBUG_ADDR", ""), "address for pprof profiles and /metrics, e.g. 127.0.0.1:6060; empty: off (WARD_DEBUG_ADDR)")
	subAttempts := fs.Int64("subscription-max-attempts", 30, "delivery attempts before a subscription goes to error (WARD_SUBSCRIPTION_MAX_ATTEMPTS)")
	subBase := fs.Duration("subscription-retry-base", time.Second, "first delay between subscription delivery attempts (WARD_SUBSCRIPTION_RETRY_BASE)")
	subMax := fs.Duration("subscription-retry-max", time.Hour, "longest delay between subscription delivery attempts (WARD_SUBSCRIPTION_RETRY_MAX)")
	urlTTL := fs.Duration("z3-url-ttl", 15*time.Minute, "lifetime of presigned Z3 URLs (WARD_Z3_URL_TTL)")
	maxObject := fs.Int64("max-object-bytes", 5<<30, "largest Z3 object in bytes (WARD_MAX_OBJECT_BYTES)")
	transfer := fs.Duration("transfer-timeout", time.Hour, "deadline of one presigned upload or download (WARD_TRANSFER_TIMEOUT)")
	egressAllow := fs.String("egress-allow", env("WARD_EGRESS_ALLOW", ""), "CIDR ranges or addresses, comma-separated, that outbound requests (subscription deliveries, JWKS fetches) may reach beyond public addresses, e.g. 10.0.0.0/8 or 127.0.0.1/32; Ward's database and debug addresses stay refused (WARD_EGRESS_ALLOW)")
	fs.BoolVar(&c.AllowPrivateJWKS, "allow-private-jwks", env("WARD_ALLOW_PRIVATE_JWKS", "") == "true",
		"deprecated, use --egress-allow: let M2M clients' jwksUrl point at private or loopback addresses (WARD_ALLOW_PRIVATE_JWKS=true)")
	corsOrigins := fs.String("cors-origins", env("WARD_CORS_ORIGINS", ""), "browser origins, comma-separated, that may call every project's API (an operator's own front end); a project's applications add theirs with allowedCORSOriginsUrls (WARD_CORS_ORIGINS)")
	authzTTL := fs.Duration("authorizer-cache-ttl", 5*time.Minute, "longest reuse of an authorizer function's decision (WARD_AUTHORIZER_CACHE_TTL)")
	fs.IntVar(&c.ReadConcurrency, "read-concurrency", 0, "FHIR reads and searches running at once, the rest waiting in arrival order; 0: as many as Go uses cores on SQLite, no limit on PostgreSQL; -1: no limit (WARD_READ_CONCURRENCY)")
	if v, ok := os.LookupEnv("WARD_READ_CONCURRENCY"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("WARD_READ_CONCURRENCY must be a number")
		}
		c.ReadConcurrency = n
	}
	fs.StringVar(&c.ZambdaSandbox, "zambda-sandbox", env("WARD_ZAMBDA_SANDBOX", "auto"), "zambda isolation: auto (bubblewrap; functions refused where it cannot run), on (bubblewrap or no start), off (none: trusted code only) (WARD_ZAMBDA_SANDBOX)")
	maxWorkers := fs.Int64("zambda-max-workers", 64, "zambda worker processes alive at once, across all functions and projects; at the bound an idle one stops, of the project holding the most (WARD_ZAMBDA_MAX_WORKERS)")
	projectWorkers := fs.Int64("zambda-project-workers", 0, "zambda worker processes one project may hold at once, so one tenant's load leaves room for the others; past it its calls wait briefly, then get 429; 0: a quarter of --zambda-max-workers, at least 1 (WARD_ZAMBDA_PROJECT_WORKERS)")
	if v, ok := os.LookupEnv("WARD_ZAMBDA_PROJECT_WORKERS"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return c, fmt.Errorf("WARD_ZAMBDA_PROJECT_WORKERS must be a number, 0 or more")
		}
		*projectWorkers = n
	}
	for key, dst := range map[string]*int64{"WARD_MAX_BODY_BYTES": maxBody, "WARD_MAX_OBJECT_BYTES": maxObject, "WARD_ZAMBDA_MAX_WORKERS": maxWorkers,
		"WARD_MAX_RESPONSE_BYTES": maxResponse, "WARD_SEARCH_COUNT": searchCount, "WARD_SEARCH_MAX_COUNT": searchMax,
		"WARD_SUBSCRIPTION_MAX_ATTEMPTS": subAttempts} {
		if v, ok := os.LookupEnv(key); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return c, fmt.Errorf("%s must be a positive number", key)
			}
			*dst = n
		}
	}
	for key, dst := range map[string]*time.Duration{"WARD_REQUEST_TIMEOUT": timeout, "WARD_TOKEN_TTL": ttl,
		"WARD_Z3_URL_TTL": urlTTL, "WARD_TRANSFER_TIMEOUT": transfer,
		"WARD_SUBSCRIPTION_RETRY_BASE": subBase, "WARD_SUBSCRIPTION_RETRY_MAX": subMax, "WARD_AUTHORIZER_CACHE_TTL": authzTTL} {
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
	c.Z3URLTTL, c.MaxObjectBytes, c.TransferTimeout = *urlTTL, *maxObject, *transfer
	c.SubRetryBase, c.SubRetryMax = *subBase, *subMax
	c.AuthorizerCacheTTL = *authzTTL
	var err error
	for _, o := range strings.Split(*corsOrigins, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if u, perr := url.Parse(o); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || o == "null" {
			return c, fmt.Errorf("--cors-origins: %q is not an origin (scheme://host[:port])", o)
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
	}
	if c.EgressAllow, err = egress.ParseAllow(*egressAllow); err != nil {
		return c, fmt.Errorf("--egress-allow: %w", err)
	}
	for name, v := range map[string]int64{"zambda-max-workers": *maxWorkers, "max-response-bytes": *maxResponse,
		"search-count": *searchCount, "search-max-count": *searchMax, "subscription-max-attempts": *subAttempts} {
		if v <= 0 {
			return c, fmt.Errorf("--%s must be positive", name)
		}
	}
	if *projectWorkers < 0 {
		return c, fmt.Errorf("--zambda-project-workers must be 0 (a quarter of --zambda-max-workers) or more")
	}
	if *projectWorkers > *maxWorkers {
		return c, fmt.Errorf("--zambda-project-workers (%d) must not exceed --zambda-max-workers (%d)", *projectWorkers, *maxWorkers)
	}
	if *searchCount > *searchMax {
		return c, fmt.Errorf("--search-count (%d) must not exceed --search-max-count (%d)", *searchCount, *searchMax)
	}
	// Bounded so that they fit an int anywhere and a page stays a page.
	c.MaxResponse = int(min(*maxResponse, 1<<40))
	c.SearchCount, c.SearchMaxCount = int(min(*searchCount, 1<<20)), int(min(*searchMax, 1<<20))
	c.SubMaxAttempts = int(min(*subAttempts, 1<<20))
	c.ZambdaMaxWorkers = int(min(*maxWorkers, 1<<20))
	c.ZambdaProjectWorkers = int(min(*projectWorkers, 1<<20))
	switch c.ZambdaSandbox {
	case "auto", "on", "off":
	default:
		return c, fmt.Errorf("--zambda-sandbox %q: want auto, on or off", c.ZambdaSandbox)
	}
	if c.WorkDir == "" {
		c.WorkDir = filepath.Join(c.DataDir, "functions")
	}
	if err := checkFHIRPath(c.FHIRPath); err != nil {
		return c, err
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	for len(c.PublicURL) > 0 && c.PublicURL[len(c.PublicURL)-1] == '/' {
		c.PublicURL = c.PublicURL[:len(c.PublicURL)-1]
	}
	return c, nil
}

// checkFHIRPath refuses a FHIR path that is not one, or that would take
// over Ward's other routes.
func checkFHIRPath(p string) error {
	if !strings.HasPrefix(p, "/") || len(p) < 2 || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?#{}* \t") || strings.Contains(p, "//") {
		return fmt.Errorf("--fhir-path %q: want a path such as /fhir or /fhir/r4, without a trailing slash", p)
	}
	for _, taken := range []string{"/v1", "/oauth", "/.well-known", "/healthz", "/z3", "/invite", "/user-invite"} {
		if p == taken || strings.HasPrefix(p, taken+"/") {
			return fmt.Errorf("--fhir-path %q is under %s, which Ward serves itself", p, taken)
		}
	}
	return nil
}

// fhirURL is the FHIR API's base URL.
func (c config) fhirURL() string { return c.PublicURL + c.FHIRPath }

// dsn is the database to open: the URL, or the SQLite file in the data dir.
func (c config) dsn() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "ward.db")
}
