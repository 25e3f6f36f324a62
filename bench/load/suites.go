package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/wardhealth/ward/bench/internal/proccpu"
)

// api calls the Project API and decodes the answer into out.
func (w *ward) api(ctx context.Context, method, path, body string, out any) error {
	code, b, err := do(ctx, http.DefaultClient, method, w.url+"/v1"+path, w.token, []byte(body), "application/json")
	if err != nil {
		return err
	}
	if code > 299 {
		return fmt.Errorf("%s %s: %d %.200s", method, path, code, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (w *ward) presign(ctx context.Context, bucket, path, action string) (string, error) {
	var out struct {
		SignedURL string `json:"signedUrl"`
	}
	err := w.api(ctx, "POST", "/z3/"+bucket+"/"+path, `{"action":"`+action+`"}`, &out)
	return out.SignedURL, err
}

// zeros is an n-byte stream that is never held in memory.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

func z3Suite(ctx context.Context, o options, w *ward) error {
	if err := w.api(ctx, "PUT", "/z3/bench", "", nil); err != nil {
		return err
	}
	const big = 100 << 20
	// The floor: cp of the same amount on the same disk (and cp + sync,
	// since Ward fsyncs every object).
	src := filepath.Join(w.dir, "cp-src")
	f, _ := os.Create(src)
	io.Copy(f, &zeros{n: big})
	f.Sync()
	f.Close()
	t0 := time.Now()
	if out, err := exec.Command("cp", src, src+".copy").CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v %s", err, out)
	}
	cpTime := time.Since(t0)
	t0 = time.Now()
	exec.Command("cp", src, src+".copy2").Run()
	exec.Command("sync", src+".copy2").Run()
	cpSyncTime := time.Since(t0)
	os.Remove(src + ".copy")
	os.Remove(src + ".copy2")

	up, err := w.presign(ctx, "bench", "big.bin", "upload")
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, "PUT", up, &zeros{n: big})
	req.ContentLength = big
	t0 = time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		return fmt.Errorf("upload: %v %v", res, err)
	}
	res.Body.Close()
	upTime := time.Since(t0)
	down, _ := w.presign(ctx, "bench", "big.bin", "download")
	t0 = time.Now()
	res, err = http.Get(down)
	if err != nil {
		return err
	}
	n, _ := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	downTime := time.Since(t0)
	if n != big {
		return fmt.Errorf("download: %d bytes", n)
	}
	mbps := func(d time.Duration) float64 { return float64(big) / (1 << 20) / d.Seconds() }
	fmt.Printf("| 100 MiB | time | MiB/s | ratio to cp |\n|---|---:|---:|---:|\n")
	fmt.Printf("| cp | %s | %.0f | 1.00 |\n| cp + sync | %s | %.0f | %.2f |\n", cpTime.Round(time.Millisecond), mbps(cpTime),
		cpSyncTime.Round(time.Millisecond), mbps(cpSyncTime), cpTime.Seconds()/cpSyncTime.Seconds())
	fmt.Printf("| Ward upload (PUT, fsync) | %s | %.0f | %.2f |\n", upTime.Round(time.Millisecond), mbps(upTime), cpTime.Seconds()/upTime.Seconds())
	fmt.Printf("| Ward download (GET) | %s | %.0f | %.2f |\n\n", downTime.Round(time.Millisecond), mbps(downTime), cpTime.Seconds()/downTime.Seconds())

	// 4 KiB objects: URLs signed beforehand, so the PUTs and GETs are
	// measured alone (each PUT is a durable write).
	const keys = 2000
	ups, downs := make([]string, keys), make([]string, keys)
	for i := range ups {
		if ups[i], err = w.presign(ctx, "bench", fmt.Sprintf("small/%d.bin", i), "upload"); err != nil {
			return err
		}
		downs[i], _ = w.presign(ctx, "bench", fmt.Sprintf("small/%d.bin", i), "download")
	}
	payload := bytes.Repeat([]byte("x"), 4096)
	var next atomic.Int64
	fmt.Println(header)
	put := measure(ctx, "4 KiB PUT", o.clients, o.warmup, o.duration, func(ctx context.Context, c *http.Client) (int, error) {
		code, _, err := do(ctx, c, "PUT", ups[next.Add(1)%keys], "", payload, "application/octet-stream")
		return code, err
	})
	fmt.Println(put.row(nil))
	get := measure(ctx, "4 KiB GET", o.clients, o.warmup, o.duration, func(ctx context.Context, c *http.Client) (int, error) {
		code, _, err := do(ctx, c, "GET", downs[next.Add(1)%keys], "", nil, "")
		return code, err
	})
	fmt.Println(get.row(nil))
	return nil
}

