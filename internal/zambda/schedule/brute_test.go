package schedule

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The brute-force side of the property tests: random expressions are built
// as plain data, printed, parsed by Parse, and the data is matched against
// each minute by the simple rules below, written without the package's
// bit sets, skips or tables.

type bItem struct {
	star   bool
	lo, hi int // hi < 0: a single value
	step   int // 0: none
}

// bField is one field: a list of items, or a special form.
type bField struct {
	items   []bItem
	special string // "?", "L", "LW", "W", "nL", "#"
	n, k    int    // for W, nL and #
}

type bExpr struct{ f [6]bField }

var bLo = [6]int{0, 0, 1, 1, 1, 1970}
var bHi = [6]int{59, 23, 31, 12, 7, 2199}

func (it bItem) has(v, field int) bool {
	lo, hi := bLo[field], bHi[field]
	step := max(it.step, 1)
	switch {
	case it.star:
		return (v-lo)%step == 0
	case it.hi < 0 && it.step == 0:
		return v == it.lo
	case it.hi < 0:
		return v >= it.lo && (v-it.lo)%step == 0
	case it.lo <= it.hi:
		return v >= it.lo && v <= it.hi && (v-it.lo)%step == 0
	default: // wraps past the top of the field
		span := hi - lo + 1
		return (v >= it.lo || v <= it.hi) && ((v-it.lo+span)%span)%step == 0
	}
}

func (f bField) has(v, field int) bool {
	for _, it := range f.items {
		if it.has(v, field) {
			return true
		}
	}
	return false
}

func weekday(t time.Time) int { return int(t.Weekday()) + 1 }

func isWorkday(t time.Time) bool { return t.Weekday() != time.Saturday && t.Weekday() != time.Sunday }

// dayMatches says whether the calendar day of t matches.
func (e bExpr) dayMatches(t time.Time) bool {
	if !e.f[fYear].has(t.Year(), fYear) || !e.f[fMonth].has(int(t.Month()), fMonth) {
		return false
	}
	dom, dow := e.f[fDOM], e.f[fDOW]
	sameMonth := func(d time.Time) bool { return d.Month() == t.Month() }
	switch {
	case dom.special == "L":
		return !sameMonth(t.AddDate(0, 0, 1))
	case dom.special == "LW":
		if !isWorkday(t) {
			return false
		}
		for d := t.AddDate(0, 0, 1); sameMonth(d); d = d.AddDate(0, 0, 1) {
			if isWorkday(d) {
				return false
			}
		}
		return true
	case dom.special == "W":
		// The workday of the month closest to day n, if the month has one.
		target := time.Date(t.Year(), t.Month(), dom.n, 0, 0, 0, 0, time.UTC)
		if !sameMonth(target) {
			return false
		}
		best, bestDist := 0, 99
		for d := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC); sameMonth(d); d = d.AddDate(0, 0, 1) {
			dist := d.Day() - dom.n
			if dist < 0 {
				dist = -dist
			}
			if isWorkday(d) && dist < bestDist {
				best, bestDist = d.Day(), dist
			}
		}
		return t.Day() == best
	case dom.special == "":
		return dom.has(t.Day(), fDOM)
	}
	switch dow.special {
	case "L":
		return t.Weekday() == time.Saturday
	case "nL":
		return weekday(t) == dow.n && !sameMonth(t.AddDate(0, 0, 7))
	case "#":
		return weekday(t) == dow.n && (t.Day()-1)/7+1 == dow.k
	}
	return dow.has(weekday(t), fDOW)
}

func (e bExpr) matches(t time.Time) bool {
	return e.dayMatches(t) && e.f[fHour].has(t.Hour(), fHour) && e.f[fMin].has(t.Minute(), fMin)
}

// bruteNext scans day by day, then minute by minute within a matching
// day, up to horizon; zero when nothing fires before it.
func (e bExpr) bruteNext(after, horizon time.Time) time.Time {
	for day := time.Date(after.Year(), after.Month(), after.Day(), 0, 0, 0, 0, time.UTC); day.Before(horizon); day = day.AddDate(0, 0, 1) {
		if !e.dayMatches(day) {
			continue
		}
		for t := day; t.Day() == day.Day(); t = t.Add(time.Minute) {
			if t.After(after) && e.matches(t) {
				return t
			}
		}
	}
	return time.Time{}
}

