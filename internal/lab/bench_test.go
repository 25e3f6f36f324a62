package lab

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/hl7v2"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// The ingest benchmarks store one ORU^R01 per operation (1 OBR, 2 OBX: a
// DiagnosticReport and two Observations, on SQLite with fsync) and report
// msgs/s. Their peer, in the same run, is BenchmarkTransactionPeer: the
// same three resources as a plain FHIR transaction Bundle through Ward's
// FHIR handler, as an API client would write them.

// benchParallelism is senders per core: 16 on 2 cores is 32 senders
// (connections, for the MLLP benchmark), which is what lets SQLite's group
// commit share each fsync between many messages.
const benchParallelism = 16

func benchFixture(b *testing.B) (*fixture, Created, string) {
	f := newFixture(b, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	rt := f.route(f.admin, "127.0.0.1:1")
	return f, rt, f.order(f.admin)
}

func benchORU(rt Created, sr string, n int64) string {
	return "MSH|^~\\&|LAB|ACME|WARD|" + rt.RouteGUID + "|20261207101500|" + rt.ResultSecret + "|ORU^R01^ORU_R01|B" + fmt.Sprint(n) + "|P|2.5.1\r" +
		"PID|1||x^^^WARD||Doe^Jane\r" +
		"OBR|1|" + sr + "||GLU^Glucose^L|||20261207093000+0000||||||||||||||||||F\r" +
		"OBX|1|NM|2345-7^Glucose^LN||95.5|mg/dL|70-99|N|||F\r" +
		"OBX|2|ST|8251-1^Comment^LN||fasting||||||F\r"
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// cpuTime is the process's user and system time. On a shared machine the
// CPU the loop consumed (the writer, syncer and checkpointer included)
// says more than the wall clock, which counts the time others held the
// cores.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds messages per CPU-second of the whole process since mark.
func reportCPU(b *testing.B, mark time.Duration) {
	if used := cpuTime(b) - mark; used > 0 {
		b.ReportMetric(float64(b.N)/used.Seconds(), "msgs/cpu-s")
	}
}

// reportGroups reports how many messages shared an fsync (SQLite's group
// commit) and the mean fsync, from the writer's counters since mark.
func reportGroups(b *testing.B, f *fixture, mark store.GroupStats) {
	g := f.st.GroupStats()
	if groups := g.Groups - mark.Groups; groups > 0 {
		b.ReportMetric(float64(b.N)/float64(groups), "msgs/commit")
		b.ReportMetric((g.SyncSeconds-mark.SyncSeconds)/float64(groups)*1000, "ms/fsync")
	}
}

// BenchmarkIngest: Service.Ingest in process, 8 senders at once.
func BenchmarkIngest(b *testing.B) {
	f, rt, sr := benchFixture(b)
	var seq atomic.Int64
	b.SetParallelism(benchParallelism)
	mark := f.st.GroupStats()
	b.ResetTimer()
	cpu := cpuTime(b)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := f.svc.Ingest(context.Background(), []byte(benchORU(rt, sr, seq.Add(1)))); out.Code != AckAccept {
				b.Errorf("ingest: %s %s", out.Code, out.Text)
				return
			}
		}
	})
	reportRate(b, start)
	reportCPU(b, cpu)
	reportGroups(b, f, mark)
}

// BenchmarkIngestMLLP: the whole path over loopback TCP, 8 connections,
// each sending a message and waiting for its ACK (as senders do).
func BenchmarkIngestMLLP(b *testing.B) {
	f, rt, sr := benchFixture(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.svc.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	var seq atomic.Int64
	b.SetParallelism(benchParallelism)
	mark := f.st.GroupStats()
	b.ResetTimer()
	cpu := cpuTime(b)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for pb.Next() {
			if err := hl7v2.WriteFrame(c, []byte(benchORU(rt, sr, seq.Add(1)))); err != nil {
				b.Error(err)
				return
			}
			fr, err := hl7v2.ReadFrame(r, 1<<20)
			if err != nil || !strings.Contains(string(fr), "MSA|AA") {
				b.Errorf("ack %q %v", fr, err)
				return
			}
		}
	})
	reportRate(b, start)
	reportCPU(b, cpu)
	reportGroups(b, f, mark)
}

// BenchmarkTransactionPeer: the very resources Ingest writes for a
// message (built by the same code, before the timer starts), as one FHIR
// transaction Bundle of PUTs per message, 8 clients at once, through the
// FHIR handler as the project admin.
func BenchmarkTransactionPeer(b *testing.B) {
	f, rt, sr := benchFixture(b)
	h := fhir.NewHandler(f.fsvc, "http://ward.test/fhir", slog.New(slog.DiscardHandler))
	route, err := f.st.FindLabRoute(context.Background(), rt.RouteGUID)
	if err != nil {
		b.Fatal(err)
	}
	bundles := make([]string, b.N)
	for i := range bundles {
		ctrl := fmt.Sprint("P", i)
		m, err := hl7v2.Parse([]byte(benchORU(rt, sr, int64(i))))
		if err != nil {
			b.Fatal(err)
		}
		rps, _, err := f.svc.resultResources(context.Background(), route, m, ctrl, nil)
		if err != nil {
			b.Fatal(err)
		}
		puts, err := systemPuts(rps)
		if err != nil {
			b.Fatal(err)
		}
		var entries []string
		for _, p := range puts {
			entries = append(entries, `{"resource":`+string(p.Body)+`,"request":{"method":"PUT","url":"`+p.Type+"/"+p.ID+`"}}`)
		}
		bundles[i] = `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
	}
	var seq atomic.Int64
	b.SetParallelism(benchParallelism)
	mark := f.st.GroupStats()
	b.ResetTimer()
	cpu := cpuTime(b)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bundles[seq.Add(1)-1]
			req := httptest.NewRequest("POST", "http://ward.test/fhir", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/fhir+json")
			rec := httptest.NewRecorder()
			h.ServeFHIR(rec, req, f.admin)
			if rec.Code != 200 {
				b.Errorf("transaction: %d %s", rec.Code, rec.Body)
				return
			}
		}
	})
	reportRate(b, start)
	reportCPU(b, cpu)
	reportGroups(b, f, mark)
}
