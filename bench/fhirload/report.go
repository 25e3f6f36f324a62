package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wardhealth/ward/bench/internal/proccpu"
)

// report is everything a run measured, written as results.json and
// results.md.
type report struct {
	Date       string         `json:"date"`
	Command    string         `json:"command"`
	Machine    machineInfo    `json:"machine"`
	Clients    int            `json:"clients"`
	Client     string         `json:"client"`
	Warmup     string         `json:"warmup"`
	Duration   string         `json:"duration"`
	Patients   int            `json:"patients"`
	Seed       uint64         `json:"seed"`
	Resources  map[string]int `json:"resources"`
	LoadAvg    string         `json:"loadAvgStart"`
	LoadAvgEnd string         `json:"loadAvgEnd"`
	Targets    []targetInfo   `json:"targets"`
	Runs       []run          `json:"runs"`
}

type machineInfo struct {
	CPUs       int    `json:"cpus"`
	Model      string `json:"model"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Node       string `json:"node,omitempty"`
	Postgres   string `json:"postgres,omitempty"`
	WardCommit string `json:"wardCommit,omitempty"`
}

type targetInfo struct {
	Name          string        `json:"name"`
	LoadSeconds   float64       `json:"loadSeconds,omitempty"`
	Analyzed      bool          `json:"analyzedAfterLoad,omitempty"`
	LoadAvgBefore string        `json:"loadAvgBefore"`
	LoadAvgAfter  string        `json:"loadAvgAfter"`
	Probes        []probeResult `json:"probes,omitempty"`
}

func newReport(ctx context.Context, c config) *report {
	r := &report{Date: time.Now().Format("2006-01-02 15:04 MST"), Command: strings.Join(os.Args, " "), Clients: c.clients, Client: c.client,
		Warmup: c.warmup.String(), Duration: c.duration.String(), Patients: c.patients, Seed: c.seed, LoadAvg: proccpu.LoadAvg()}
	r.Machine = machineInfo{CPUs: runtime.NumCPU(), Model: cpuModel(), Go: goVersion()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Machine.Kernel = strings.TrimSpace(string(b))
	}
	if slices.Contains(c.targets, "medplum") {
		if out, err := exec.CommandContext(ctx, c.node, "--version").Output(); err == nil {
			r.Machine.Node = strings.TrimSpace(string(out))
		}
	}
	if slices.Contains(c.targets, "ward-postgres") || slices.Contains(c.targets, "ward-postgres-x3") {
		if db, err := sql.Open("pgx", c.postgres); err == nil {
			var v, fsync, sync string
			if err := db.QueryRowContext(ctx, "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')").Scan(&v, &fsync, &sync); err == nil {
				r.Machine.Postgres = fmt.Sprintf("%s (fsync=%s, synchronous_commit=%s)", v, fsync, sync)
			}
			db.Close()
		}
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", c.repo, "rev-parse", "--short", "HEAD").Output(); err == nil {
		r.Machine.WardCommit = strings.TrimSpace(string(out))
		// Ward is built from the working tree: say if it differs from the commit.
		dirty, err := exec.CommandContext(ctx, "git", "-C", c.repo, "status", "--porcelain", "--", "cmd", "internal", "go.mod", "go.sum").Output()
		if err == nil && len(strings.TrimSpace(string(dirty))) > 0 {
			r.Machine.WardCommit += " + uncommitted changes"
		}
	}
	return r
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func (r *report) write(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	md := r.markdown()
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Println(md)
	fmt.Fprintf(os.Stderr, "results in %s/results.{md,json}\n", dir)
	return nil
}

// best is the fastest run of a scenario on a target (with -repeat, the
// one least disturbed by the other processes on the machine), and the
// slowest throughput and number of runs.
func (r *report) best(target, scenario string) (best *run, slowest float64, n int) {
	for i := range r.Runs {
		x := &r.Runs[i]
		if x.Target != target || x.Scenario != scenario {
			continue
		}
		n++
		if best == nil || x.PerSecond > best.PerSecond {
			best = x
		}
		if n == 1 || x.PerSecond < slowest {
			slowest = x.PerSecond
		}
	}
	return best, slowest, n
}

func (r *report) find(target, scenario string) *run {
	x, _, _ := r.best(target, scenario)
	return x
}

// goals are the targets for ward on SQLite.
var goals = []struct {
	scenario string
	rate     float64
}{{"read", 12000}, {"create", 3000}, {"search-obs", 4000}, {"search-name", 4000}}

const goalP99MS = 10

func (r *report) markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Run %s on %d CPUs (%s), Linux %s, %s", r.Date, m.CPUs, m.Model, m.Kernel, m.Go)
	if m.Node != "" {
		fmt.Fprintf(&b, ", node %s", m.Node)
	}
	if m.Postgres != "" {
		fmt.Fprintf(&b, ", PostgreSQL %s", m.Postgres)
	}
	fmt.Fprintf(&b, ".\nWard %s. %d clients (%s HTTP client), %s warm-up + %s measured per scenario; %d patients, %d resources (%s).\n",
		m.WardCommit, r.Clients, r.Client, r.Warmup, r.Duration, r.Patients, sum(r.Resources), resourceList(r.Resources))
	fmt.Fprintf(&b, "Command: `%s`.\n", r.Command)
	fmt.Fprintf(&b, "Load average (1/5/15 min): %s at start, %s at end", r.LoadAvg, r.LoadAvgEnd)
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "; %s: %s -> %s", t.Name, t.LoadAvgBefore, t.LoadAvgAfter)
		if t.LoadSeconds > 0 {
			fmt.Fprintf(&b, " (data loaded in %.1f s", t.LoadSeconds)
			if t.Analyzed {
				b.WriteString(", then ANALYZE")
			}
			b.WriteString(")")
		}
	}
	b.WriteString(".\n\n")

	b.WriteString("| target | scenario | req/s | slowest run | p50 ms | p90 ms | p99 ms | max ms | errors | conns | server CPU µs/req | PostgreSQL CPU µs/req | context switches/req: server / postgres | cores: server / load gen / postgres / other |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	seen := map[string]bool{}
	for _, y := range r.Runs {
		if seen[y.Target+" "+y.Scenario] {
			continue
		}
		seen[y.Target+" "+y.Scenario] = true
		x, slowest, n := r.best(y.Target, y.Scenario)
		spread := "-"
		if n > 1 {
			spread = fmt.Sprintf("%s (of %d)", num(slowest), n)
		}
		pgMicros, srvSw, pgSw := 0.0, 0.0, 0.0 // the benchmark database's backends only (cpu.go)
		if x.PerSecond > 0 {
			pgMicros = x.CPU.Postgres * 1e6 / x.PerSecond
			srvSw, pgSw = x.CPU.ServerSwitches/x.PerSecond, x.CPU.PostgresSwitches/x.PerSecond
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %.2f | %.2f | %.1f | %d | %d | %.0f | %.0f | %.1f / %.1f | %.2f / %.2f / %.2f / %.2f |\n",
			x.Target, x.Scenario, num(x.PerSecond), spread, x.P50MS, x.P90MS, x.P99MS, x.MaxMS, x.Errors, x.Dials,
			x.CPU.ServerMicros, pgMicros, srvSw, pgSw, x.CPU.Server, x.CPU.LoadGen, x.CPU.Postgres, x.CPU.Other)
	}

	// Throughput ratios: each Ward target over each peer that ran.
	var wards, peers []string
	for _, t := range r.Targets {
		if strings.HasPrefix(t.Name, "ward") {
			wards = append(wards, t.Name)
		} else {
			peers = append(peers, t.Name)
		}
	}
	if len(wards) > 0 && len(peers) > 0 {
		b.WriteString("\nThroughput (req/s) and ratios (Ward / peer):\n\n| scenario |")
		var cols []string
		for _, t := range r.Targets {
			b.WriteString(" " + t.Name + " |")
		}
		for _, w := range wards {
			for _, p := range peers {
				cols = append(cols, w+" / "+p)
				b.WriteString(" " + w + " / " + p + " |")
			}
		}
		b.WriteString("\n|---|" + strings.Repeat("---:|", len(r.Targets)+len(cols)) + "\n")
		for _, sc := range scenarios() {
			if !slices.ContainsFunc(r.Runs, func(x run) bool { return x.Scenario == sc.name }) {
				continue
			}
			fmt.Fprintf(&b, "| %s |", sc.name)
			for _, t := range r.Targets {
				if x := r.find(t.Name, sc.name); x != nil {
					fmt.Fprintf(&b, " %s |", num(x.PerSecond))
				} else {
					b.WriteString(" |")
				}
			}
			for _, w := range wards {
				for _, p := range peers {
					wx, px := r.find(w, sc.name), r.find(p, sc.name)
					if wx != nil && px != nil && px.PerSecond > 0 {
						fmt.Fprintf(&b, " %s |", ratio(wx.PerSecond/px.PerSecond))
					} else {
						b.WriteString(" |")
					}
				}
			}
			b.WriteString("\n")
		}
	}

	if slices.ContainsFunc(r.Targets, func(t targetInfo) bool { return t.Name == "ward-sqlite" }) {
		fmt.Fprintf(&b, "\nGoals for ward-sqlite (p99 under %d ms everywhere):\n\n| scenario | goal req/s | req/s | p99 ms | met |\n|---|---:|---:|---:|---|\n", goalP99MS)
		for _, g := range goals {
			if x := r.find("ward-sqlite", g.scenario); x != nil {
				met := "yes"
				switch {
				case x.PerSecond < g.rate && x.P99MS >= goalP99MS:
					met = "no (throughput, p99)"
				case x.PerSecond < g.rate:
					met = "no (throughput)"
				case x.P99MS >= goalP99MS:
					met = "no (p99)"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %s |\n", g.scenario, num(g.rate), num(x.PerSecond), x.P99MS, met)
			}
		}
	}

	for _, x := range r.Runs {
		if d := x.Durable; d != nil {
			fmt.Fprintf(&b, "\nDurability (%s): %d loaded + %d acknowledged creates (%d failed); after kill -9 and restart: %d Observations: %s.",
				x.Target, d.Loaded, d.Acked, d.Errors, d.Found, map[bool]string{true: "every acknowledged create is there", false: "MISMATCH"}[d.Verified])
		}
	}
	b.WriteString("\n")
	b.WriteString(r.agreement())
	for _, x := range r.Runs {
		for _, e := range x.FirstErrors {
			fmt.Fprintf(&b, "\nError (%s %s): %s", x.Target, x.Scenario, e)
		}
		if x.Profile != "" {
			fmt.Fprintf(&b, "\nCPU profile (%s %s): %s", x.Target, x.Scenario, x.Profile)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// agreement compares the probe answers of the targets that hold data.
func (r *report) agreement() string {
	var ref *targetInfo
	var b strings.Builder
	for i := range r.Targets {
		t := &r.Targets[i]
		if len(t.Probes) == 0 {
			continue
		}
		if ref == nil {
			ref = t
			continue
		}
		bad := 0
		for k, p := range t.Probes {
			q := ref.Probes[k]
			if p.Total != q.Total || p.Entries != q.Entries {
				bad++
				fmt.Fprintf(&b, "\nAnswers differ on %s: %s total %d (%d entries), %s total %d (%d entries).", p.Query, ref.Name, q.Total, q.Entries, t.Name, p.Total, p.Entries)
			}
		}
		if bad == 0 {
			fmt.Fprintf(&b, "\n%s and %s give the same totals and entry counts on all %d sample searches.", t.Name, ref.Name, len(t.Probes))
		}
	}
	return b.String()
}

func resourceList(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

// num formats a rate with thousands separators.
func num(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func ratio(f float64) string {
	switch {
	case f >= 10:
		return fmt.Sprintf("%.0fx", f)
	case f >= 0.1:
		return fmt.Sprintf("%.2fx", f)
	}
	return fmt.Sprintf("%.3fx", f)
}