// String prints the expression, with names and odd spacing now and then.
func (e bExpr) String(r *rand.Rand) string {
	num := func(v, field int) string {
		if field == fMonth && r.IntN(3) == 0 {
			return strings.ToLower(monthNamesForTest[v])
		}
		if field == fDOW && r.IntN(3) == 0 {
			return dayNamesForTest[v]
		}
		return strconv.Itoa(v)
	}
	var out []string
	for i, f := range e.f {
		var s string
		switch f.special {
		case "?", "L", "LW":
			s = f.special
		case "W":
			s = strconv.Itoa(f.n) + "W"
		case "nL":
			s = num(f.n, fDOW) + "L"
		case "#":
			s = num(f.n, fDOW) + "#" + strconv.Itoa(f.k)
		default:
			var parts []string
			for _, it := range f.items {
				p := "*"
				if !it.star {
					p = num(it.lo, i)
					if it.hi >= 0 {
						p += "-" + num(it.hi, i)
					}
				}
				if it.step > 0 {
					p += "/" + strconv.Itoa(it.step)
				}
				parts = append(parts, p)
			}
			s = strings.Join(parts, ",")
		}
		out = append(out, s)
	}
	return "cron(" + strings.Join(out, strings.Repeat(" ", 1+r.IntN(2))) + ")"
}

