package main

import (
	"fmt"
	"strings"
	"testing"
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
		{"zero", nil, []string{"--search-max-count", "0"}, nil, "--search-max-count must be positive"},
		{"not a number", map[string]string{"WARD_MAX_RESPONSE_BYTES": "lots"}, nil, nil, "WARD_MAX_RESPONSE_BYTES must be a positive number"},
		{"fhir path", map[string]string{"WARD_FHIR_PATH": "/fhir/r4"}, []string{"--public-url", "https://ward.example/"},
			func(c config) bool { return c.fhirURL() == "https://ward.example/fhir/r4" }, ""},
		{"default fhir path", nil, []string{"--public-url", "https://ward.example"},
			func(c config) bool { return c.fhirURL() == "https://ward.example/fhir" }, ""},
		{"fhir path over the project API", nil, []string{"--fhir-path", "/v1/fhir"}, nil, "under /v1"},
		{"fhir path with a trailing slash", nil, []string{"--fhir-path", "/fhir/"}, nil, "without a trailing slash"},
		{"fhir path at the root", nil, []string{"--fhir-path", "/"}, nil, "want a path"},
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
		{"negative zambda project workers", map[string]string{"WARD_ZAMBDA_PROJECT_WORKERS": "-1"}, nil, nil, "WARD_ZAMBDA_PROJECT_WORKERS must be a number"},
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
