// Command fhirload is the whole-system HTTP benchmark of Ward's FHIR API:
// a real `ward serve` process on SQLite or on PostgreSQL, a deterministic
// 1,000-patient data set loaded through FHIR transaction bundles, then each
// scenario (read by id, create, two searches) for a fixed time with N
// concurrent keep-alive clients, every request carrying a bearer token and
// every latency recorded. The same load, from the same generator, runs
// against two peers in the same run, one at a time:
//
//   - bare: a plain net/http server answering a fixed 1 KB Patient (the
//     ceiling of any Go HTTP server on this machine);
//   - medplum: Medplum's FHIR router with its in-memory repository behind
//     node:http (bench/medplum), loaded with the same bundles.
//
// Usage (from bench/; bench/fhirload/run.sh does everything end to end):
//
//	go run ./fhirload -targets ward-sqlite,ward-postgres,bare,medplum -clients 32 -duration 10s
//	go run ./fhirload -targets ward-sqlite -scenarios read,create -profile /tmp/prof
//
// Big data sets load once: -keep leaves the loaded directory (with
// patient-ids.json), -from starts later runs on a copy of it, and
// multiply.sh makes 10x of a kept directory without loading it:
//
//	go run ./fhirload -targets ward-sqlite -patients 10000 -keep -scenarios read
//	bash fhirload/multiply.sh /tmp/fhirload-ward-sqlite-NNN /tmp/kept-100k 10
//	go run ./fhirload -targets ward-sqlite -patients 100000 -from /tmp/kept-100k
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wardhealth/ward/bench/internal/proccpu"
)

