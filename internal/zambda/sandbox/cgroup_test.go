package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCgroupWeights: each project's workers split one CPU weight, so
// projects share the CPU equally however many workers they run (checked on
// a directory standing for a cgroup v1 cpu hierarchy).
func TestCgroupWeights(t *testing.T) {
	root := t.TempDir()
	c := &cgroups{roots: map[string]string{"cpu": root}, groups: map[string][]*cgroup{}}
	shares := func(w *cgroup) string {
		b, err := os.ReadFile(filepath.Join(w.dirs["cpu"], "cpu.shares"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	mk := func(id, group string) *cgroup {
		w, err := c.create(id)
		if err != nil {
			t.Fatal(err)
		}
		w.setGroup(group)
		return w
	}
	a1 := mk("a1", "A")
	if got := shares(a1); got != "1024" {
		t.Fatalf("one worker of A: %s", got)
	}
	a2, a3 := mk("a2", "A"), mk("a3", "A")
	b1 := mk("b1", "B")
	for _, w := range []*cgroup{a1, a2, a3} {
		if got := shares(w); got != "341" {
			t.Errorf("three workers of A: %s each, want 341", got)
		}
	}
	if got := shares(b1); got != "1024" {
		t.Errorf("B's only worker: %s", got)
	}
	a1.remove()
	a2.remove()
	if got := shares(a3); got != "1024" {
		t.Errorf("A's last worker after two left: %s", got)
	}
	if len(c.groups["A"]) != 1 || len(c.groups["B"]) != 1 {
		t.Errorf("groups: %v", c.groups)
	}
	a3.remove()
	if _, ok := c.groups["A"]; ok {
		t.Error("an empty group is kept")
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := parseProcCgroup([]byte("9:name=systemd:/\n8:pids:/a\n4:memory:/process_api/x\n1:cpu,cpuacct:/c\n0::/u\n"))
	want := map[string]string{"pids": "/a", "memory": "/process_api/x", "cpu": "/c", "cpuacct": "/c", "": "/u", "name=systemd": "/"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: %q, want %q", k, got[k], v)
		}
	}
}