// zipOf zips files (name -> contents) with mode 0755 for "bootstrap".
func zipOf(files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o644)
		if name == "bootstrap" {
			h.SetMode(0o755)
		}
		fw, _ := zw.CreateHeader(h)
		fw.Write(data)
	}
	zw.Close()
	return buf.Bytes()
}

func (w *ward) deploy(ctx context.Context, name, runtime string, code []byte) (string, error) {
	var z struct{ ID string }
	if err := w.api(ctx, "POST", "/zambda", fmt.Sprintf(`{"name":%q,"runtime":%q}`, name, runtime), &z); err != nil {
		return "", err
	}
	var up struct {
		SignedURL string `json:"signedUrl"`
	}
	if err := w.api(ctx, "POST", "/zambda/"+z.ID+"/s3-upload", `{}`, &up); err != nil {
		return "", err
	}
	code2, b, err := do(ctx, http.DefaultClient, "PUT", up.SignedURL, "", code, "application/zip")
	if err != nil || code2 != 200 {
		return "", fmt.Errorf("upload: %d %v %s", code2, err, b)
	}
	return z.ID, nil
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
}

func zambdaSuite(ctx context.Context, o options, w *ward) error {
	node := zipOf(map[string][]byte{"index.js": []byte(`exports.index = async (e) => ({ statusCode: 200, body: '{"ok":true}' });`)})
	bin := filepath.Join(w.dir, "bootstrap")
	build := exec.Command("go", "build", "-o", bin, "./internal/zambda/runtime/testdata/golambda")
	build.Dir, build.Env = "..", append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build go lambda: %v %s", err, out)
	}
	goBin, _ := os.ReadFile(bin)
	goZip := zipOf(map[string][]byte{"bootstrap": goBin})
	// Floors: a bare process start, with the environment a worker gets.
	floor := func(argv ...string) time.Duration {
		var ds []time.Duration
		for i := 0; i < 20; i++ {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
			t0 := time.Now()
			cmd.Run()
			ds = append(ds, time.Since(t0))
		}
		p50, _ := percentiles(ds)
		return p50
	}
	nodeFloor := floor("node", "-e", "0")
	goFloor := floor("/bin/true")
	fmt.Printf("floors (p50 of 20): `node -e 0` with a minimal environment %s; a static binary (/bin/true) %s\n\n", ms(nodeFloor), ms(goFloor))
	if res, err := http.Get(w.url + "/healthz"); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("server: %s\n", strings.TrimSpace(string(b)))
	}
	// The floor of an authenticated call: a no-op endpoint (token check,
	// policy, JSON), one caller.
	me := measure(ctx, "m2m-me", 1, o.warmup/2, o.duration/2, func(ctx context.Context, c *http.Client) (int, error) {
		code, _, err := do(ctx, c, "GET", w.url+"/v1/m2m/me", w.token, nil, "")
		return code, err
	})
	fmt.Printf("GET /v1/m2m/me, one caller: p50 %s, p99 %s\n\n", ms(me.p50), ms(me.p99))
	fmt.Println("| runtime | cold p50 | cold p99 | warm p50 | warm p99 | warm p50 over /m2m/me | warm req/s (" + fmt.Sprint(o.clients) + " callers) |\n|---|---:|---:|---:|---:|---:|---:|")
	for _, rt := range []struct {
		name, runtime string
		zip           []byte
	}{{"node", "nodejs20.x", node}, {"go", "provided.al2023", goZip}} {
		var cold []time.Duration
		for i := 0; i < 20; i++ {
			id, err := w.deploy(ctx, fmt.Sprintf("cold-%s-%d", rt.name, i), rt.runtime, rt.zip)
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := w.api(ctx, "POST", "/zambda/"+id+"/execute", `{}`, nil); err != nil {
				return err
			}
			cold = append(cold, time.Since(t0))
		}
		c50, c99 := percentiles(cold)
		id, err := w.deploy(ctx, "warm-"+rt.name, rt.runtime, rt.zip)
		if err != nil {
			return err
		}
		url := w.url + "/v1/zambda/" + id + "/execute"
		s := measure(ctx, rt.name, o.clients, o.warmup, o.duration, func(ctx context.Context, c *http.Client) (int, error) {
			code, _, err := do(ctx, c, "POST", url, w.token, []byte(`{}`), "application/json")
			return code, err
		})
		one := measure(ctx, rt.name, 1, o.warmup/2, o.duration/2, func(ctx context.Context, c *http.Client) (int, error) {
			code, _, err := do(ctx, c, "POST", url, w.token, []byte(`{}`), "application/json")
			return code, err
		})
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %.0f |\n", rt.name, ms(c50), ms(c99), ms(one.p50), ms(one.p99), ms(one.p50-me.p50), s.rate)
		if s.firstErr != "" {
			fmt.Println("  first error:", s.firstErr)
		}
	}
	fmt.Println("\nwarm p50/p99: one caller at a time (the whole round trip: HTTP, token check, policy, event, worker, answer)")
	return nil
}

