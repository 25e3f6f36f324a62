package conversation

import (
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// BenchmarkFanout measures conversation.message to receipt by 10 live
// members: latency one message at a time (p50/p99 ms), and messages/s with
// 8 concurrent senders per core, against its peer in the same run: the
// same Communication written with no fan-out. On PostgreSQL the members
// listen on a second replica, so the figure includes NOTIFY.
//
//	go test -run XXX -bench Fanout -benchtime 2000x ./internal/conversation/
func BenchmarkFanout(b *testing.B) {
	const members = 10
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			r := newRig(b, be)
			sender, _ := r.replica(b, time.Now)
			recv := sender
			if r.st.Dialect() == store.Postgres {
				recv, _ = r.replica(b, time.Now)
			}
			doc := caller("p1", "Practitioner/m0")
			var who []string
			for i := range members {
				who = append(who, fmt.Sprintf("Practitioner/m%d", i))
			}
			conv := createConv(b, sender, doc, who...)
			addChat(b, sender, doc, conv, who...)
			var got atomic.Int64
			// tick wakes waitFor after receipts: no polling loop competes
			// with the senders for the CPU.
			tick := make(chan struct{}, 1)
			for i := range members {
				c := caller("p1", who[i])
				tok, _, err := recv.Token(b.Context(), c)
				if err != nil {
					b.Fatal(err)
				}
				sub, err := recv.Open(b.Context(), tok, conv)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for {
						select {
						case <-sub.Events():
							got.Add(1)
							select {
							case tick <- struct{}{}:
							default:
							}
						case <-sub.Done():
							return
						}
					}
				}()
				b.Cleanup(func() { recv.Close(sub) })
			}
			body := []byte(`{"message":"a message of a typical length, about sixty characters"}`)
			waitFor := func(n int64) {
				deadline := time.NewTimer(30 * time.Second)
				defer deadline.Stop()
				for got.Load() < n {
					select {
					case <-tick:
					case <-deadline.C:
						b.Fatalf("received %d of %d", got.Load(), n)
					}
				}
			}
			b.Run("latency", func(b *testing.B) {
				lat := make([]float64, 0, b.N)
				for b.Loop() {
					start, want := time.Now(), got.Load()+members
					if _, err := sender.Message(b.Context(), doc, conv, body); err != nil {
						b.Fatal(err)
					}
					waitFor(want)
					lat = append(lat, float64(time.Since(start).Microseconds())/1000)
				}
				slices.Sort(lat)
				b.ReportMetric(lat[len(lat)/2], "p50-ms")
				b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
			})
			var fanRate float64
			b.Run("throughput", func(b *testing.B) {
				cpu0 := cpuTime()
				start, want := time.Now(), got.Load()
				var sent atomic.Int64
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := sender.Message(b.Context(), doc, conv, body); err != nil {
							b.Error(err)
							return
						}
						sent.Add(1)
					}
				})
				// Committed (every call returned) vs received by every member.
				sendRate := float64(sent.Load()) / time.Since(start).Seconds()
				waitFor(want + sent.Load()*members)
				b.ReportMetric(sendRate, "committed-msgs/s")
				fanRate = float64(sent.Load()) / time.Since(start).Seconds()
				b.ReportMetric(fanRate, "msgs/s")
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(sent.Load()), "cpu-us/msg")
			})
			b.Run("peer-create-only", func(b *testing.B) {
				cpu0 := cpuTime()
				comm := []byte(`{"resourceType":"Communication","status":"completed","partOf":[{"reference":"Encounter/` + conv + `"}],"encounter":{"reference":"Encounter/` + conv + `"},"sender":{"reference":"Practitioner/m0"},"payload":[{"contentString":"a message of a typical length, about sixty characters"}]}`)
				start := time.Now()
				var n atomic.Int64
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := r.fhir.SystemCreate(b.Context(), "p1", comm); err != nil {
							b.Error(err)
							return
						}
						n.Add(1)
					}
				})
				rate := float64(n.Load()) / time.Since(start).Seconds()
				b.ReportMetric(rate, "creates/s")
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n.Load()), "cpu-us/op")
				if fanRate > 0 {
					b.ReportMetric(fanRate/rate, "fanout/peer")
				}
			})
		})
	}
}

// cpuTime is this process's CPU time so far (user and system): the
// figure a shared, noisy machine distorts least.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