// Written out again rather than shared with the package.
var (
	monthNamesForTest = []string{"", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNamesForTest   = []string{"", "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

func randField(r *rand.Rand, field int) bField {
	lo, hi := bLo[field], bHi[field]
	if field == fYear {
		switch r.IntN(4) {
		case 0:
			y := 2025 + r.IntN(6)
			return bField{items: []bItem{{lo: y, hi: y + r.IntN(3)}}}
		case 1:
			return bField{items: []bItem{{lo: 2024 + r.IntN(5), hi: -1}, {lo: 2027 + r.IntN(5), hi: -1}}}
		}
		return bField{items: []bItem{{star: true}}}
	}
	if r.IntN(4) == 0 {
		return bField{items: []bItem{{star: true, step: []int{0, 0, 1 + r.IntN(hi-lo+1)}[r.IntN(3)]}}}
	}
	var f bField
	for range 1 + r.IntN(3) {
		it := bItem{lo: lo + r.IntN(hi-lo+1), hi: -1}
		switch r.IntN(4) {
		case 1:
			it.hi = lo + r.IntN(hi-lo+1) // may wrap
		case 2:
			it.hi = lo + r.IntN(hi-lo+1)
			it.step = 1 + r.IntN(max(1, (hi-lo)/2))
		case 3:
			it.step = 1 + r.IntN(max(1, (hi-lo)/2))
		}
		f.items = append(f.items, it)
	}
	return f
}

func randExpr(r *rand.Rand) bExpr {
	var e bExpr
	for _, i := range []int{fMin, fHour, fMonth, fYear} {
		e.f[i] = randField(r, i)
	}
	q := bField{special: "?"}
	if r.IntN(2) == 0 {
		e.f[fDOW] = q
		switch r.IntN(6) {
		case 0:
			e.f[fDOM] = bField{special: "L"}
		case 1:
			e.f[fDOM] = bField{special: "LW"}
		case 2:
			// The edges (1st, 29th-31st) are where W is subtle.
			e.f[fDOM] = bField{special: "W", n: []int{1, 29, 30, 31, 1 + r.IntN(31)}[r.IntN(5)]}
		default:
			e.f[fDOM] = randField(r, fDOM)
		}
	} else {
		e.f[fDOM] = q
		switch r.IntN(6) {
		case 0:
			e.f[fDOW] = bField{special: "L"}
		case 1:
			e.f[fDOW] = bField{special: "nL", n: 1 + r.IntN(7)}
		case 2:
			e.f[fDOW] = bField{special: "#", n: 1 + r.IntN(7), k: 1 + r.IntN(5)}
		default:
			e.f[fDOW] = randField(r, fDOW)
		}
	}
	return e
}

// TestAgainstBruteForce compares chains of Next with the brute-force
// matcher over random expressions and random starts.
func TestAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	n := 3000
	if testing.Short() {
		n = 300
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for range n {
		e := randExpr(r)
		expr := e.String(r)
		s, err := Parse(expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", expr, err)
		}
		after := base.Add(time.Duration(r.Int64N(int64(4 * 365 * 24 * time.Hour))))
		horizon := after.AddDate(6, 0, 0)
		for step := 0; step < 4; step++ {
			got := s.Next(after)
			want := e.bruteNext(after, horizon)
			if want.IsZero() {
				if !got.IsZero() && got.Before(horizon) {
					t.Fatalf("%s after %v: Next = %v, brute force finds nothing before %v", expr, after, got, horizon)
				}
				break
			}
			if !got.Equal(want) {
				t.Fatalf("%s after %v: Next = %v, brute force says %v", expr, after, got, want)
			}
			after = got
		}
	}
}

// TestZonesAgainstBruteForce checks schedules read in zones with daylight
// saving (including Lord Howe's 30-minute change) around the changes: a
// wall time fires at its first instant only, and never when skipped.
func TestZonesAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	type change struct {
		zone string
		at   time.Time // near a change, UTC
	}
	var changes []change
	for _, z := range []string{"America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Santiago"} {
		loc, err := time.LoadLocation(z)
		if err != nil {
			t.Fatal(err)
		}
		// Find the offset changes of 2026 hour by hour.
		_, prev := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).In(loc).Zone()
		for h := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); h.Year() == 2026; h = h.Add(time.Hour) {
			if _, off := h.In(loc).Zone(); off != prev {
				changes = append(changes, change{z, h})
				prev = off
			}
		}
		changes = append(changes, change{z, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	}
	for range 400 {
		c := changes[r.IntN(len(changes))]
		loc, _ := time.LoadLocation(c.zone)
		e := randExpr(r)
		e.f[fYear] = bField{items: []bItem{{star: true}}}
		// Dense hours and minutes, so the change matters.
		if r.IntN(2) == 0 {
			e.f[fHour] = bField{items: []bItem{{star: true}}}
		}
		if r.IntN(2) == 0 {
			e.f[fMin] = bField{items: []bItem{{star: true, step: []int{1, 10, 15, 30}[r.IntN(4)]}}}
		}
		expr := e.String(r)
		s, err := Parse(expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", expr, err)
		}
		s = s.In(loc)
		after := c.at.Add(time.Duration(r.IntN(6*60)-3*60) * time.Minute).Add(time.Duration(r.IntN(60)) * time.Second)
		horizon := after.Add(3 * 24 * time.Hour)
		for step := 0; step < 6; step++ {
			got := s.Next(after)
			want := bruteZoned(e, loc, after, horizon)
			if want.IsZero() {
				if !got.IsZero() && got.Before(horizon) {
					t.Fatalf("%s in %s after %v: Next = %v, brute force finds nothing", expr, c.zone, after, got)
				}
				break
			}
			if !got.Equal(want) {
				t.Fatalf("%s in %s after %v: Next = %v, brute force says %v", expr, c.zone, after, got, want)
			}
			after = got
		}
	}
}

// bruteZoned walks instants minute by minute; an instant fires when its
// wall clock matches and no earlier instant (within 3 hours) showed the
// same wall clock.
func bruteZoned(e bExpr, loc *time.Location, after, horizon time.Time) time.Time {
	wall := func(t time.Time) time.Time {
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
	}
	for t := after.Truncate(time.Minute).Add(time.Minute); t.Before(horizon); t = t.Add(time.Minute) {
		w := wall(t)
		if !e.matches(w) {
			continue
		}
		first := true
		for back := time.Minute; back <= 3*time.Hour; back += time.Minute {
			if wall(t.Add(-back)).Equal(w) {
				first = false
				break
			}
		}
		if first {
			return t
		}
	}
	return time.Time{}
}