// receiver records when each resource id arrives.
type receiver struct {
	mu  sync.Mutex
	at  map[string]time.Time
	n   atomic.Int64
	srv *http.Server
	url string
}

func newReceiver() *receiver {
	rc := &receiver{at: map[string]time.Time{}}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	rc.url = "http://" + ln.Addr().String()
	rc.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var res struct{ ID string }
		json.NewDecoder(r.Body).Decode(&res)
		rc.mu.Lock()
		if _, ok := rc.at[res.ID]; !ok {
			rc.at[res.ID] = now
		}
		rc.mu.Unlock()
		rc.n.Add(1)
	})}
	go rc.srv.Serve(ln)
	return rc
}

func subscriptionSuite(ctx context.Context, o options, w *ward) error {
	base := w.url + "/fhir"
	client := newClient(o.clients)
	sub := func(family, endpoint string) error {
		b, _ := json.Marshal(map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "bench",
			"criteria": "Patient?family=" + family, "channel": map[string]any{"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"}})
		code, body, err := do(ctx, client, "POST", base+"/Subscription", w.token, b, "application/fhir+json")
		if err != nil || code != 201 {
			return fmt.Errorf("subscription: %d %v %s", code, err, body)
		}
		return nil
	}
	create := func(family string) (string, time.Time, error) {
		b, _ := json.Marshal(map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": family}}})
		code, body, err := do(ctx, client, "POST", base+"/Patient", w.token, b, "application/fhir+json")
		done := time.Now()
		if err != nil || code != 201 {
			return "", done, fmt.Errorf("create: %d %v", code, err)
		}
		var res struct{ ID string }
		json.Unmarshal(body, &res)
		return res.ID, done, nil
	}
	// Latency: one subscription, one write at a time.
	rc := newReceiver()
	defer rc.srv.Close()
	if err := sub("Latency", rc.url); err != nil {
		return err
	}
	var lat []time.Duration
	for i := 0; i < 200; i++ {
		id, acked, err := create("Latency")
		if err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			rc.mu.Lock()
			got, ok := rc.at[id]
			rc.mu.Unlock()
			if ok {
				lat = append(lat, got.Sub(acked))
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("delivery of %s did not arrive", id)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	p50, p99 := percentiles(lat)
	fmt.Printf("latency from the write's 201 to receipt (200 writes, one at a time): p50 %s, p99 %s\n", ms(p50), ms(p99))

	// Throughput: 100 subscriptions on the same criteria, writes from
	// o.clients clients; every write fans out to 100 deliveries.
	rc2 := newReceiver()
	defer rc2.srv.Close()
	for i := 0; i < 100; i++ {
		if err := sub("Fanout", rc2.url+fmt.Sprintf("/s%d", i)); err != nil {
			return err
		}
	}
	const writes = 200
	t0, cpu0 := time.Now(), w.cpu()
	var wg sync.WaitGroup
	var next, failed atomic.Int64
	for c := 0; c < min(o.clients, 8); c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= writes {
				if _, _, err := create("Fanout"); err != nil {
					failed.Add(1) // e.g. a 503 when the shared PostgreSQL is out of connections: no event, no deliveries
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		fmt.Printf("%d of %d writes failed: %d deliveries expected\n", n, writes, (writes-n)*100)
	}
	want := (writes - failed.Load()) * 100
	deadline := time.Now().Add(5 * time.Minute)
	for rc2.n.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(t0)
	wardCPU, pgCPU := w.cpu().since(cpu0)
	n := float64(max(rc2.n.Load(), 1))
	fmt.Printf("100 subscriptions x %d writes = %d deliveries received in %s: %.0f deliveries/s\n", writes, rc2.n.Load(), el.Round(time.Millisecond),
		float64(rc2.n.Load())/el.Seconds())
	// The writes are part of it: 200 creates against 20,000 deliveries.
	fmt.Printf("CPU per delivery (writes included): ward %.0f µs, PostgreSQL backends %.0f µs; load average %s\n",
		wardCPU/n*1e6, pgCPU/n*1e6, proccpu.LoadAvg())
	return nil
}