type config struct {
	targets, scenarios, profileScenarios []string
	clients, patients, repeat            int
	duration, warmup                     time.Duration
	seed                                 uint64
	wardBin, repo, postgres, node, out   string
	from                                 string // a kept ward-sqlite directory to start from (no load)
	pgParams                             string
	profileDir                           string
	traceSecs                            int
	keep, durability, analyze            bool
	client                               string // "raw" or "net/http"
	x3Env                                []string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare" {
		if err := serveBare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fhirload bare:", err)
			os.Exit(1)
		}
		return
	}
	var c config
	var targets, scens, profScens, x3Env string
	flag.StringVar(&targets, "targets", "bare,ward-sqlite,ward-postgres,medplum", "targets to run, in order: ward-sqlite, ward-postgres, ward-postgres-x3 (three replicas on one database, clients round robin), bare, medplum")
	flag.StringVar(&scens, "scenarios", "read,search-obs,search-name,create", "scenarios to run (create always runs last)")
	flag.IntVar(&c.clients, "clients", 32, "concurrent keep-alive clients")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per scenario")
	flag.IntVar(&c.repeat, "repeat", 1, "runs of each scenario per target (the tables show the fastest, and the range)")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured time before each scenario")
	flag.IntVar(&c.patients, "patients", 1000, "patients in the data set (about 18 resources each)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the data set and of the clients' random choices")
	flag.StringVar(&c.wardBin, "ward", "", "ward binary (default: go build ./cmd/ward from the repository root)")
	flag.StringVar(&c.repo, "repo", "", "repository root (default: found from the working directory)")
	flag.StringVar(&c.postgres, "postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server where ward-postgres gets a fresh database")
	flag.StringVar(&c.pgParams, "pg-params", "", "extra query parameters for ward-postgres's database URL (e.g. plan_cache_mode=force_custom_plan); default none")
	flag.StringVar(&c.node, "node", "node", "node binary for the medplum target")
	flag.StringVar(&c.out, "out", "", "directory for results.md and results.json (default: a new temp dir)")
	flag.StringVar(&c.profileDir, "profile", "", "directory for CPU profiles of ward (via its --debug-addr pprof listener); empty: no profiling")
	flag.IntVar(&c.traceSecs, "trace", 0, "with -profile: also fetch an execution trace of this many seconds (go tool trace) beside each CPU profile")
	flag.StringVar(&profScens, "profile-scenarios", "read,create", "scenarios to profile when -profile is set")
	flag.BoolVar(&c.durability, "durability", true, "after create on ward: kill -9, restart, and check every acknowledged create is there")
	flag.BoolVar(&c.keep, "keep", false, "keep data directories and PostgreSQL databases (a kept ward-sqlite directory also holds patient-ids.json, for -from)")
	flag.StringVar(&c.from, "from", "", "ward-sqlite only: start on a copy of this directory kept by an earlier -keep run with the same -patients and -seed, instead of loading the data set (loading 100,000 patients takes hours; the copy seconds)")
	flag.StringVar(&c.client, "client", "raw", "load generator's HTTP client: raw (lean HTTP/1.1, as wrk) or net/http (Go's client; ~5x the CPU per request)")
	flag.StringVar(&x3Env, "x3-env", "", "environment for every `ward serve` of ward-postgres-x3, space-separated (e.g. GOMAXPROCS=1: three replicas sharing the machine's cores)")
	flag.BoolVar(&c.analyze, "pg-analyze", true, "run ANALYZE on ward-postgres's database after the load, as autovacuum would on a server that has it on")
	flag.Parse()
	c.targets, c.scenarios, c.profileScenarios = splitList(targets), splitList(scens), splitList(profScens)
	c.x3Env = strings.Fields(x3Env)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAll(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "fhirload:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func runAll(ctx context.Context, c config) error {
	if c.client != "raw" && c.client != "net/http" {
		return fmt.Errorf("unknown -client %q (raw or net/http)", c.client)
	}
	if c.from != "" && !slices.Equal(c.targets, []string{"ward-sqlite"}) {
		return fmt.Errorf("-from works with -targets ward-sqlite alone")
	}
	for _, t := range c.targets {
		if !slices.Contains([]string{"ward-sqlite", "ward-postgres", "ward-postgres-x3", "bare", "medplum"}, t) {
			return fmt.Errorf("unknown target %q", t)
		}
	}
	var scs []scenario
	for _, sc := range scenarios() {
		if slices.Contains(c.scenarios, sc.name) {
			scs = append(scs, sc)
		}
	}
	if c.repeat < 1 {
		return fmt.Errorf("-repeat must be at least 1")
	}
	if len(scs) != len(c.scenarios) {
		return fmt.Errorf("unknown scenario in %v (known: read, search-obs, search-name, create)", c.scenarios)
	}
	if c.repo == "" {
		var err error
		if c.repo, err = findRepo(); err != nil {
			return err
		}
	}
	if c.out == "" {
		var err error
		if c.out, err = os.MkdirTemp("", "fhirload-results-"); err != nil {
			return fmt.Errorf("results dir: %w", err)
		}
	}
	for _, d := range []string{c.out, c.profileDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("mkdir: %w", err)
			}
		}
	}
	rep := newReport(ctx, c)
	if slices.ContainsFunc(c.targets, func(t string) bool { return strings.HasPrefix(t, "ward") }) && c.wardBin == "" {
		dir, err := os.MkdirTemp("", "fhirload-bin-")
		if err != nil {
			return fmt.Errorf("bin dir: %w", err)
		}
		defer os.RemoveAll(dir)
		c.wardBin = filepath.Join(dir, "ward")
		fmt.Fprintln(os.Stderr, "building ward ...")
		build := exec.CommandContext(ctx, "go", "build", "-o", c.wardBin, "./cmd/ward")
		build.Dir = c.repo
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build ward: %w", err)
		}
	}
	ds, err := generate(c.seed, c.patients)
	if err != nil {
		return err
	}
	rep.Resources = ds.counts
	fmt.Fprintf(os.Stderr, "data set: %d patients, %d resources in %d transaction bundles\n", ds.patients, sum(ds.counts), len(ds.bundles))
	for _, name := range c.targets {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := runTarget(ctx, c, name, ds, scs, rep); err != nil {
			// Keep what the other targets measured.
			rep.LoadAvgEnd = proccpu.LoadAvg()
			_ = rep.write(c.out)
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	rep.LoadAvgEnd = proccpu.LoadAvg()
	return rep.write(c.out)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// runTarget starts one target, loads the data set, checks a sample of
// search answers, runs the scenarios and stops it, so targets never run
// at the same time.
func runTarget(ctx context.Context, c config, name string, ds *dataset, scs []scenario, rep *report) error {
	info := targetInfo{Name: name, LoadAvgBefore: proccpu.LoadAvg()}
	fmt.Fprintf(os.Stderr, "\n== %s (load average %s)\n", name, info.LoadAvgBefore)
	var (
		t   *target
		err error
	)
	switch name {
	case "ward-sqlite", "ward-postgres", "ward-postgres-x3":
		var env []string
		if strings.HasSuffix(name, "-x3") {
			env = c.x3Env
		}
		t, err = startWard(ctx, name, c.wardBin, c.postgres, c.pgParams, c.profileDir != "", c.keep, env, c.from)
	case "bare":
		t, err = startBare(ctx)
	case "medplum":
		t, err = startMedplum(ctx, c.node, filepath.Join(c.repo, "bench", "medplum"))
	}
	if err != nil {
		return err
	}
	defer t.close()
	ids := make([]string, ds.patients)
	if t.kind == "bare" {
		// Nothing to load: the bare server answers every path alike.
		for i := range ids {
			ids[i] = fmt.Sprintf("01a20368-fad3-7de4-8e92-%012d", i)
		}
	} else if c.from != "" {
		if ids, err = readIDs(c.from, ds.patients); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "started on a copy of %s (%d patients, not loaded again)\n", c.from, len(ids))
		if info.Probes, err = probe(ctx, t, ids, ds, c.seed); err != nil {
			return fmt.Errorf("probe answers: %w", err)
		}
	} else {
		t0 := time.Now()
		if ids, err = load(ctx, t, ds); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		info.LoadSeconds = time.Since(t0).Seconds()
		fmt.Fprintf(os.Stderr, "loaded %d resources in %.1fs (%.0f resources/s)\n", sum(ds.counts), info.LoadSeconds, float64(sum(ds.counts))/info.LoadSeconds)
		if c.keep && t.ward != nil {
			if err := writeIDs(t.ward.logDir, ids); err != nil {
				return err
			}
		}
		if t.ward != nil && t.ward.dsn != "" && c.analyze {
			if err := analyze(ctx, t.ward.dsn); err != nil {
				return err
			}
			info.Analyzed = true
		}
		if info.Probes, err = probe(ctx, t, ids, ds, c.seed); err != nil {
			return fmt.Errorf("probe answers: %w", err)
		}
	}
	// Rounds of the read and search scenarios, interleaved so that a burst
	// of load from other processes on the shared machine does not hit every
	// repetition of one scenario; then the creates (they grow the data).
	type step struct {
		sc    scenario
		round int
	}
	var plan []step
	for round := range c.repeat {
		for _, sc := range scs {
			if sc.name != "create" {
				plan = append(plan, step{sc, round})
			}
		}
	}
	for round := range c.repeat {
		for _, sc := range scs {
			if sc.name == "create" {
				plan = append(plan, step{sc, round})
			}
		}
	}
	acked, failed := 0, 0
	for _, st := range plan {
		sc := st.sc
		var prof *profiler
		if c.profileDir != "" && t.ward != nil && st.round == 0 && slices.Contains(c.profileScenarios, sc.name) {
			prof = startProfile(ctx, t, sc.name, c)
		}
		h0, m0 := cacheCounts(ctx, t)
		// Each round draws other patients and codes.
		r := measure(ctx, t, ids, sc, c.client, c.clients, c.warmup, c.duration, c.seed+uint64(st.round)<<32)
		h1, m1 := cacheCounts(ctx, t)
		r.CacheHits, r.CacheMisses = h1-h0, m1-m0
		r.Round = st.round
		if prof != nil {
			r.Profile = prof.wait()
		}
		if r.Requests > 0 {
			r.CPU.ServerMicros = r.CPU.Server * r.Seconds * 1e6 / float64(r.Requests)
		}
		fmt.Fprintf(os.Stderr, "%-12s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  errors %d  conns %d  cpu server %.2f loadgen %.2f pg %.2f other %.2f\n",
			sc.name, r.PerSecond, r.P50MS, r.P99MS, r.MaxMS, r.Errors, r.Dials, r.CPU.Server, r.CPU.LoadGen, r.CPU.Postgres, r.CPU.Other)
		if r.CacheHits+r.CacheMisses > 0 {
			fmt.Fprintf(os.Stderr, "             resource cache: %d hits, %d misses (%.1f%% hits)\n",
				r.CacheHits, r.CacheMisses, 100*float64(r.CacheHits)/float64(r.CacheHits+r.CacheMisses))
		}
		for _, e := range r.FirstErrors {
			fmt.Fprintln(os.Stderr, "   error:", e)
		}
		if sc.name == "create" {
			acked, failed = acked+r.Acked, failed+r.Failed
		}
		if sc.name == "create" && st.round == c.repeat-1 && t.ward != nil && len(t.replicas) == 0 && c.durability {
			if r.Durable, err = checkDurable(ctx, t, ds.counts["Observation"], acked, acked+failed); err != nil {
				return fmt.Errorf("durability check: %w", err)
			}
			d := r.Durable
			fmt.Fprintf(os.Stderr, "durability: %d loaded + %d acknowledged creates, %d Observations after kill -9 and restart: verified=%v\n",
				d.Loaded, d.Acked, d.Found, d.Verified)
		}
		rep.Runs = append(rep.Runs, r)
	}
	info.LoadAvgAfter = proccpu.LoadAvg()
	rep.Targets = append(rep.Targets, info)
	return nil
}

// analyze collects planner statistics on a fresh database after the bulk
// load. Autovacuum would do it within a minute or so, but it is off on
// some servers (this machine's among them), and without statistics
// PostgreSQL plans Ward's searches as nested loops over every row: one
// search-obs query took 117 s on the loaded data set, 0.4 ms after ANALYZE.
func analyze(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// findRepo walks up from the working directory to Ward's go.mod.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/wardhealth/ward\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no Ward repository above the working directory; pass -repo")
		}
		dir = parent
	}
}

