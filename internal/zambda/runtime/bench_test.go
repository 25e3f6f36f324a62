package runtime

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const trivialNode = `exports.index = async () => ({ statusCode: 200, body: '{}' });`

// report adds p50 and p99 of ds (in ms) to the benchmark's output.
func report(b *testing.B, prefix string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[min(int(q*float64(len(ds))), len(ds)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
}

// benchWarm measures warm invocations: the round trip, and Ward's own part
// of it (the Invoke call minus the time between handing the event over and
// getting the answer).
func benchWarm(b *testing.B, fn Function) {
	p := newPool(b, Config{})
	if _, err := invoke(b, p, fn, `{}`); err != nil {
		b.Fatal(err)
	}
	var total, ward []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		res, err := invoke(b, p, fn, `{}`)
		if err != nil {
			b.Fatal(err)
		}
		if res.Cold {
			b.Fatal("cold")
		}
		d := time.Since(start)
		total = append(total, d)
		ward = append(ward, d-res.Duration)
	}
	report(b, "roundtrip-", total)
	report(b, "ward-", ward)
}

func BenchmarkNodeWarm(b *testing.B) {
	needNode(b)
	benchWarm(b, nodeFn(b, "bench-node", map[string]string{"index.js": trivialNode}))
}

func BenchmarkGoWarm(b *testing.B) {
	benchWarm(b, goFn(b, "bench-go"))
}

// BenchmarkColdStart starts a new worker per iteration (a fresh Key) and
// reports p50/p99 of the whole first invocation and of its init (spawn to
// the first /next). Run with -benchtime=20x or more. node-proxyenv has the
// proxy variables a sandbox sets (the bootstrap then routes HTTP through
// the proxy; nothing listens there, the function does not connect).
func BenchmarkColdStart(b *testing.B) {
	for _, rt := range []string{"node", "node-proxyenv", "go"} {
		b.Run(rt, func(b *testing.B) {
			var fn Function
			if rt != "go" {
				needNode(b)
				fn = nodeFn(b, "cold", map[string]string{"index.js": trivialNode})
				if rt == "node-proxyenv" {
					fn.Env = map[string]string{"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
						"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "localhost,127.0.0.1", "no_proxy": "localhost,127.0.0.1"}
				}
			} else {
				fn = goFn(b, "cold")
			}
			p := newPool(b, Config{})
			var total, init []time.Duration
			i := 0
			b.ResetTimer()
			for b.Loop() {
				i++
				fn.Key = fmt.Sprintf("cold-%s-%d", rt, i)
				start := time.Now()
				res, err := invoke(b, p, fn, `{}`)
				if err != nil {
					b.Fatal(err)
				}
				total = append(total, time.Since(start))
				init = append(init, res.InitDuration)
			}
			report(b, "", total)
			report(b, "init-", init)
		})
	}
}

// BenchmarkFloor is what starting the runtimes costs without Ward: node -e 0
// with the same minimal environment, and a static Go binary that exits.
func BenchmarkFloor(b *testing.B) {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC"}
	for _, tc := range []struct {
		name string
		argv func(b *testing.B) []string
	}{
		{"node-e0", func(b *testing.B) []string {
			needNode(b)
			node, _ := exec.LookPath("node")
			return []string{node, "-e", "0"}
		}},
		{"go-static", func(b *testing.B) []string { return []string{filepath.Join(goBuild(b), "noop", "bootstrap")} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			argv := tc.argv(b)
			var ds []time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Env = env
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			report(b, "", ds)
		})
	}
}
