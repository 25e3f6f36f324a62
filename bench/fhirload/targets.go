package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to create the fresh PostgreSQL database
)

// proc is one server process the benchmark started (and only those are
// ever signalled).
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

func startProc(name string, args []string, logPath string, env ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill9 ends the process the way a power cut would: no shutdown code runs.
func (p *proc) kill9() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop asks politely, then kills after 10 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill9()
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, the process exits or 60 s pass.
func waitHTTP(ctx context.Context, url string, p *proc, logPath string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("server exited before answering %s (%v); log: %s", url, p.err, tail(logPath))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no 200 from %s within 60s; log: %s", url, tail(logPath))
		}
		time.Sleep(50 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// target is one server under load, reached at base (the FHIR base URL).
type target struct {
	name  string
	kind  string // ward, bare or medplum
	base  string
	token string
	proc  *proc
	// replicas are the other `ward serve` of ward-postgres-x3 (same
	// database), bases every replica's FHIR base: client i talks to
	// bases[i%len(bases)].
	replicas []*proc
	bases    []string
	// pgDB is the PostgreSQL database of a ward on PostgreSQL, whose
	// backends' CPU the scenarios count.
	pgDB string
	// ward only: what restart needs, and the pprof listener.
	ward *wardServer
	// debugAddrs are the other replicas' debug listeners (/metrics).
	debugAddrs []string
	// cleanup undoes what start made (temp dirs, the PostgreSQL database).
	cleanup func()
}

func (t *target) close() {
	for _, p := range t.replicas {
		p.stop()
	}
	if t.proc != nil {
		t.proc.stop()
	}
	if t.cleanup != nil {
		t.cleanup()
	}
}

// wardServer is `ward serve` on one data directory and database.
type wardServer struct {
	bin, dataDir, dsn, addr, debugAddr, logDir string
	publicURL                                  string // "": its own address
	env                                        []string
	starts                                     int
}

// launch starts the server (again, after kill9: same data) and waits for
// /healthz.
func (w *wardServer) launch(ctx context.Context) (*proc, error) {
	// Load comes from one principal: no per-principal rate limit.
	args := []string{"serve", "--addr", w.addr, "--data-dir", w.dataDir, "--rate-limit", "0"}
	if w.dsn != "" {
		args = append(args, "--database", w.dsn)
	}
	if w.publicURL != "" {
		args = append(args, "--public-url", w.publicURL)
	}
	if w.debugAddr != "" {
		args = append(args, "--debug-addr", w.debugAddr)
	}
	w.starts++
	logPath := filepath.Join(w.logDir, fmt.Sprintf("ward-%d.log", w.starts))
	p, err := startProc(w.bin, args, logPath, w.env...)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+w.addr+"/healthz", p, logPath); err != nil {
		p.kill9()
		return nil, fmt.Errorf("ward: %w", err)
	}
	return p, nil
}

// startWard runs `ward serve` on a fresh SQLite data directory or a fresh
// PostgreSQL database (pgAdmin is the server's maintenance URL) and gets an
// admin token with the client credentials it wrote. env is added to the
// server's environment (and its replicas'). With from (SQLite only), the
// data directory is a copy of from's, kept by an earlier run.
func startWard(ctx context.Context, name, bin, pgAdmin, pgParams string, profile bool, keep bool, env []string, from string) (*target, error) {
	dir, err := os.MkdirTemp("", "fhirload-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	t := &target{name: name, kind: "ward"}
	var cleanups []func()
	t.cleanup = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	if !keep {
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	} else {
		cleanups = append(cleanups, func() { fmt.Fprintf(os.Stderr, "fhirload: %s data kept in %s\n", name, dir) })
	}
	w := &wardServer{bin: bin, dataDir: filepath.Join(dir, "data"), logDir: dir, env: env}
	if from != "" {
		// A copy: the create scenario and the durability check change it.
		if out, err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(from, "data"), w.dataDir).CombinedOutput(); err != nil {
			t.cleanup()
			return nil, fmt.Errorf("copy %s: %v: %s", from, err, out)
		}
	}
	if strings.Contains(name, "postgres") {
		dsn, drop, err := freshPostgres(ctx, pgAdmin, pgParams)
		if err != nil {
			t.cleanup()
			return nil, err
		}
		w.dsn = dsn
		if u, err := url.Parse(dsn); err == nil {
			t.pgDB = strings.TrimPrefix(u.Path, "/")
		}
		if !keep {
			cleanups = append(cleanups, drop)
		}
	}
	if w.addr, err = freeAddr(); err != nil {
		t.cleanup()
		return nil, err
	}
	// Always: /metrics counts the resource cache's hits (and pprof
	// serves -profile).
	if w.debugAddr, err = freeAddr(); err != nil {
		t.cleanup()
		return nil, err
	}
	if t.proc, err = w.launch(ctx); err != nil {
		t.cleanup()
		return nil, err
	}
	t.ward, t.base = w, "http://"+w.addr+"/fhir"
	t.bases = []string{t.base}
	if t.token, err = wardToken(ctx, w); err != nil {
		t.close()
		return nil, err
	}
	if strings.HasSuffix(name, "-x3") {
		if err := t.startReplicas(ctx, w, dir, 2); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

// startReplicas starts n more `ward serve` on w's database, each with a
// data directory of its own and w's secrets key, as a deployment of
// replicas behind a load balancer runs them.
func (t *target) startReplicas(ctx context.Context, w *wardServer, dir string, n int) error {
	key, err := os.ReadFile(filepath.Join(w.dataDir, "secrets.key"))
	if err != nil {
		return fmt.Errorf("replicas need the first one's secrets key: %w", err)
	}
	for i := range n {
		// One public URL, the token issuer, as behind a load balancer.
		r := &wardServer{bin: w.bin, dsn: w.dsn, publicURL: "http://" + w.addr, dataDir: filepath.Join(dir, fmt.Sprintf("data-%d", i+2)),
			logDir: filepath.Join(dir, fmt.Sprintf("replica-%d", i+2)),
			env:    append(slices.Clip(w.env), "WARD_SECRETS_KEY="+strings.TrimSpace(string(key)))}
		if err := os.MkdirAll(r.logDir, 0o700); err != nil {
			return err
		}
		if r.addr, err = freeAddr(); err != nil {
			return err
		}
		if r.debugAddr, err = freeAddr(); err != nil {
			return err
		}
		p, err := r.launch(ctx)
		if err != nil {
			return fmt.Errorf("replica %d: %w", i+2, err)
		}
		t.replicas = append(t.replicas, p)
		t.bases = append(t.bases, "http://"+r.addr+"/fhir")
		t.debugAddrs = append(t.debugAddrs, r.debugAddr)
	}
	return nil
}

// wardToken gets an access token with the admin M2M client's credentials
// (client_credentials grant), as any client of Ward would.
func wardToken(ctx context.Context, w *wardServer) (string, error) {
	b, err := os.ReadFile(filepath.Join(w.dataDir, "admin-credentials.json"))
	if err != nil {
		return "", fmt.Errorf("admin credentials: %w", err)
	}
	var c struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("admin credentials: %w", err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.addr+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("token: status %d: %v", res.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// freshPostgres creates an empty database for one run and returns its URL
// (with the extra query parameters params, e.g. session settings) and a
// function that drops it.
func freshPostgres(ctx context.Context, admin, params string) (string, func(), error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	name := fmt.Sprintf("fhirload_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create database on %s: %w", redact(admin), err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		db.Close()
		return "", nil, fmt.Errorf("postgres URL: %w", err)
	}
	u.Path = "/" + name
	extra, err := url.ParseQuery(params)
	if err != nil {
		db.Close()
		return "", nil, fmt.Errorf("postgres parameters %q: %w", params, err)
	}
	q := u.Query()
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	drop := func() {
		// A fresh context: the run's may be cancelled by then.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "fhirload: drop database %s: %v\n", name, err)
		}
		db.Close()
	}
	return u.String(), drop, nil
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// startBare runs this program's `bare` mode as a separate process, so the
// ceiling is a server process on its own, like the others.
func startBare(ctx context.Context) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fhirload-bare-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	logPath := filepath.Join(dir, "bare.log")
	p, err := startProc(self, []string{"bare", "-addr", addr}, logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t := &target{name: "bare", kind: "bare", base: "http://" + addr + "/fhir", proc: p, cleanup: func() { os.RemoveAll(dir) }}
	if err := waitHTTP(ctx, t.base+"/metadata", p, logPath); err != nil {
		t.close()
		return nil, fmt.Errorf("bare: %w", err)
	}
	return t, nil
}

// barePatient is the fixed answer of the bare server: a realistic Patient
// of about 1 KB, like the ones the data set loads.
var barePatient = []byte(`{"resourceType":"Patient","id":"01a20368-fad3-7de4-8e92-fab06798220f",` +
	`"meta":{"versionId":"1","lastUpdated":"2026-11-22T13:19:01.360Z"},` +
	`"identifier":[{"use":"usual","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR",` +
	`"display":"Medical record number"}],"text":"Medical record number"},"system":"urn:oid:2.16.840.1.113883.19.5","value":"MRN1000042"}],` +
	`"active":true,"name":[{"use":"official","family":"Okafor","given":["Amelia","Theo"]}],` +
	`"telecom":[{"system":"phone","value":"555-201-7731","use":"home"},{"system":"email","value":"patient42@example.org"}],` +
	`"gender":"female","birthDate":"1961-04-17",` +
	`"address":[{"use":"home","line":["4821 Lakeview Blvd"],"city":"Springfield","state":"MA","postalCode":"01103","country":"US"}],` +
	`"maritalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus","code":"M","display":"Married"}],"text":"Married"},` +
	`"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en-US","display":"English (United States)"}],"text":"English"},"preferred":true}],` +
	`"generalPractitioner":[{"reference":"Practitioner/01a20368-fad3-7de4-8e92-000000000001","display":"Dr. Priya Patel"}]}`)

// serveBare is the `bare` mode: a plain net/http server that answers every
// request with barePatient (it reads and drops request bodies).
func serveBare(args []string) error {
	addr := "127.0.0.1:0"
	if len(args) == 2 && args[0] == "-addr" {
		addr = args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Println("bare net/http listening on", ln.Addr())
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("Content-Length", strconv.Itoa(len(barePatient)))
		_, _ = w.Write(barePatient)
	})}
	return srv.Serve(ln)
}

// startMedplum runs bench/medplum/server.mjs under node.
func startMedplum(ctx context.Context, node, dir string) (*target, error) {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@medplum", "fhir-router")); err != nil {
		return nil, fmt.Errorf("medplum: run `npm ci` in %s first: %w", dir, err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	tmp, err := os.MkdirTemp("", "fhirload-medplum-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	var args []string
	if major, err := nodeMajor(ctx, node); err == nil && major < 22 {
		// @medplum/core 5 uses the WebSocket global, built into Node 22;
		// Node 20 has it behind this flag.
		args = append(args, "--experimental-websocket")
	}
	args = append(args, filepath.Join(dir, "server.mjs"), port)
	logPath := filepath.Join(tmp, "medplum.log")
	p, err := startProc(node, args, logPath)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	t := &target{name: "medplum", kind: "medplum", base: "http://" + addr + "/fhir", proc: p, cleanup: func() { os.RemoveAll(tmp) }}
	if err := waitHTTP(ctx, t.base+"/Patient?_count=1", p, logPath); err != nil {
		t.close()
		return nil, fmt.Errorf("medplum: %w", err)
	}
	return t, nil
}

func nodeMajor(ctx context.Context, node string) (int, error) {
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("node --version: %w", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("node version %q: %w", v, err)
	}
	return n, nil
}

// cacheCounts sums the resource cache's hits and misses over a ward
// target's replicas (zero where /metrics has none).
func cacheCounts(ctx context.Context, t *target) (hits, misses int64) {
	if t.ward == nil {
		return 0, 0
	}
	for _, addr := range append([]string{t.ward.debugAddr}, t.debugAddrs...) {
		if addr == "" {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
		if err != nil {
			continue
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			var n int64
			if _, err := fmt.Sscanf(line, "ward_resource_cache_hits_total %d", &n); err == nil {
				hits += n
			} else if _, err := fmt.Sscanf(line, "ward_resource_cache_misses_total %d", &n); err == nil {
				misses += n
			}
		}
	}
	return hits, misses
}