// load posts the data set's transaction bundles (two at a time) and
// returns the server's id of each patient, by index.
func load(ctx context.Context, t *target, ds *dataset) ([]string, error) {
	ids := make([]string, ds.patients)
	hc := &http.Client{Timeout: 5 * time.Minute}
	jobs := make(chan loadBundle)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				if err := postBundle(ctx, hc, t, b, ids); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, b := range ds.bundles {
		select {
		case jobs <- b:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("no id for patient %d", i)
		}
	}
	return ids, nil
}

func postBundle(ctx context.Context, hc *http.Client, t *target, b loadBundle, ids []string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base, bytes.NewReader(b.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("post bundle: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("read bundle response: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("bundle: status %d: %.500s", res.StatusCode, body)
	}
	var out struct {
		Entry []struct {
			Response struct {
				Status   string `json:"status"`
				Location string `json:"location"`
			} `json:"response"`
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return fmt.Errorf("bundle response: %w", err)
	}
	for pos, i := range b.patientAt {
		if pos >= len(out.Entry) {
			return fmt.Errorf("bundle response has %d entries, want more than %d", len(out.Entry), pos)
		}
		e := out.Entry[pos]
		if !strings.HasPrefix(e.Response.Status, "201") {
			return fmt.Errorf("patient %d: entry status %q", i, e.Response.Status)
		}
		ids[i] = e.Resource.ID
		// The location is Patient/{id}[/_history/{v}], possibly absolute.
		if _, rest, ok := strings.Cut(e.Response.Location, "Patient/"); ok {
			ids[i], _, _ = strings.Cut(rest, "/")
		}
	}
	return nil
}

// writeIDs records the server's patient ids (by data set index) in a kept
// directory, so that -from can start on a copy without loading again.
func writeIDs(dir string, ids []string) error {
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "patient-ids.json"), b, 0o644); err != nil {
		return fmt.Errorf("patient ids: %w", err)
	}
	return nil
}

