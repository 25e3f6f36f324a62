// Command load measures Ward over HTTP on loopback, the way clients use it:
// a real `ward serve` process (SQLite or PostgreSQL), a generated data set,
// and N concurrent keep-alive clients per scenario, every request carrying
// a bearer token. A bare net/http server (and optionally another FHIR
// server, such as Medplum's router in bench/medplum) runs the same load in
// the same run, so results read as ratios.
//
//	go run ./load -db sqlite -clients 32 -duration 10s
//	go run ./load -only bare,read -db postgres
//	go run ./load -suite z3        # 100 MiB upload/download, 4 KiB objects
//	go run ./load -suite zambda    # cold and warm invocations
//	go run ./load -suite subscription
//	go run ./load -suite authorizer  # SMART authorizer function overhead
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	db, only, suite, peer, wardBin string
	serveFlags                     string
	keep                           bool
	clients, patients              int
	duration, warmup               time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.db, "db", "sqlite", "sqlite or postgres (a fresh database on 127.0.0.1:5432)")
	flag.StringVar(&o.suite, "suite", "fhir", "fhir, z3, zambda, subscription or authorizer")
	flag.StringVar(&o.only, "only", "", "comma-separated scenarios to run (default: all of the suite)")
	flag.StringVar(&o.peer, "peer", "", "base URL of a peer FHIR server loaded with the same data (e.g. bench/medplum on :8103/fhir)")
	flag.StringVar(&o.wardBin, "ward", "", "ward binary (default: build ../cmd/ward)")
	flag.StringVar(&o.serveFlags, "serve-flags", "", "extra `ward serve` flags, space-separated (e.g. --zambda-sandbox=off)")
	flag.BoolVar(&o.keep, "keep", false, "keep the server's data directory (printed) for inspection")
	flag.IntVar(&o.clients, "clients", 32, "concurrent clients")
	flag.IntVar(&o.patients, "patients", 1000, "patients in the data set")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each scenario")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.wardBin == "" {
		dir, err := os.MkdirTemp("", "ward-load")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.wardBin = filepath.Join(dir, "ward")
		build := exec.Command("go", "build", "-o", o.wardBin, "./cmd/ward")
		build.Dir = ".."
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build ward: %w", err)
		}
	}
	w, err := startWard(ctx, o)
	if err != nil {
		return err
	}
	defer w.stop()
	fmt.Printf("# %s, %s, %d clients, %s per scenario, %s\n", o.suite, o.db, o.clients, o.duration, machine())
	switch o.suite {
	case "fhir":
		return fhirSuite(ctx, o, w)
	case "z3":
		return z3Suite(ctx, o, w)
	case "zambda":
		return zambdaSuite(ctx, o, w)
	case "subscription":
		return subscriptionSuite(ctx, o, w)
	case "authorizer":
		return authorizerSuite(ctx, o, w)
	}
	return fmt.Errorf("unknown suite %q", o.suite)
}

func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("%d CPUs %s, load %s", numCPU(), model, strings.Join(strings.Fields(string(load))[:3], " "))
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// ward is a running server.
type ward struct {
	url, token, project string
	cmd                 *exec.Cmd
	dir                 string
	keep                bool
	database            string // a database made for this run, dropped by stop
}

func freePort() string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	return ln.Addr().String()
}

