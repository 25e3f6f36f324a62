package main

import (
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/clientaddr"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/provider/clearinghouse"
	"github.com/wardhealth/ward/internal/provider/fax"
	"github.com/wardhealth/ward/internal/provider/payment"
	"github.com/wardhealth/ward/internal/provider/sms"
)

// config is every setting, from flags with WARD_* environment twins
// (configFlags), and the secrets from the environment only (envOnly).
type config struct {
	Addr     string
	DataDir  string
	Database string
	// DatabaseMaxConns bounds each replica's PostgreSQL pool; 0 sizes it
	// from the server's max_connections (store.DefaultMaxConns).
	DatabaseMaxConns int
	// ResourceCacheMB sizes each replica's cache of current resource
	// versions on PostgreSQL; 0 turns it off.
	ResourceCacheMB int
	PublicURL       string
	FHIRPath        string // where the FHIR API is served, "/fhir" by default
	MaxBodyBytes    int64
	MaxResponse     int
	// SearchCount is a FHIR search page's size when _count is absent;
	// SearchMaxCount the largest _count honoured (a bigger one is cut).
	SearchCount    int
	SearchMaxCount int
	RequestTimeout time.Duration
	TokenTTL       time.Duration
	// ConversationTokenTTL is the lifetime of conversation stream tokens.
	ConversationTokenTTL time.Duration
	// ShutdownGrace bounds a stop: in-flight requests, deliveries and cron
	// runs get this long after SIGTERM before they are cut.
	ShutdownGrace time.Duration

	// Z3: where object bytes go ("" = files under DataDir/z3, or an
	// s3://bucket/prefix?endpoint=...&region=...&path-style=true URL with the
	// keys in WARD_Z3_S3_ACCESS_KEY and WARD_Z3_S3_SECRET_KEY), presigned URL
	// lifetime, largest object, deadline of one upload or download.
	Z3Backend       string
	Z3AccessKey     string
	Z3SecretKey     string
	Z3URLTTL        time.Duration
	MaxObjectBytes  int64
	TransferTimeout time.Duration
	// StediURL is Stedi's healthcare API base (projects whose
	// clearinghouse is stedi); a stand-in in tests.
	StediURL string
	// TwilioURL is Twilio's REST API base (projects whose SMS provider is
	// twilio); a test points it at a stand-in.
	TwilioURL string
	// PhaxioURL is Phaxio's REST API base (projects whose fax provider is
	// phaxio); a test points it at a stand-in.
	PhaxioURL string
	// StripeURL is Stripe's API base (projects whose payment provider is
	// stripe); a test points it at stripe-mock.
	StripeURL string

	// The 32-byte master key that seals signing keys, the Z3 URL key and
	// zambda secrets at rest (base64; empty: the key file in the data
	// directory, made on a new database's first start, fine for one server;
	// give every replica the same WARD_SECRETS_KEY on PostgreSQL), and where
	// zambda workers unpack code (default DataDir/functions).
	SecretsKey    string
	NewSecretsKey string // admin rotate-secrets-key: the key to rotate to
	WorkDir       string

	// DebugAddr, when set, serves Go's pprof profiles there (keep it on
	// loopback: profiles show internals).
	DebugAddr string

	// Subscriptions: attempts before a subscription goes to error, and the
	// first and longest delay between attempts (defaults: 30, 1s, 1h: about
	// a day of retries).
	SubMaxAttempts int
	// ExportFileResources is how many resources one bulk export NDJSON
	// file holds at most (a job checkpoints after each file).
	ExportFileResources int
	// ExportLease is how long a replica holds a bulk export job between
	// checkpoints: a job whose replica died waits this long to continue.
	ExportLease  time.Duration
	SubRetryBase time.Duration
	SubRetryMax  time.Duration
	// Leases: how long a claimed subscription delivery, and a claimed cron
	// tick between renewals, stays one replica's. A replica that dies or
	// stalls holding one delays that work this long; its late result is
	// refused (fenced) either way.
	SubLease  time.Duration
	CronLease time.Duration

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
	CORSOrigins    []string
	corsOriginsRaw string
	// TrustedProxies are the reverse proxies (load balancers) whose
	// X-Forwarded-For / Forwarded headers name the client that sign-in
	// throttling counts; none by default, the TCP peer is the client.
	TrustedProxies    clientaddr.Resolver
	trustedProxiesRaw string
	// RateLimit is requests per minute per principal where a project sets
	// none (rateLimitPerMinute); 0: no limit. RateLimitFlush is how often a
	// replica adds its counts to the shared ones on PostgreSQL.
	RateLimit      int
	RateLimitFlush time.Duration
	// ShutdownDrain is how long a stopping server keeps serving with
	// /readyz at 503 before it stops accepting.
	ShutdownDrain time.Duration
	// LiveKit is the telemed video provider (docs/telemed.md); no URL:
	// none, the telemed endpoints answer 503.
	LiveKitURL, LiveKitAPIKey, LiveKitAPISecret string
	// MLLPAddr is Ward's HL7 v2 MLLP listener for lab results
	// (docs/labs.md); empty: off.
	MLLPAddr string
	// LabAckTimeout is how long a lab order waits for the lab's ACK.
	LabAckTimeout time.Duration
}