// readIDs reads what writeIDs wrote, checking it holds the data set's
// patients.
func readIDs(dir string, patients int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "patient-ids.json"))
	if err != nil {
		return nil, fmt.Errorf("-from: %w", err)
	}
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		return nil, fmt.Errorf("-from: patient ids: %w", err)
	}
	if len(ids) != patients {
		return nil, fmt.Errorf("-from: %s holds %d patients, the data set %d (same -patients and -seed?)", dir, len(ids), patients)
	}
	return ids, nil
}

// probeResult is one search's answer on one target: the peers must agree
// on it for their throughputs to be comparable.
type probeResult struct {
	Query   string `json:"query"`
	Total   int    `json:"total"`
	Entries int    `json:"entries"`
}

// probe asks a fixed sample of the scenarios' searches (by patient index,
// so the same questions on every target) and records the answers.
func probe(ctx context.Context, t *target, ids []string, ds *dataset, seed uint64) ([]probeResult, error) {
	var out []probeResult
	hc := &http.Client{Timeout: time.Minute}
	for k := range 12 {
		i, code := (k*97+int(seed))%len(ids), loincCodes[k%len(loincCodes)].code
		path := obsQuery(ids[i], code)
		label := fmt.Sprintf("Observation?subject=<patient %d>&code=%s", i, code)
		if k%3 == 2 {
			path, label = "/Patient?name="+families[k*7%len(families)], "Patient?name="+families[k*7%len(families)]
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+path, nil)
		if err != nil {
			return nil, err
		}
		if t.token != "" {
			req.Header.Set("Authorization", "Bearer "+t.token)
		}
		res, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		var b struct {
			Total int   `json:"total"`
			Entry []any `json:"entry"`
		}
		err = json.NewDecoder(res.Body).Decode(&b)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: status %d: %v", path, res.StatusCode, err)
		}
		out = append(out, probeResult{Query: label, Total: b.Total, Entries: len(b.Entry)})
	}
	return out, nil
}