func startWard(ctx context.Context, o options) (*ward, error) {
	dir, err := os.MkdirTemp("", "ward-load-data")
	if err != nil {
		return nil, err
	}
	addr := freePort()
	// The subscription suite's receivers are on loopback, which the egress
	// policy refuses unless opened.
	// Load comes from one principal: no per-principal rate limit.
	args := []string{"serve", "--addr", addr, "--data-dir", dir, "--egress-allow", "127.0.0.1/32", "--rate-limit", "0"}
	args = append(args, strings.Fields(o.serveFlags)...)
	if d := os.Getenv("WARD_DEBUG_ADDR"); d != "" {
		args = append(args, "--debug-addr", d)
	}
	var database string
	if o.db == "postgres" {
		dsn, name, err := freshPostgres(ctx)
		if err != nil {
			return nil, err
		}
		args = append(args, "--database", dsn)
		database = name
	}
	cmd := exec.Command(o.wardBin, args...)
	logf, _ := os.Create(filepath.Join(dir, "ward.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &ward{url: "http://" + addr, cmd: cmd, dir: dir, keep: o.keep, database: database}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(w.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			w.stop()
			return nil, fmt.Errorf("ward did not start (log in %s)", dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var creds struct{ ProjectID, ClientID, ClientSecret string }
	b, err := os.ReadFile(filepath.Join(dir, "admin-credentials.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		return nil, err
	}
	w.project = creds.ProjectID
	body := fmt.Sprintf(`{"grant_type":"client_credentials","client_id":%q,"client_secret":%q}`, creds.ClientID, creds.ClientSecret)
	res, err := http.Post(w.url+"/oauth/token", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil {
		return nil, err
	}
	w.token = tok.AccessToken
	return w, nil
}

func (w *ward) stop() {
	if w.cmd.Process != nil {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
	}
	if w.keep {
		fmt.Println("data kept in", w.dir, w.database)
		return
	}
	os.RemoveAll(w.dir)
	if w.database != "" {
		if out, err := exec.Command("psql", "-h", "127.0.0.1", "-U", "postgres", "-c", "DROP DATABASE IF EXISTS "+w.database+" WITH (FORCE)").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "drop database %s: %v: %s\n", w.database, err, out)
		}
	}
}

func (w *ward) pid() int { return w.cmd.Process.Pid }

// freshPostgres makes a new database on the local server: its URL and name.
func freshPostgres(ctx context.Context) (string, string, error) {
	name := fmt.Sprintf("ward_load_%d", time.Now().UnixNano())
	out, err := exec.CommandContext(ctx, "psql", "-h", "127.0.0.1", "-U", "postgres", "-c", "CREATE DATABASE "+name).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("create database: %v: %s", err, out)
	}
	return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable", name, nil
}

// request is one call of a scenario, made by client c.
type request func(ctx context.Context, c *http.Client) (int, error)

// stats of one scenario.
type stats struct {
	name               string
	n, errors          int
	rate               float64
	p50, p90, p99, max time.Duration
	firstErr           string
}

func (s stats) row(ratioTo *stats) string {
	ratio := ""
	if ratioTo != nil && ratioTo.rate > 0 {
		ratio = fmt.Sprintf("%.2f", s.rate/ratioTo.rate)
	}
	return fmt.Sprintf("| %s | %.0f | %s | %s | %s | %s | %d | %s |", s.name, s.rate, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), s.errors, ratio)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

const header = "| scenario | req/s | p50 | p90 | p99 | max | errors | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|"

func newClient(clients int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2, MaxConnsPerHost: clients * 2,
		IdleConnTimeout: time.Minute, DisableCompression: true}}
}

// measure runs fn from clients goroutines for warmup+duration and reports
// the measured part.
func measure(ctx context.Context, name string, clients int, warmup, duration time.Duration, fn request) stats {
	client := newClient(clients)
	defer client.CloseIdleConnections()
	var measuring atomic.Bool
	stop := time.Now().Add(warmup + duration)
	lat := make([][]time.Duration, clients)
	errs := make([]int, clients)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(stop) {
				t0 := time.Now()
				code, err := fn(ctx, client)
				d := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				if err != nil || code < 200 || code > 299 {
					errs[i]++
					if firstErr.Load() == nil {
						firstErr.Store(fmt.Sprintf("status %d: %v", code, err))
					}
					continue
				}
				lat[i] = append(lat[i], d)
			}
		}(i)
	}
	time.Sleep(warmup)
	measuring.Store(true)
	t0 := time.Now()
	wg.Wait()
	elapsed := time.Since(t0)
	var all []time.Duration
	s := stats{name: name}
	for i := range lat {
		all = append(all, lat[i]...)
		s.errors += errs[i]
	}
	if v := firstErr.Load(); v != nil {
		s.firstErr = v.(string)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	s.n = len(all)
	s.rate = float64(len(all)) / elapsed.Seconds()
	if len(all) > 0 {
		pct := func(p float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*p))] }
		s.p50, s.p90, s.p99, s.max = pct(0.50), pct(0.90), pct(0.99), all[len(all)-1]
	}
	return s
}

// do sends one request and drains the answer.
func do(ctx context.Context, c *http.Client, method, url, token string, body []byte, ctype string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, b, err
}

func pick[T any](xs []T) T { return xs[rand.IntN(len(xs))] }

func selected(o options, name string) bool {
	if o.only == "" {
		return true
	}
	for _, s := range strings.Split(o.only, ",") {
		if s == name {
			return true
		}
	}
	return false
}
