package activity

import "time"

// Report is the hour of one project as GET /v1/project/metrics answers it
// (and the console's dashboard reads it).
type Report struct {
	// Counted says whose figures these are: requests and invocations are
	// this replica's ("replica"); deliveries and the backlog are read from
	// the database, so every replica's.
	Counted string   `json:"counted"`
	Minutes []Figure `json:"minutes"` // oldest first, the current minute last
	Totals  Figure   `json:"totals"`  // Start: the hour's first minute
	// SubscriptionBacklog is the deliveries pending now.
	SubscriptionBacklog int64 `json:"subscriptionBacklog"`
}

// Figure is one minute's (or the hour's) counts.
type Figure struct {
	Start              time.Time `json:"start"`
	Requests           int64     `json:"requests"`
	ClientErrors       int64     `json:"clientErrors"`
	ServerErrors       int64     `json:"serverErrors"`
	P50Ms              float64   `json:"p50Ms"`
	P99Ms              float64   `json:"p99Ms"`
	Invocations        int64     `json:"invocations"`
	InvocationFailures int64     `json:"invocationFailures"`
	Deliveries         int64     `json:"deliveries"`
	DeliveryFailures   int64     `json:"deliveryFailures"`
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Report is the project's hour without deliveries (the caller adds them).
func (r *Recorder) Report(project string) Report {
	mins, sum := r.Hour(project)
	rep := Report{Counted: "replica", Minutes: make([]Figure, len(mins))}
	for i, m := range mins {
		rep.Minutes[i] = Figure{Start: m.Start, Requests: m.Requests, ClientErrors: m.ClientErrors, ServerErrors: m.ServerErrors,
			P50Ms: millis(m.P50), P99Ms: millis(m.P99), Invocations: m.Invocations, InvocationFailures: m.InvocationFailures}
	}
	rep.Totals = Figure{Start: mins[0].Start, Requests: sum.Requests, ClientErrors: sum.ClientErrors, ServerErrors: sum.ServerErrors,
		P50Ms: millis(sum.P50), P99Ms: millis(sum.P99), Invocations: sum.Invocations, InvocationFailures: sum.InvocationFailures}
	return rep
}

// AddDeliveries adds one minute's delivery attempts to the report (a
// minute outside the hour is ignored).
func (rep *Report) AddDeliveries(start time.Time, attempts, failed int64) {
	for i := range rep.Minutes {
		if rep.Minutes[i].Start.Equal(start) {
			rep.Minutes[i].Deliveries += attempts
			rep.Minutes[i].DeliveryFailures += failed
			rep.Totals.Deliveries += attempts
			rep.Totals.DeliveryFailures += failed
			return
		}
	}
}
