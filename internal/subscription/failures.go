package subscription

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts delivery attempts by outcome, for /metrics.
type Stats struct {
	Delivered atomic.Int64 // attempts the endpoint accepted
	Failed    atomic.Int64 // attempts that failed (to be retried, or the last)
	GaveUp    atomic.Int64 // deliveries failed for good (the subscription went to error)
	Skipped   atomic.Int64 // deliveries skipped (subscription deleted, off, ended...)
}

// WritePrometheus writes the counters in the Prometheus text format.
func (st *Stats) WritePrometheus(w io.Writer) error {
	_, err := fmt.Fprintf(w, `# HELP ward_subscription_attempts_total Subscription delivery attempts by outcome.
# TYPE ward_subscription_attempts_total counter
ward_subscription_attempts_total{outcome="delivered"} %d
ward_subscription_attempts_total{outcome="failed"} %d
ward_subscription_attempts_total{outcome="skipped"} %d
# HELP ward_subscription_deliveries_failed_total Deliveries that failed every attempt (their subscription set to error).
# TYPE ward_subscription_deliveries_failed_total counter
ward_subscription_deliveries_failed_total %d
`, st.Delivered.Load(), st.Failed.Load(), st.Skipped.Load(), st.GaveUp.Load())
	return err
}

// failureLog logs failed deliveries at most once per subscription per
// period, with the number of failures not logged since: an endpoint that
// is down for an hour under a stream of events is a line a minute, not a
// line an event.
type failureLog struct {
	period time.Duration
	mu     sync.Mutex
	subs   map[string]*failures // project/subscription id
}

type failures struct {
	logged     time.Time // when the last line was written
	suppressed int       // failures since, not logged
}

// maxTracked bounds the map: past it, subscriptions whose last line is a
// period old are forgotten (their next failure logs at once).
const maxTracked = 10_000

// failed logs (or counts) one failed attempt of the subscription.
func (f *failureLog) failed(ctx context.Context, log *slog.Logger, now time.Time, projectID, subID string, attempt, status int, err string) {
	key := projectID + "/" + subID
	f.mu.Lock()
	e := f.subs[key]
	if e != nil && now.Sub(e.logged) < f.period {
		e.suppressed++
		f.mu.Unlock()
		return
	}
	suppressed := 0
	if e != nil {
		suppressed = e.suppressed
	}
	if f.subs == nil {
		f.subs = map[string]*failures{}
	}
	if len(f.subs) >= maxTracked {
		for k, old := range f.subs {
			if now.Sub(old.logged) >= f.period {
				delete(f.subs, k)
			}
		}
	}
	f.subs[key] = &failures{logged: now}
	f.mu.Unlock()
	log.WarnContext(ctx, "subscription: delivery failed", "project", projectID, "subscription", subID,
		"attempt", attempt, "status", status, "err", redactURLs(err), "suppressed", suppressed, "per", f.period.String())
}

var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"]+`)

// redactURLs cuts the user information, query and fragment out of the
// URLs in s: an endpoint's query often carries a token, which the
// operator's log must not.
func redactURLs(s string) string {
	return urlPattern.ReplaceAllStringFunc(s, func(match string) string {
		// "POST <url>: error": the punctuation ending a sentence is not the URL's.
		raw := strings.TrimRight(match, ":,.;)")
		tail := match[len(raw):]
		u, err := url.Parse(raw)
		if err != nil {
			return "<url>" + tail
		}
		u.User, u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = nil, "", "", "", false
		if strings.Contains(raw, "?") {
			return u.String() + "?<redacted>" + tail
		}
		return u.String() + tail
	})
}