// checkDurable kills ward with SIGKILL right after the create scenario
// (every client has had its answer), restarts it on the same data and
// counts Observations: each acknowledged create must be there. failedMax
// bounds creates that failed yet may have committed.
func checkDurable(ctx context.Context, t *target, loaded, acked, failedMax int) (*durable, error) {
	t.proc.kill9()
	p, err := t.ward.launch(ctx)
	if err != nil {
		return nil, err
	}
	t.proc = p
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/Observation?_summary=count", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	defer res.Body.Close()
	var b struct {
		Total int `json:"total"`
	}
	if err := json.NewDecoder(res.Body).Decode(&b); err != nil || res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("count: status %d: %v", res.StatusCode, err)
	}
	d := &durable{Loaded: loaded, Acked: acked, Errors: failedMax - acked, Found: b.Total}
	d.Verified = d.Found >= loaded+acked && d.Found <= loaded+failedMax
	return d, nil
}

// profiler fetches a CPU profile of ward over the measured window.
type profiler struct {
	done chan string
}

func startProfile(ctx context.Context, t *target, scenario string, c config) *profiler {
	p := &profiler{done: make(chan string, 1)}
	file := filepath.Join(c.profileDir, t.name+"-"+scenario+".pprof")
	secs := max(1, int(c.duration/time.Second))
	go func() {
		select {
		case <-time.After(c.warmup):
		case <-ctx.Done():
			p.done <- ""
			return
		}
		if c.traceSecs > 0 {
			// Beside the CPU profile: where goroutines wait (go tool trace
			// -pprof=sched|sync|syscall).
			go func() {
				url := fmt.Sprintf("http://%s/debug/pprof/trace?seconds=%d", t.ward.debugAddr, c.traceSecs)
				if err := fetchTo(ctx, url, strings.TrimSuffix(file, ".pprof")+".trace"); err != nil {
					fmt.Fprintln(os.Stderr, "trace:", err)
				}
			}()
		}
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.ward.debugAddr, secs)
		if err := fetchTo(ctx, url, file); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			p.done <- ""
			return
		}
		// The top consumers as text, next to the profile (Go profiles
		// carry their symbols: no binary needed).
		top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=40", file).CombinedOutput()
		if err == nil {
			err = os.WriteFile(strings.TrimSuffix(file, ".pprof")+".top.txt", top, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "pprof -top:", err)
		}
		p.done <- file
	}()
	return p
}

func (p *profiler) wait() string { return <-p.done }

func fetchTo(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", url, res.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return fmt.Errorf("save profile: %w", err)
	}
	return f.Close()
}

// goVersion is the toolchain that built this program (and ward).
func goVersion() string { return runtime.Version() }
