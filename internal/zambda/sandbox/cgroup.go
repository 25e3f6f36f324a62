package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cgroups places each worker in a cgroup of its own, below one per group
// (project) and one per Ward process, in the hierarchy under Ward's own
// cgroup. It uses what the host offers: cgroup v1 controllers mounted
// apart (memory, pids, cpu under /sys/fs/cgroup/<name>), or the v2
// unified hierarchy where those controllers are enabled. Without a
// writable cgroup it is nil and the rlimits do the work.
type cgroups struct {
	v2     bool
	roots  map[string]string // controller -> this Ward's directory ("" key for v2)
	mu     sync.Mutex
	groups map[string][]*cgroup // the live workers of each group (project)
}

var cgroupControllers = []string{"memory", "pids", "cpu"}

// openCgroups finds writable cgroup directories and makes this process's
// own (ward-<pid>) in each. It says which controllers it got; a nil
// result with the reason means none.
func openCgroups(fsRoot string) (*cgroups, []string, string) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, nil, "cannot read /proc/self/cgroup"
	}
	paths := parseProcCgroup(self)
	name := "ward-" + strconv.Itoa(os.Getpid())
	cg := &cgroups{roots: map[string]string{}, groups: map[string][]*cgroup{}}
	var got []string
	var why []string
	for _, c := range cgroupControllers {
		base := filepath.Join(fsRoot, c)
		if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(base, paths[c], name)
		cleanStale(filepath.Dir(dir))
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			why = append(why, c+": "+err.Error())
			continue
		}
		cg.roots[c] = dir
		got = append(got, c+" (cgroup v1)")
	}
	if len(cg.roots) == len(cgroupControllers) {
		return cg, got, ""
	}
	// The unified hierarchy, for the controllers v1 did not give.
	if v2 := openCgroupV2(fsRoot, paths[""], name); v2 != nil && len(cg.roots) == 0 {
		var ctl []string
		for _, c := range cgroupControllers {
			ctl = append(ctl, c+" (cgroup v2)")
		}
		return v2, ctl, ""
	}
	if len(cg.roots) > 0 {
		return cg, got, strings.Join(why, "; ")
	}
	if len(why) == 0 {
		why = append(why, "no cgroup v1 memory/pids/cpu controller, and no writable cgroup v2 with them enabled")
	}
	return nil, nil, strings.Join(why, "; ")
}

func openCgroupV2(fsRoot, self, name string) *cgroups {
	base := fsRoot
	if _, err := os.Stat(filepath.Join(base, "cgroup.controllers")); err != nil {
		base = filepath.Join(fsRoot, "unified")
		if _, err := os.Stat(filepath.Join(base, "cgroup.controllers")); err != nil {
			return nil
		}
	}
	parent := filepath.Join(base, self)
	have, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	fields := strings.Fields(string(have))
	for _, c := range cgroupControllers {
		if !slices.Contains(fields, c) {
			return nil
		}
	}
	dir := filepath.Join(parent, name)
	cleanStale(parent)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil
	}
	// Controllers must be enabled at every level down to the workers.
	if os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0) != nil ||
		os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0) != nil {
		_ = os.Remove(dir)
		return nil
	}
	return &cgroups{v2: true, roots: map[string]string{"": dir}, groups: map[string][]*cgroup{}}
}

// parseProcCgroup maps each controller (and "" for v2) to the process's
// cgroup path.
func parseProcCgroup(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// cleanStale removes the directories of Ward processes that are gone
// (killed without cleaning up), with whatever they left running.
func cleanStale(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := strings.CutPrefix(e.Name(), "ward-")
		if !ok || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(pid)
		if err != nil || n == os.Getpid() {
			continue
		}
		if err := syscall.Kill(n, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // alive
		}
		removeTree(filepath.Join(parent, e.Name()))
	}
}

// removeTree kills what runs in a cgroup tree and removes its directories,
// deepest first (a cgroup directory is removed with rmdir, and only once
// empty).
func removeTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		killProcs(dirs[i])
		rmdirWhenEmpty(dirs[i])
	}
}

// close removes this Ward's cgroup directories.
func (c *cgroups) close() {
	for _, root := range c.roots {
		removeTree(root)
	}
}

// cgroup is one worker's directories.
type cgroup struct {
	v2     bool
	dirs   map[string]string // controller (or "") -> directory
	parent *cgroups
	group  string // the project, once the worker is for one ("" while spare)
}

// create makes a worker's cgroup, flat under this Ward's: a spare one can
// be made (and a process placed in it, the slow part) before it is known
// which project's worker it will be; a cgroup cannot move to another
// parent. Fair CPU between projects comes from weights instead (see
// setGroup). Its limits are set by setLimits.
func (c *cgroups) create(id string) (*cgroup, error) {
	w := &cgroup{v2: c.v2, dirs: map[string]string{}, parent: c}
	for ctl, root := range c.roots {
		dir := filepath.Join(root, "w-"+safeComponent(id))
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			w.remove()
			return nil, fmt.Errorf("cgroup %s: %w", dir, err)
		}
		w.dirs[ctl] = dir
	}
	return w, nil
}

