package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseConfigLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.SearchCount == 20 && c.SearchMaxCount == 1000 && c.MaxResponse == 6<<20 && c.SubMaxAttempts == 30
		}, ""},
		{"environment", map[string]string{"WARD_SEARCH_COUNT": "50", "WARD_SEARCH_MAX_COUNT": "200", "WARD_MAX_RESPONSE_BYTES": "1048576", "WARD_SUBSCRIPTION_MAX_ATTEMPTS": "5"}, nil,
			func(c config) bool {
				return c.SearchCount == 50 && c.SearchMaxCount == 200 && c.MaxResponse == 1<<20 && c.SubMaxAttempts == 5
			}, ""},
		{"a flag beats the environment", map[string]string{"WARD_SEARCH_COUNT": "50"}, []string{"--search-count", "10"},
			func(c config) bool { return c.SearchCount == 10 }, ""},
		{"page bigger than the most", nil, []string{"--search-count", "100", "--search-max-count", "50"}, nil, "must not exceed"},
		{"zero", nil, []string{"--search-max-count", "0"}, nil, "--search-max-count must be a positive number"},
		{"not a number", map[string]string{"WARD_MAX_RESPONSE_BYTES": "lots"}, nil, nil, `WARD_MAX_RESPONSE_BYTES="lots": parse error`},
		{"fhir path", map[string]string{"WARD_FHIR_PATH": "/fhir/r4"}, []string{"--public-url", "https://ward.example/"},
			func(c config) bool { return c.fhirURL() == "https://ward.example/fhir/r4" }, ""},
		{"default fhir path", nil, []string{"--public-url", "https://ward.example"},
			func(c config) bool { return c.fhirURL() == "https://ward.example/fhir" }, ""},
		{"fhir path over the project API", nil, []string{"--fhir-path", "/v1/fhir"}, nil, "under /v1"},
		{"fhir path with a trailing slash", nil, []string{"--fhir-path", "/fhir/"}, nil, "without a trailing slash"},
		{"fhir path at the root", nil, []string{"--fhir-path", "/"}, nil, "want a path"},
		{"stripe API default", nil, nil, func(c config) bool { return c.StripeURL == "https://api.stripe.com" }, ""},
		{"stripe API from the environment", map[string]string{"WARD_STRIPE_API_URL": "http://127.0.0.1:12111"}, nil,
			func(c config) bool { return c.StripeURL == "http://127.0.0.1:12111" }, ""},
		{"egress: public addresses only by default", nil, nil, func(c config) bool { return c.EgressAllow == nil && !c.AllowPrivateJWKS }, ""},
		{"egress allow from the environment", map[string]string{"WARD_EGRESS_ALLOW": "10.0.0.0/8"}, nil,
			func(c config) bool { return fmt.Sprint(c.EgressAllow) == "[10.0.0.0/8]" }, ""},
		{"CORS origins", map[string]string{"WARD_CORS_ORIGINS": "https://ops.example, http://127.0.0.1:3000"}, nil,
			func(c config) bool { return fmt.Sprint(c.CORSOrigins) == "[https://ops.example http://127.0.0.1:3000]" }, ""},
		{"CORS origin with a path", nil, []string{"--cors-origins", "https://ops.example/app"}, nil, "not an origin"},
		{"CORS origin null", nil, []string{"--cors-origins", "null"}, nil, "not an origin"},
		{"egress allow flag", map[string]string{"WARD_EGRESS_ALLOW": "10.0.0.0/8"}, []string{"--egress-allow", "127.0.0.1, ::1"},
			func(c config) bool { return fmt.Sprint(c.EgressAllow) == "[127.0.0.1/32 ::1/128]" }, ""},
		{"zambda workers: per project, a quarter by default", nil, nil,
			func(c config) bool { return c.ZambdaMaxWorkers == 64 && c.ZambdaProjectWorkers == 0 }, ""},
		{"zambda project workers", map[string]string{"WARD_ZAMBDA_PROJECT_WORKERS": "2"}, []string{"--zambda-max-workers", "8"},
			func(c config) bool { return c.ZambdaMaxWorkers == 8 && c.ZambdaProjectWorkers == 2 }, ""},
		{"zambda project workers over the server's", nil, []string{"--zambda-max-workers", "8", "--zambda-project-workers", "9"}, nil,
			"--zambda-project-workers (9) must not exceed --zambda-max-workers (8)"},
		{"negative zambda project workers", map[string]string{"WARD_ZAMBDA_PROJECT_WORKERS": "-1"}, nil, nil, "WARD_ZAMBDA_PROJECT_WORKERS must be 0 (a quarter of --zambda-max-workers) or more"},
		{"zero from the environment", map[string]string{"WARD_SEARCH_COUNT": "0"}, nil, nil, "WARD_SEARCH_COUNT must be a positive number"},
		{"zero duration", nil, []string{"--request-timeout", "0s"}, nil, "--request-timeout must be a positive duration"},
		{"leases: defaults", nil, nil, func(c config) bool { return c.SubLease == 40*time.Second && c.CronLease == 30*time.Second }, ""},
		{"leases", map[string]string{"WARD_SUBSCRIPTION_LEASE": "2s", "WARD_CRON_LEASE": "3s"}, nil,
			func(c config) bool { return c.SubLease == 2*time.Second && c.CronLease == 3*time.Second }, ""},
		{"zero subscription lease", nil, []string{"--subscription-lease", "0s"}, nil, "--subscription-lease must be a positive duration"},
		{"cron lease too short to renew", map[string]string{"WARD_CRON_LEASE": "500ms"}, nil, nil, "WARD_CRON_LEASE must be at least 1s"},
		{"durations: flag > environment > default", map[string]string{"WARD_TOKEN_TTL": "5m", "WARD_REQUEST_TIMEOUT": "7s"}, []string{"--request-timeout=9s"},
			func(c config) bool {
				return c.TokenTTL == 5*time.Minute && c.RequestTimeout == 9*time.Second && c.ShutdownGrace == 20*time.Second
			}, ""},
		{"shutdown grace from the environment", map[string]string{"WARD_SHUTDOWN_GRACE": "3s"}, nil,
			func(c config) bool { return c.ShutdownGrace == 3*time.Second }, ""},
		{"bool from the environment", map[string]string{"WARD_ALLOW_PRIVATE_JWKS": "true"}, nil, func(c config) bool { return c.AllowPrivateJWKS }, ""},
		{"bool flag beats the environment", map[string]string{"WARD_ALLOW_PRIVATE_JWKS": "true"}, []string{"--allow-private-jwks=false"},
			func(c config) bool { return !c.AllowPrivateJWKS }, ""},
		{"database max conns from the environment", map[string]string{"WARD_DATABASE_MAX_CONNS": "12"}, nil, func(c config) bool { return c.DatabaseMaxConns == 12 }, ""},
		{"database max conns default", nil, nil, func(c config) bool { return c.DatabaseMaxConns == 0 }, ""},
		{"negative database max conns", nil, []string{"--database-max-conns", "-1"}, nil, "--database-max-conns must be 0"},
		{"read concurrency from the environment", map[string]string{"WARD_READ_CONCURRENCY": "-1"}, nil, func(c config) bool { return c.ReadConcurrency == -1 }, ""},
		{"secrets from the environment only", map[string]string{"WARD_SECRETS_KEY": "k", "WARD_Z3_S3_ACCESS_KEY": "a", "WARD_Z3_S3_SECRET_KEY": "s", "WARD_NEW_SECRETS_KEY": "n"}, nil,
			func(c config) bool {
				return c.SecretsKey == "k" && c.Z3AccessKey == "a" && c.Z3SecretKey == "s" && c.NewSecretsKey == "n"
			}, ""},
		{"bad sandbox from the environment", map[string]string{"WARD_ZAMBDA_SANDBOX": "maybe"}, nil, nil, `WARD_ZAMBDA_SANDBOX "maybe": want auto, on or off`},
		{"trusted proxies: none by default", nil, nil, func(c config) bool {
			return c.TrustedProxies.Client(forwarded("10.0.0.2:1", "198.51.100.1")) == "10.0.0.2"
		}, ""},
		{"trusted proxies from the environment", map[string]string{"WARD_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}, nil,
			func(c config) bool {
				return c.TrustedProxies.Client(forwarded("10.0.0.2:1", "198.51.100.1")) == "198.51.100.1"
			}, ""},
		{"bad trusted proxy", nil, []string{"--trusted-proxies", "10.0.0.0/8,lb.internal"}, nil, `--trusted-proxies: trusted proxy "lb.internal"`},
		{"bad egress allow", nil, []string{"--egress-allow", "127.0.0.1/32,localhost"}, nil, `--egress-allow: egress: allow list item 2 "localhost"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := parseConfig("serve", append([]string{"--data-dir", t.TempDir()}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("config = %+v", c)
			}
		})
	}
}

// TestConfigHelp: -h lists every flag with its environment twin and every
// environment-only setting, and is no error for main (exit status 0).
func TestConfigHelp(t *testing.T) {
	var c config
	var egressAllow string
	fs := configFlags("serve", &c, &egressAllow)
	var out bytes.Buffer
	fs.SetOutput(&out)
	if err := fs.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	help := out.String()
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(help, "-"+f.Name) || !strings.Contains(help, envName(f.Name)) {
			t.Errorf("help lacks --%s or %s", f.Name, envName(f.Name))
		}
	})
	for _, e := range envOnly {
		if !strings.Contains(help, e.key) {
			t.Errorf("help lacks %s", e.key)
		}
	}
	if n < 25 {
		t.Errorf("only %d flags declared", n)
	}
	for _, args := range [][]string{{"serve", "-h"}, {"serve", "--help"}, {"admin", "rotate-keys", "-h"}} {
		if err := run(context.Background(), args); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("run %v: %v, want flag.ErrHelp (which main exits 0 on)", args, err)
		}
	}
}

// forwarded is a request from peer carrying X-Forwarded-For: xff.
func forwarded(peer, xff string) *http.Request {
	return &http.Request{RemoteAddr: peer, Header: http.Header{"X-Forwarded-For": {xff}}}
}
