package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestSDKServicesCovered: every calling method of the SDK classes Ward
// serves beyond IAM and FHIR (the services issue 32 added, and the user
// methods) is called by one of the SDK-driven tests here (e2e/*.test.mjs,
// which run against a real `ward serve` through the SDK configured from
// admin-credentials.json). A method the SDK gains, or a test dropped,
// fails here rather than going unnoticed.
func TestSDKServicesCovered(t *testing.T) {
	classes := filepath.Join("node_modules", "@oystehr", "sdk", "dist", "esm", "resources", "classes")
	if _, err := os.Stat(classes); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the SDK is not installed (npm ci in e2e): %v", err)
		}
		t.Skip("the SDK is not installed (npm ci in e2e; not CI, so skipping)")
	}
	var tests strings.Builder
	files, err := filepath.Glob("*.test.mjs")
	if err != nil {
		t.Fatal(err)
	}
	browser, _ := filepath.Glob(filepath.Join("browser", "*.test.mjs"))
	for _, f := range append(files, browser...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests.Write(b)
	}
	calls := tests.String()
	method := regexp.MustCompile(`(?m)^    ([a-zA-Z]+)\((?:params, )?request\) \{$`)
	want := map[string][]string{ // class file -> methods ("" = all of them)
		"paymentMethod": nil, "charge": nil, "rcm": nil, "erx": nil, "lab": nil, "fax": nil,
		"user": {"resetMfa", "resetPasswordLink"},
	}
	total := 0
	for class, only := range want {
		b, err := os.ReadFile(filepath.Join(classes, class+".js"))
		if err != nil {
			t.Fatal(err)
		}
		var methods []string
		for _, m := range method.FindAllStringSubmatch(string(b), -1) {
			methods = append(methods, m[1])
		}
		if len(only) > 0 {
			methods = only
		}
		if len(methods) == 0 {
			t.Errorf("%s.js: no methods found (has the SDK's layout changed?)", class)
		}
		sort.Strings(methods)
		for _, m := range methods {
			total++
			if !strings.Contains(calls, "."+class+"."+m+"(") {
				t.Errorf("no SDK test calls %s.%s", class, m)
			}
		}
	}
	t.Logf("%d SDK methods, each called by an SDK test", total)
}
