package policy

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/policy/internal/sdkdoc"
	"github.com/wardhealth/ward/internal/policy/internal/seedtable"
)

var updateSDKList = flag.Bool("update", false, "rewrite catalog/sdk_actions.txt from e2e/node_modules/@oystehr/sdk")

const (
	sdkList = "catalog/sdk_actions.txt"
	sdkDir  = "../../e2e/node_modules/@oystehr/sdk"
)

// TestSDKActionList re-extracts, from the SDK that the e2e tests install,
// the actions its doc comments name, and fails while the committed list
// differs: a new SDK must not bring actions the catalog has not looked at.
// Without the SDK it skips, except in CI (CI=true), which installs it.
func TestSDKActionList(t *testing.T) {
	pkg, err := os.ReadFile(filepath.Join(sdkDir, "package.json"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("@oystehr/sdk is not installed (%v): scripts/test.sh runs npm ci in e2e", err)
		}
		t.Skipf("@oystehr/sdk is not installed (run `cd e2e && npm ci`): %v", err)
	}
	var meta struct{ Version string }
	if err := json.Unmarshal(pkg, &meta); err != nil || meta.Version == "" {
		t.Fatalf("%s/package.json: version %q, %v", sdkDir, meta.Version, err)
	}
	files, err := filepath.Glob(filepath.Join(sdkDir, "dist/esm/resources/classes/*.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no SDK class files under %s: %v", sdkDir, err)
	}
	sort.Strings(files)
	var rows []sdkdoc.Row
	for _, f := range files {
		js, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, sdkdoc.Extract(strings.TrimSuffix(filepath.Base(f), ".js"), string(js))...)
	}
	got := sdkdoc.Format(meta.Version, rows)
	if *updateSDKList {
		if err := os.WriteFile(sdkList, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(sdkList)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s is not what @oystehr/sdk %s documents: run `go test ./internal/policy -run TestSDKActionList -update`, "+
			"then add the new actions to catalog/extensions.txt and run go generate", sdkList, meta.Version)
	}
}

func readSDKList(t *testing.T) (string, []sdkdoc.Row) {
	t.Helper()
	text, err := os.ReadFile(sdkList)
	if err != nil {
		t.Fatal(err)
	}
	version, rows, err := sdkdoc.Parse(string(text))
	if err != nil {
		t.Fatalf("%s: %v", sdkList, err)
	}
	return version, rows
}

// sdkResourceType is the type a resource as the SDK writes it names, or ""
// when it names none Ward can check (Z3 paths, "Z3:BucketName").
func sdkResourceType(resource string) string {
	segs := strings.Split(resource, ":")
	if segs[0] == "Z3" || len(segs) < 2 || segs[1] == "*" {
		return ""
	}
	return segs[1]
}

// resourceAtMinScope is a resource of type typ that act accepts at its
// minimum scope.
func resourceAtMinScope(act Action, typ string) string {
	if act.Service == "Z3" || act.Service == "Project" {
		r, _ := minScopeResource(act)
		return r
	}
	if act.MinScope == ScopeWildcard {
		return act.Service + ":" + typ + ":*"
	}
	return act.Service + ":" + typ + ":abc"
}

// TestSDKActions: every action the SDK documents is in the catalog (an alias
// resolves to its seed action), applies to the resource type the SDK names,
// and a policy granting it there at its minimum scope validates.
func TestSDKActions(t *testing.T) {
	_, rows := readSDKList(t)
	if len(rows) < 100 {
		t.Fatalf("only %d rows in %s", len(rows), sdkList)
	}
	for _, r := range rows {
		act, ok := LookupAction(r.Action)
		if !ok {
			t.Errorf("%s: %s is not in the catalog: add it to catalog/extensions.txt", r.Method, r.Action)
			continue
		}
		types := []string{typeExample(act)}
		for _, res := range r.Resources {
			typ := sdkResourceType(res)
			if typ == "" {
				continue
			}
			if act.ResourceType != fhirResourcePlaceholder && !appliesTo(act, typ) {
				t.Errorf("%s: the SDK grants %s on %s, the catalog on %s", r.Method, r.Action, res, strings.Join(typeNames(act), " or "))
				continue
			}
			types = append(types, typ)
		}
		for _, typ := range slices.Compact(types) {
			resource := resourceAtMinScope(act, typ)
			if _, err := Validate(Document{Rule: []Rule{allow(res(resource), r.Action)}}); err != nil {
				t.Errorf("%s: %s on %s rejected: %v", r.Method, r.Action, resource, err)
			}
		}
	}
}

// TestExtensionSources: the catalog's SDK sources name methods that
// document that very action, and every action the SDK documents beyond the
// seed and its aliases names its methods as its source.
func TestExtensionSources(t *testing.T) {
	version, rows := readSDKList(t)
	documents := map[string]bool{} // "method action"
	byAction := map[string][]string{}
	for _, r := range rows {
		documents[r.Method+" "+r.Action] = true
		if !slices.Contains(byAction[r.Action], r.Method) {
			byAction[r.Action] = append(byAction[r.Action], r.Method)
		}
	}
	for _, e := range Extensions() {
		v, methods, ok := seedtable.SDKMethods(e.Source)
		if !ok {
			continue
		}
		if v != version {
			t.Errorf("%s: source %q, but %s is from @oystehr/sdk %s", e.FullName(), e.Source, sdkList, version)
		}
		for _, m := range methods {
			if !documents[m+" "+e.FullName()] {
				t.Errorf("%s: source names %s, which does not document it", e.FullName(), m)
			}
		}
		if want := byAction[e.FullName()]; !sameSet(methods, want) {
			t.Errorf("%s: source names %v, the SDK documents it on %v", e.FullName(), methods, want)
		}
	}
	for action, methods := range byAction {
		act, _ := LookupAction(action)
		if act.Source == SeedSource {
			continue // seed actions, and the SDK's aliases of them
		}
		if _, m, ok := seedtable.SDKMethods(act.Source); !ok || !sameSet(m, methods) {
			t.Errorf("%s: the SDK documents it on %v but its source is %q", action, methods, act.Source)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
