package schedule

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		expr, from string
		want       []string
	}{
		{"cron(0 10 * * ? *)", "2026-11-22 10:00", []string{"2026-11-23 10:00", "2026-11-24 10:00"}},
		{"cron(15 12 * * ? *)", "2026-11-22 12:14", []string{"2026-11-22 12:15", "2026-11-23 12:15"}},
		{"cron(0 18 ? * MON-FRI *)", "2026-11-20 18:00", []string{"2026-11-23 18:00", "2026-11-24 18:00"}}, // Fri -> Mon
		{"cron(0 8 1 * ? *)", "2026-11-22 00:00", []string{"2026-12-01 08:00", "2027-01-01 08:00"}},
		{"cron(0/15 * * * ? *)", "2026-11-22 10:07", []string{"2026-11-22 10:15", "2026-11-22 10:30", "2026-11-22 10:45", "2026-11-22 11:00"}},
		{"cron(0/10 * ? * MON-FRI *)", "2026-11-21 23:55", []string{"2026-11-23 00:00", "2026-11-23 00:10"}},
		{"cron(0/5 8-17 ? * MON-FRI *)", "2026-11-23 17:55", []string{"2026-11-24 08:00", "2026-11-24 08:05"}},
		{"cron(0 9 ? * 2#1 *)", "2026-11-22 00:00", []string{"2026-12-07 09:00", "2027-01-04 09:00"}},  // first Monday
		{"cron(0 0 L * ? *)", "2028-02-01 00:00", []string{"2028-02-29 00:00", "2028-03-31 00:00"}},    // leap year
		{"cron(0 0 LW * ? *)", "2026-01-01 00:00", []string{"2026-01-30 00:00", "2026-02-27 00:00"}},   // Jan 31 is a Saturday
		{"cron(0 0 15W * ? *)", "2026-11-01 00:00", []string{"2026-11-16 00:00", "2026-12-15 00:00"}},  // Nov 15 is a Sunday
		{"cron(0 0 1W * ? *)", "2026-07-31 00:00", []string{"2026-08-03 00:00"}},                       // Aug 1 is a Saturday
		{"cron(30 23 ? * 6L *)", "2026-11-01 00:00", []string{"2026-11-27 23:30", "2026-12-25 23:30"}}, // last Friday
		{"cron(0 12 ? * L *)", "2026-11-22 13:00", []string{"2026-11-28 12:00"}},                       // Saturday
		{"cron(0 0 29 FEB ? 2025-2030)", "2025-01-01 00:00", []string{"2028-02-29 00:00"}},
		{"cron(0 0 1 JAN ? 2027)", "2027-01-01 00:00", []string{""}},
		{"rate(5 minutes)", "2026-11-22 10:07", []string{"2026-11-22 10:10", "2026-11-22 10:15"}},
		{"at(2026-12-01T09:00:00)", "2026-11-22 00:00", []string{"2026-12-01 09:00", ""}},
	} {
		s, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		cur := at(tc.from)
		anchor := at("2026-11-22 10:00")
		for _, w := range tc.want {
			cur = s.NextFrom(anchor, cur)
			if w == "" {
				if !cur.IsZero() {
					t.Errorf("%s: got %v, want none", tc.expr, cur)
				}
				break
			}
			if !cur.Equal(at(w)) {
				t.Errorf("%s from %s: got %v, want %s", tc.expr, tc.from, cur, w)
				break
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ expr, msg string }{
		{"cron(0 9 * * MON *)", "exactly one of day-of-month and day-of-week must be ?"},
		{"cron(0 9 ? * ? *)", "exactly one"},
		{"cron(0 9 * *)", "takes 6 fields"},
		{"cron(60 9 ? * MON *)", "cron field 1 (minutes): 60 is out of range 0-59"},
		{"cron(0 9 ? * 8 *)", "cron field 5 (day-of-week): 8 is out of range 1-7"},
		{"cron(0 9 ? FOO * *)", `cron field 4 (month): "FOO" is not a number`},
		{"cron(0 9 ? * 2#6 *)", "week number after # must be 1-5"},
		{"cron(0 9 1 * ? 1969)", "out of range 1970-2199"},
		{"cron(0 9-5 1 * ? *)", "runs backwards"},
		{"cron(0/0 9 1 * ? *)", "increment"},
		{"rate(1 minutes)", "write rate(1 minute)"},
		{"rate(5 minute)", "write rate(5 minutes)"},
		{"rate(0 minutes)", "positive"},
		{"rate(5 weeks)", "minute(s), hour(s) or day(s)"},
		{"every 5 minutes", "is not a schedule"},
		{"at(tomorrow)", "yyyy-mm-ddThh:mm:ss"},
	} {
		if _, err := Parse(tc.expr); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Parse(%q) = %v, want %q", tc.expr, err, tc.msg)
		}
	}
}

// brute is an independent, minute-by-minute matcher of simple expressions
// (lists and ranges, no L/W/#).
func brute(mins, hours, doms, months, dows []int, domQ bool, t time.Time) bool {
	in := func(v int, set []int) bool {
		for _, x := range set {
			if x == v {
				return true
			}
		}
		return false
	}
	if !in(t.Minute(), mins) || !in(t.Hour(), hours) || !in(int(t.Month()), months) {
		return false
	}
	if domQ {
		return in(int(t.Weekday())+1, dows)
	}
	return in(t.Day(), doms)
}

func TestAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(lo, hi, n int) []int {
		var out []int
		for i := 0; i < n; i++ {
			out = append(out, lo+r.IntN(hi-lo+1))
		}
		return out
	}
	join := func(v []int) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, ",")
	}
	for i := 0; i < 200; i++ {
		mins, hours := pick(0, 59, 1+r.IntN(3)), pick(0, 23, 1+r.IntN(3))
		doms, months, dows := pick(1, 31, 1+r.IntN(3)), pick(1, 12, 1+r.IntN(4)), pick(1, 7, 1+r.IntN(3))
		domQ := r.IntN(2) == 0
		dom, dow := join(doms), "?"
		if domQ {
			dom, dow = "?", join(dows)
		}
		expr := "cron(" + join(mins) + " " + join(hours) + " " + dom + " " + join(months) + " " + dow + " *)"
		s, err := Parse(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		from := at("2026-01-01 00:00").Add(time.Duration(r.IntN(400*24*60)) * time.Minute)
		got := s.Next(from)
		want := from.Truncate(time.Minute).Add(time.Minute)
		for !brute(mins, hours, doms, months, dows, domQ, want) && want.Before(from.AddDate(9, 0, 0)) {
			want = want.Add(time.Minute)
		}
		if !got.Equal(want) {
			t.Fatalf("%s from %v: got %v, brute force says %v", expr, from, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"cron(0 10 * * ? *)", "cron(0/5 8-17 ? * MON-FRI *)", "cron(0 0 LW * ? *)", "rate(5 minutes)", "cron(0 9 ? * 2#1 *)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := Parse(expr)
		if err != nil {
			return
		}
		again, err := Parse(s.String())
		if err != nil || again.String() != s.String() {
			t.Fatalf("round trip of %q: %v", expr, err)
		}
		from := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		a := s.NextFrom(from, from)
		if !a.IsZero() {
			if !a.After(from) {
				t.Fatalf("%q: next %v is not after %v", expr, a, from)
			}
			if b := s.NextFrom(from, a); !b.IsZero() && !b.After(a) {
				t.Fatalf("%q: next %v is not after %v", expr, b, a)
			}
		}
	})
}