// setLimits bounds the worker: memory (what it may allocate, plus its
// /tmp, which is memory too), processes, CPU time.
func (w *cgroup) setLimits(l Limits) error {
	mem := l.Memory + Slack + l.Tmp
	quota := int64(l.CPU * 100000)
	var writes [][2]string
	if w.v2 {
		d := w.dirs[""]
		writes = [][2]string{
			{d + "/memory.max", strconv.FormatInt(mem, 10)},
			{d + "/memory.swap.max", "0"},
			{d + "/pids.max", strconv.Itoa(l.Pids)},
			{d + "/cpu.max", strconv.FormatInt(quota, 10) + " 100000"},
		}
	} else {
		writes = [][2]string{
			{w.dirs["memory"] + "/memory.limit_in_bytes", strconv.FormatInt(mem, 10)},
			{w.dirs["memory"] + "/memory.swappiness", "0"},
			{w.dirs["pids"] + "/pids.max", strconv.Itoa(l.Pids)},
			{w.dirs["cpu"] + "/cpu.cfs_period_us", "100000"},
			{w.dirs["cpu"] + "/cpu.cfs_quota_us", strconv.FormatInt(quota, 10)},
		}
	}
	for _, wr := range writes {
		if strings.HasPrefix(wr[0], "/") && filepath.Dir(wr[0]) == "/" {
			continue // a controller this host lacks
		}
		if err := os.WriteFile(wr[0], []byte(wr[1]), 0); err != nil {
			if strings.HasSuffix(wr[0], "swappiness") || strings.HasSuffix(wr[0], "swap.max") {
				continue // swap accounting off: nothing to bound
			}
			return fmt.Errorf("cgroup limit %s: %w", wr[0], err)
		}
	}
	return nil
}

// setGroup makes the worker one of group's: the group's workers share one
// CPU weight (each gets the default weight divided by their number), so
// under contention projects get equal CPU however many workers they run.
func (w *cgroup) setGroup(group string) {
	c := w.parent
	c.mu.Lock()
	defer c.mu.Unlock()
	w.group = group
	c.groups[group] = append(c.groups[group], w)
	c.rebalance(group)
}

// rebalance writes the weights of group's workers (c.mu held).
func (c *cgroups) rebalance(group string) {
	ws := c.groups[group]
	if len(ws) == 0 {
		delete(c.groups, group)
		return
	}
	file, weight := "cpu.shares", strconv.Itoa(max(2, 1024/len(ws)))
	if c.v2 {
		file, weight = "cpu.weight", strconv.Itoa(max(1, 100/len(ws)))
	}
	for _, w := range ws {
		d := w.dirs["cpu"]
		if c.v2 {
			d = w.dirs[""]
		}
		if d != "" {
			_ = os.WriteFile(filepath.Join(d, file), []byte(weight), 0)
		}
	}
}

// add moves pid (and so what it starts later) into the worker's cgroup.
func (w *cgroup) add(pid int) error {
	for _, d := range w.dirs {
		if err := os.WriteFile(d+"/cgroup.procs", []byte(pidString(pid)), 0); err != nil {
			return fmt.Errorf("cgroup %s: add %d: %w", d, pid, err)
		}
	}
	return nil
}

// pids lists the processes in the worker's cgroup.
func (w *cgroup) pids() []int {
	for _, d := range w.dirs {
		return readPids(d)
	}
	return nil
}

func (w *cgroup) killAll() {
	for _, d := range w.dirs {
		killProcs(d)
		return // every controller holds the same processes
	}
}

// oomKills is how often the kernel's OOM killer acted in the cgroup.
func (w *cgroup) oomKills() int64 {
	file := w.dirs["memory"] + "/memory.oom_control"
	if w.v2 {
		file = w.dirs[""] + "/memory.events"
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("oom_kill "))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	n, _ := strconv.ParseInt(string(bytes.TrimSpace(line)), 10, 64)
	return n
}

// remove kills what is left and removes the worker's directories.
func (w *cgroup) remove() {
	if c := w.parent; c != nil && w.group != "" {
		c.mu.Lock()
		ws := c.groups[w.group]
		for i, x := range ws {
			if x == w {
				c.groups[w.group] = append(ws[:i:i], ws[i+1:]...)
				break
			}
		}
		c.rebalance(w.group)
		w.group = ""
		c.mu.Unlock()
	}
	for _, d := range w.dirs {
		killProcs(d)
		rmdirWhenEmpty(d)
	}
}

func readPids(dir string) []int {
	b, err := os.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range bytes.Fields(b) {
		if n, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func killProcs(dir string) {
	for _, pid := range readPids(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// rmdirWhenEmpty removes a cgroup directory; killed processes leave it a
// moment after SIGKILL, so it retries for up to a second.
func rmdirWhenEmpty(dir string) {
	end := time.Now().Add(time.Second)
	for {
		err := syscall.Rmdir(dir)
		// EBUSY: processes are still leaving it; anything else will not
		// change by waiting.
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(end) {
			return
		}
		killProcs(dir)
		time.Sleep(5 * time.Millisecond)
	}
}

// safeComponent makes s usable as a directory name.
func safeComponent(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '.' {
		b = append([]byte{'x'}, b...)
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}
