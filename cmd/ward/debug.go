package main

import (
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/wardhealth/ward/internal/admit"
	"github.com/wardhealth/ward/internal/ratelimit"
	"github.com/wardhealth/ward/internal/smart/authorizer"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/subscription"
)

// debugServer serves pprof and metrics on their own listener, never on
// the API's.
func debugServer(authz *authorizer.Authorizer, st *store.Store, reads func() admit.Stats, subs *subscription.Stats, limits *ratelimit.Limiter) *http.Server {
	mux := http.NewServeMux()
	// Counters in the Prometheus text format: the authorizer function's
	// decisions, calls and time in calls; on SQLite, the writer's
	// transactions, shared commits and time in commit and fsync; FHIR
	// reads waiting for a turn (--read-concurrency); subscription delivery
	// attempts by outcome; requests refused over a rate limit; on
	// PostgreSQL, the resource cache's hits and misses.
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_ = authz.Stats().WritePrometheus(w)
		if st.Dialect() == store.SQLite {
			_ = st.GroupStats().WritePrometheus(w)
		} else {
			_ = st.ResourceCacheStats().WritePrometheus(w)
		}
		_ = reads().WritePrometheus(w, "ward_fhir_reads")
		_ = subs.WritePrometheus(w)
		_ = limits.WritePrometheus(w)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}
