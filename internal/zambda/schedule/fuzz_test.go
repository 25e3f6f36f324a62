package schedule

import (
	"testing"
	"time"
)

// FuzzParse: Parse never panics; what it accepts prints to a canonical
// form that parses to the same schedule; Next strictly increases and skips
// nothing (from any point between two fire times, the next is the later).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"cron(0 10 * * ? *)", "cron(0/5 8-17 ? * MON-FRI *)", "cron(0 0 LW * ? *)", "cron(0 0 15W * ? *)",
		"cron(0 9 ? * 2#1 *)", "cron(30 23 ? * 6L *)", "cron(0 22-2 ? * FRI-MON 2026-2030)", "cron(0 0 29 FEB ? *)",
		"rate(5 minutes)", "rate(1 day)", "at(2027-01-01T00:00:00)", "cron(*/7 */5 1-31/3 JAN-DEC/2 ? 1970/7)",
	} {
		f.Add(s, int64(0), uint16(0))
	}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	zones := []*time.Location{time.UTC, mustZone(f, "America/New_York"), mustZone(f, "Australia/Lord_Howe")}
	f.Fuzz(func(t *testing.T, expr string, offset int64, zone uint16) {
		s, err := Parse(expr)
		if err != nil {
			return
		}
		again, err := Parse(s.String())
		if err != nil || again.String() != s.String() {
			t.Fatalf("%q prints as %q, which parses to %q (%v)", expr, s.String(), again.String(), err)
		}
		loc := zones[int(zone)%len(zones)]
		s, again = s.In(loc), again.In(loc)
		// Anywhere from 1970 to 2200.
		from := base.Add(time.Duration(offset%(180*365*24*3600)) * time.Second)
		prev := from
		for range 5 {
			next := s.NextFrom(base, prev)
			if next.IsZero() {
				break
			}
			if !next.After(prev) {
				t.Fatalf("%s in %v: Next(%v) = %v, not after it", s, loc, prev, next)
			}
			if other := again.NextFrom(base, prev); !other.Equal(next) {
				t.Fatalf("%s and %s disagree after %v: %v, %v", expr, s, prev, next, other)
			}
			if mid := prev.Add(next.Sub(prev) / 2); !s.NextFrom(base, mid).Equal(next) {
				t.Fatalf("%s in %v: Next(%v) = %v, but Next(%v) = %v", s, loc, prev, next, mid, s.NextFrom(base, mid))
			}
			prev = next
		}
	})
}

func mustZone(f *testing.F, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		f.Fatal(err)
	}
	return loc
}
