package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// dockerfile is what the checks read of deploy/Dockerfile.
type dockerfile struct {
	copies  []string // sources of COPY lines without --from (build context paths)
	build   string   // the `go build` line
	runtime string   // the last FROM's image
	apt     string   // the runtime stage's apt-get install line
	user    string   // USER
	expose  []string // EXPOSE ports
	ignored []string // .dockerignore patterns
}

func readDockerfile(t tb, path, dockerignore string) dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d dockerfile
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		fields := strings.Fields(line)
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			d.runtime, d.apt = fields[1], ""
		case "COPY":
			if !strings.HasPrefix(fields[1], "--from") {
				d.copies = append(d.copies, fields[1:len(fields)-1]...)
			}
		case "RUN":
			if strings.Contains(line, "go build") {
				d.build = line
			}
			if strings.Contains(line, "apt-get install") {
				d.apt = line
			}
		case "USER":
			d.user = fields[1]
		case "EXPOSE":
			d.expose = append(d.expose, fields[1:]...)
		}
	}
	if raw, err := os.ReadFile(dockerignore); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				d.ignored = append(d.ignored, l)
			}
		}
	}
	return d
}

// wardPackageDirs is the directories of this module's packages that
// cmd/ward links (go list, once per test binary).
var wardPackageDirs = sync.OnceValues(func() ([]string, error) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "../cmd/ward").Output()
	return strings.Fields(string(out)), err
})

// TestDockerfile: the build stage copies every directory holding a
// package the binary links (embedded files live in their package's
// directory), builds ./cmd/ward without cgo, and the runtime stage has
// node and the sandbox's programs, runs as the uid the Kubernetes
// manifests expect, and exposes WARD_ADDR's port.
func TestDockerfile(t *testing.T) {
	checkDockerfile(t, ".")
}

// checkDockerfile checks dir/Dockerfile and dir/../.dockerignore (dir is
// a deploy directory) against this tree's ward and dir's manifests.
func checkDockerfile(t tb, dir string) {
	t.Helper()
	d := readDockerfile(t, filepath.Join(dir, "Dockerfile"), filepath.Join(dir, "..", ".dockerignore"))
	out, err := wardPackageDirs()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	copied := func(rel string) bool {
		for _, c := range d.copies {
			if c = strings.TrimPrefix(filepath.Clean(c), "./"); rel == c || strings.HasPrefix(rel, c+"/") {
				return true
			}
		}
		return false
	}
	for _, dir := range out {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		if !copied(rel) {
			t.Errorf("the binary needs %s, which the Dockerfile does not COPY", rel)
		}
		for _, ig := range d.ignored {
			if m, _ := filepath.Match(ig, rel); m || rel == ig || strings.HasPrefix(rel, ig+"/") {
				t.Errorf(".dockerignore's %q leaves %s out of the build context", ig, rel)
			}
		}
	}
	for _, need := range []string{"go.mod", "go.sum"} {
		if !copied(need) {
			t.Errorf("the Dockerfile does not COPY %s", need)
		}
	}
	if !regexp.MustCompile(`CGO_ENABLED=0 go build .*-o \S+ \./cmd/ward$`).MatchString(d.build) {
		t.Errorf("build line %q: want CGO_ENABLED=0 go build ... -o <bin> ./cmd/ward", d.build)
	}
	if !strings.HasPrefix(d.runtime, "node:20") && !strings.HasPrefix(d.runtime, "node:22") {
		t.Errorf("runtime image %s: want node 20 or 22 (zambdas' nodejs20.x/nodejs22.x)", d.runtime)
	}
	for _, pkg := range []string{"bubblewrap", "util-linux"} {
		if !slices.Contains(strings.Fields(d.apt), pkg) {
			t.Errorf("the runtime stage does not install %s (zambda sandbox)", pkg)
		}
	}
	m := readManifests(t, filepath.Join(dir, "k8s"))
	if uid := strings.SplitN(d.user, ":", 2)[0]; len(m.deployments) == 1 {
		if want := m.deployments[0].Spec.Template.Spec.SecurityContext.RunAsUser; uid != strconv.Itoa(want) {
			t.Errorf("the image runs as %s, the Deployment as %d", uid, want)
		}
	}
	c := readCompose(t, filepath.Join(dir, "compose", "compose.yaml"))
	port := portOf(t, c.XWard.Environment["WARD_ADDR"])
	if !slices.Contains(d.expose, port) {
		t.Errorf("EXPOSE %v, but WARD_ADDR listens on %s", d.expose, port)
	}
}