// envPrefix starts every setting's environment twin: --max-body-bytes is
// WARD_MAX_BODY_BYTES.
const envPrefix = "WARD_"

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// envOnly are the settings never taken as flags: a flag's value shows in
// process lists, and these are secrets.
var envOnly = []struct {
	key, usage string
	field      func(*config) *string
}{
	{"WARD_SECRETS_KEY", "the 32-byte master key, base64 (default: <data-dir>/secrets.key)", func(c *config) *string { return &c.SecretsKey }},
	{"WARD_NEW_SECRETS_KEY", "admin rotate-secrets-key: the key to rotate to", func(c *config) *string { return &c.NewSecretsKey }},
	{"WARD_Z3_S3_ACCESS_KEY", "access key of the --z3-backend S3 store", func(c *config) *string { return &c.Z3AccessKey }},
	{"WARD_LIVEKIT_API_SECRET", "secret of --livekit-api-key (telemed video)", func(c *config) *string { return &c.LiveKitAPISecret }},
	{"WARD_Z3_S3_SECRET_KEY", "secret key of the --z3-backend S3 store", func(c *config) *string { return &c.Z3SecretKey }},
}

// configFlags declares every setting on a new flag set. Each flag's usage
// names its environment twin, so `ward serve -h` lists both.
func configFlags(name string, c *config, egressAllow *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	str := func(p *string, flagName, def, usage string) {
		fs.StringVar(p, flagName, def, usage+" ("+envName(flagName)+")")
	}
	i64 := func(p *int64, flagName string, def int64, usage string) {
		fs.Int64Var(p, flagName, def, usage+" ("+envName(flagName)+")")
	}
	num := func(p *int, flagName string, def int, usage string) {
		fs.IntVar(p, flagName, def, usage+" ("+envName(flagName)+")")
	}
	dur := func(p *time.Duration, flagName string, def time.Duration, usage string) {
		fs.DurationVar(p, flagName, def, usage+" ("+envName(flagName)+")")
	}
	str(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
	str(&c.DataDir, "data-dir", "ward-data", "data directory")
	str(&c.Database, "database", "", "postgres://... URL; empty means SQLite in the data directory")
	num(&c.DatabaseMaxConns, "database-max-conns", 0, "PostgreSQL connections this process opens at most (one more listens for changes); 0: a quarter of the server's max_connections, between 4 and 32")
	num(&c.ResourceCacheMB, "resource-cache-mb", 64, "MiB of current resource versions each replica keeps for reads by id (PostgreSQL only; replicas still agree at once: docs/replicas.md); 0: none")
	str(&c.PublicURL, "public-url", "", "URL clients reach Ward at; default http://<addr>")
	str(&c.FHIRPath, "fhir-path", "/fhir", "path of the FHIR API under the public URL, e.g. /fhir/r4")
	i64(&c.MaxBodyBytes, "max-body-bytes", 6<<20, "request body limit in bytes")
	num(&c.MaxResponse, "max-response-bytes", 6<<20, "largest FHIR search response in bytes; a bigger one is a 413 suggesting _count or _elements")
	num(&c.SearchCount, "search-count", 20, "FHIR search page size when _count is absent")
	num(&c.SearchMaxCount, "search-max-count", 1000, "largest FHIR _count honoured; a bigger one is cut to it")
	dur(&c.RequestTimeout, "request-timeout", 30*time.Second, "per-request deadline")
	dur(&c.TokenTTL, "token-ttl", time.Hour, "access token lifetime")
	dur(&c.ConversationTokenTTL, "conversation-token-ttl", 10*time.Minute, "lifetime of conversation.getToken tokens (the live stream ends with it)")
	dur(&c.ShutdownGrace, "shutdown-grace", 20*time.Second, "on SIGTERM or SIGINT, how long in-flight requests, subscription deliveries and cron runs get to finish; what is still running then is cut (deliveries and runs released for a retry)")
	str(&c.Z3Backend, "z3-backend", "", "Z3 bytes: empty for files in the data directory, or s3://bucket/prefix?endpoint=URL&region=R&path-style=true")
	str(&c.WorkDir, "work-dir", "", "where zambda code is unpacked and run; default <data-dir>/functions")
	str(&c.DebugAddr, "debug-addr", "", "address for pprof profiles and /metrics, e.g. 127.0.0.1:6060; empty: off")
	num(&c.SubMaxAttempts, "subscription-max-attempts", 30, "delivery attempts before a subscription goes to error")
	num(&c.ExportFileResources, "export-file-resources", 50000, "resources per FHIR bulk export ($export) NDJSON file at most; a job checkpoints after each file")
	dur(&c.ExportLease, "export-lease", 30*time.Second, "how long a replica holds a bulk export job between checkpoints; a job whose replica died continues elsewhere after it")
	dur(&c.SubRetryBase, "subscription-retry-base", time.Second, "first delay between subscription delivery attempts")
	dur(&c.SubRetryMax, "subscription-retry-max", time.Hour, "longest delay between subscription delivery attempts")
	dur(&c.ShutdownDrain, "shutdown-drain", 0, "on SIGTERM or SIGINT, how long to keep accepting requests with /readyz answering 503 (it does from the signal on), so load balancers stop sending first; e.g. twice the probe interval; at most half of --shutdown-grace")
	dur(&c.SubLease, "subscription-lease", 40*time.Second, "how long a claimed subscription delivery stays one replica's: one that dies or stalls holding it delays it that long, then another replica sends it (the stalled one's late result is refused); keep it above a delivery's 10 s timeout")
	dur(&c.CronLease, "cron-lease", 30*time.Second, "how long a claimed cron tick stays one replica's without renewal (renewed every third of it while the run goes on): a replica that dies or stalls mid-run has the tick taken over and retried, within the function's retry policy, that long after its last renewal; at least 1s")
	dur(&c.Z3URLTTL, "z3-url-ttl", 15*time.Minute, "lifetime of presigned Z3 URLs")
	i64(&c.MaxObjectBytes, "max-object-bytes", 5<<30, "largest Z3 object in bytes")
	dur(&c.TransferTimeout, "transfer-timeout", time.Hour, "deadline of one presigned upload or download")
	str(&c.StediURL, "stedi-api-url", clearinghouse.DefaultStediURL, "base URL of Stedi's healthcare API, for projects whose clearinghouse is stedi (a stand-in in tests); reached through the egress policy")
	str(&c.TwilioURL, "twilio-api-url", sms.DefaultTwilioURL, "base URL of Twilio's REST API, for projects whose SMS provider is twilio (a regional edge; a stand-in in tests); reached through the egress policy")
	str(&c.PhaxioURL, "phaxio-api-url", fax.DefaultPhaxioURL, "base URL of Phaxio's REST API, for projects whose fax provider is phaxio (a stand-in in tests); reached through the egress policy")
	str(&c.StripeURL, "stripe-api-url", payment.DefaultStripeURL, "base URL of Stripe's API, for projects whose payment provider is stripe (a stand-in such as stripe-mock in tests); reached through the egress policy")
	str(&c.corsOriginsRaw, "cors-origins", "", "browser origins, comma-separated, that may call every project's API (an operator's own front end); a project's applications add theirs with allowedCORSOriginsUrls")
	str(&c.trustedProxiesRaw, "trusted-proxies", "", "CIDR ranges or addresses, comma-separated, of the reverse proxies or load balancers in front of Ward: from them X-Forwarded-For and Forwarded name the client (sign-in throttling counts per client address); empty: the TCP peer is the client, headers ignored")
	str(egressAllow, "egress-allow", "", "CIDR ranges or addresses, comma-separated, that outbound requests (subscription deliveries, JWKS fetches) may reach beyond public addresses, e.g. 10.0.0.0/8 or 127.0.0.1/32; Ward's database and debug addresses stay refused")
	fs.BoolVar(&c.AllowPrivateJWKS, "allow-private-jwks", false,
		"deprecated, use --egress-allow: let M2M clients' jwksUrl point at private or loopback addresses ("+envName("allow-private-jwks")+"=true)")
	dur(&c.AuthorizerCacheTTL, "authorizer-cache-ttl", 5*time.Minute, "longest reuse of an authorizer function's decision")
	num(&c.ReadConcurrency, "read-concurrency", 0, "FHIR reads and searches running at once, the rest waiting in arrival order; 0: as many as Go uses cores on SQLite, no limit on PostgreSQL; -1: no limit")
	str(&c.ZambdaSandbox, "zambda-sandbox", "auto", "zambda isolation: auto (bubblewrap; functions refused where it cannot run), on (bubblewrap or no start), off (none: trusted code only)")
	num(&c.ZambdaMaxWorkers, "zambda-max-workers", 64, "zambda worker processes alive at once, across all functions and projects; at the bound an idle one stops, of the project holding the most")
	num(&c.ZambdaProjectWorkers, "zambda-project-workers", 0, "zambda worker processes one project may hold at once, so one tenant's load leaves room for the others; past it its calls wait briefly, then get 429; 0: a quarter of --zambda-max-workers, at least 1")
	num(&c.RateLimit, "rate-limit", 60000, "API requests per minute per principal (token holder) where the project sets no rateLimitPerMinute; over it a 429 with RateLimit headers; 0: no limit")
	dur(&c.RateLimitFlush, "rate-limit-flush", 100*time.Millisecond, "on PostgreSQL, how often each replica adds its request counts to the shared ones (a replica limits on the shared total plus its own since then)")
	str(&c.MLLPAddr, "mllp-addr", "", "address of Ward's HL7 v2 MLLP listener for lab results (ORU^R01), e.g. :2575; empty: off (docs/labs.md)")
	dur(&c.LabAckTimeout, "lab-ack-timeout", 10*time.Second, "how long a lab order (ORM^O01 over MLLP) waits for the lab's ACK before it is sent again (3 attempts)")
	str(&c.LiveKitURL, "livekit-url", "", "LiveKit server for telemed video meetings, ws(s)://host:port as clients reach it (Ward calls its room service there, through the egress policy); empty: no video (docs/telemed.md)")
	str(&c.LiveKitAPIKey, "livekit-api-key", "", "LiveKit API key (its secret: WARD_LIVEKIT_API_SECRET)")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: ward %s [flags]\n\nEvery flag may instead be set by the environment variable in brackets; a flag on the command line wins.\n\n", name)
		fs.PrintDefaults()
		fmt.Fprintf(out, "\nEnvironment only (secrets: a flag would show in process lists):\n")
		for _, e := range envOnly {
			fmt.Fprintf(out, "  %s\n    \t%s\n", e.key, e.usage)
		}
	}
	return fs
}

// parseConfig reads the settings: a flag on the command line, else its
// environment twin, else the default. -h prints them all and returns
// flag.ErrHelp.
func parseConfig(name string, args []string) (config, error) {
	var c config
	var egressAllow string
	fs := configFlags(name, &c, &egressAllow)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	// from names where a flag's value came from, for error messages.
	fromEnv := map[string]bool{}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || given[f.Name] || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
		}
		fromEnv[f.Name] = true
	})
	if envErr != nil {
		return c, envErr
	}
	from := func(name string) string {
		if fromEnv[name] {
			return envName(name)
		}
		return "--" + name
	}
	for _, e := range envOnly {
		*e.field(&c) = os.Getenv(e.key)
	}
	var err error
	for _, o := range strings.Split(c.corsOriginsRaw, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if u, perr := url.Parse(o); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return c, fmt.Errorf("%s: %q is not an origin (scheme://host[:port])", from("cors-origins"), o)
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
	}
	if c.TrustedProxies, err = clientaddr.Parse(c.trustedProxiesRaw); err != nil {
		return c, fmt.Errorf("%s: %w", from("trusted-proxies"), err)
	}
	if c.EgressAllow, err = egress.ParseAllow(egressAllow); err != nil {
		return c, fmt.Errorf("%s: %w", from("egress-allow"), err)
	}
	for name, v := range map[string]int64{"zambda-max-workers": int64(c.ZambdaMaxWorkers), "max-response-bytes": int64(c.MaxResponse),
		"search-count": int64(c.SearchCount), "search-max-count": int64(c.SearchMaxCount), "subscription-max-attempts": int64(c.SubMaxAttempts),
		"export-file-resources": int64(c.ExportFileResources),
		"max-body-bytes":        c.MaxBodyBytes, "max-object-bytes": c.MaxObjectBytes} {
		if v <= 0 {
			return c, fmt.Errorf("%s must be a positive number", from(name))
		}
	}
	for name, d := range map[string]time.Duration{"request-timeout": c.RequestTimeout, "token-ttl": c.TokenTTL, "conversation-token-ttl": c.ConversationTokenTTL, "shutdown-grace": c.ShutdownGrace,
		"z3-url-ttl": c.Z3URLTTL, "transfer-timeout": c.TransferTimeout, "subscription-retry-base": c.SubRetryBase, "export-lease": c.ExportLease,
		"subscription-retry-max": c.SubRetryMax, "authorizer-cache-ttl": c.AuthorizerCacheTTL, "subscription-lease": c.SubLease} {
		if d <= 0 {
			return c, fmt.Errorf("%s must be a positive duration such as 30s", from(name))
		}
	}
	if c.CronLease < time.Second {
		return c, fmt.Errorf("%s must be at least 1s (it is renewed every third of it)", from("cron-lease"))
	}
	if c.DatabaseMaxConns < 0 {
		return c, fmt.Errorf("%s must be 0 (sized from the server's max_connections) or more", from("database-max-conns"))
	}
	if c.ResourceCacheMB < 0 {
		return c, fmt.Errorf("%s must be 0 (no cache) or more", from("resource-cache-mb"))
	}
	if c.ZambdaProjectWorkers < 0 {
		return c, fmt.Errorf("%s must be 0 (a quarter of --zambda-max-workers) or more", from("zambda-project-workers"))
	}
	if c.ZambdaProjectWorkers > c.ZambdaMaxWorkers {
		return c, fmt.Errorf("--zambda-project-workers (%d) must not exceed --zambda-max-workers (%d)", c.ZambdaProjectWorkers, c.ZambdaMaxWorkers)
	}
	if c.SearchCount > c.SearchMaxCount {
		return c, fmt.Errorf("--search-count (%d) must not exceed --search-max-count (%d)", c.SearchCount, c.SearchMaxCount)
	}
	// Bounded so that a page stays a page.
	c.SearchCount, c.SearchMaxCount = min(c.SearchCount, 1<<20), min(c.SearchMaxCount, 1<<20)
	c.SubMaxAttempts = min(c.SubMaxAttempts, 1<<20)
	c.ZambdaMaxWorkers = min(c.ZambdaMaxWorkers, 1<<20)
	c.ZambdaProjectWorkers = min(c.ZambdaProjectWorkers, 1<<20)
	switch c.ZambdaSandbox {
	case "auto", "on", "off":
	default:
		return c, fmt.Errorf("%s %q: want auto, on or off", from("zambda-sandbox"), c.ZambdaSandbox)
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
	for _, taken := range []string{"/v1", "/oauth", "/.well-known", "/healthz", "/readyz", "/z3", "/invite", "/user-invite"} {
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
