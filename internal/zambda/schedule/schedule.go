// Package schedule parses AWS EventBridge schedule expressions, as cron
// zambdas use them, and computes their fire times in UTC:
//
//	cron(Minutes Hours Day-of-month Month Day-of-week Year)
//	rate(5 minutes)   rate(1 hour)   rate(2 days)
//	at(2026-12-01T09:00:00)
//
// Cron fields take * , - / and names (JAN-DEC, SUN-SAT; day-of-week 1-7 is
// SUN-SAT); exactly one of day-of-month and day-of-week is ?; day-of-month
// also takes L (last day), LW (last weekday) and nW (weekday nearest the
// nth); day-of-week takes L (Saturday), nL (last such day of the month)
// and n#k (kth such day of the month).
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed expression.
type Schedule struct {
	text string
	kind byte // 'c' cron, 'r' rate, 'a' at
	rate time.Duration
	at   time.Time
	c    cron
}

type cron struct {
	min, hour, month uint64    // bit i set: value i allowed
	years            [4]uint64 // bit (y-1970) set
	dom              uint64    // days 1-31
	domQ, domL       bool      // "?", "L"
	domLW            bool
	domW             int // nW: weekday nearest n (0: none)
	dow              uint64
	dowQ             bool
	dowLast          int // nL: last weekday n of the month (1-7), 0: none
	dowNth           [2]int
}

// String returns the expression as given.
func (s Schedule) String() string { return s.text }

const maxYear = 2199

// Parse reads an expression; errors name the field and the value.
func Parse(expr string) (Schedule, error) {
	e := strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(e, "rate(") && strings.HasSuffix(e, ")"):
		return parseRate(e)
	case strings.HasPrefix(e, "cron(") && strings.HasSuffix(e, ")"):
		c, err := parseCron(e[5 : len(e)-1])
		return Schedule{text: e, kind: 'c', c: c}, err
	case strings.HasPrefix(e, "at(") && strings.HasSuffix(e, ")"):
		t, err := time.Parse("2006-01-02T15:04:05", e[3:len(e)-1])
		if err != nil {
			return Schedule{}, fmt.Errorf("at(...) takes yyyy-mm-ddThh:mm:ss, not %q", e[3:len(e)-1])
		}
		return Schedule{text: e, kind: 'a', at: t.UTC()}, nil
	}
	return Schedule{}, fmt.Errorf("%q is not a schedule: write cron(Minutes Hours Day-of-month Month Day-of-week Year), rate(5 minutes) or at(yyyy-mm-ddThh:mm:ss)", clip(expr))
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func parseRate(e string) (Schedule, error) {
	fields := strings.Fields(e[5 : len(e)-1])
	if len(fields) != 2 {
		return Schedule{}, fmt.Errorf("rate(...) takes a value and a unit, e.g. rate(5 minutes), not %q", e)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return Schedule{}, fmt.Errorf("rate value must be a positive whole number, not %q", fields[0])
	}
	units := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
	unit := fields[1]
	base := strings.TrimSuffix(unit, "s")
	d, ok := units[base]
	if !ok {
		return Schedule{}, fmt.Errorf("rate unit must be minute(s), hour(s) or day(s), not %q", unit)
	}
	if (n == 1) != (unit == base) {
		want := base
		if n != 1 {
			want += "s"
		}
		return Schedule{}, fmt.Errorf("rate(%d %s): write rate(%d %s)", n, unit, n, want)
	}
	return Schedule{text: e, kind: 'r', rate: time.Duration(n) * d}, nil
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames   = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
	fieldNames = [6]string{"minutes", "hours", "day-of-month", "month", "day-of-week", "year"}
)

type bounds struct {
	lo, hi int
	names  map[string]int
}

var fieldBounds = [6]bounds{{0, 59, nil}, {0, 23, nil}, {1, 31, nil}, {1, 12, monthNames}, {1, 7, dayNames}, {1970, maxYear, nil}}

func fieldErr(i int, format string, args ...any) error {
	return fmt.Errorf("cron field %d (%s): %s", i+1, fieldNames[i], fmt.Sprintf(format, args...))
}

func parseCron(body string) (cron, error) {
	var c cron
	f := strings.Fields(body)
	if len(f) != 6 {
		return c, fmt.Errorf("cron(...) takes 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), not %d", len(f))
	}
	var err error
	if c.min, err = parseSet(f[0], 0); err != nil {
		return c, err
	}
	if c.hour, err = parseSet(f[1], 1); err != nil {
		return c, err
	}
	if c.month, err = parseSet(f[3], 3); err != nil {
		return c, err
	}
	if err := c.parseYears(f[5]); err != nil {
		return c, err
	}
	if err := c.parseDOM(f[2]); err != nil {
		return c, err
	}
	if err := c.parseDOW(f[4]); err != nil {
		return c, err
	}
	if c.domQ == c.dowQ {
		return c, fmt.Errorf("cron: exactly one of day-of-month and day-of-week must be ?, e.g. cron(0 9 ? * MON *) or cron(0 9 1 * ? *)")
	}
	return c, nil
}

// value reads one number or name of field i.
func value(s string, i int) (int, error) {
	b := fieldBounds[i]
	if v, ok := b.names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fieldErr(i, "%q is not a number", s)
	}
	if v < b.lo || v > b.hi {
		return 0, fieldErr(i, "%d is out of range %d-%d", v, b.lo, b.hi)
	}
	return v, nil
}

// parseSet reads * , - / for fields up to 64 values (not years).
func parseSet(s string, i int) (uint64, error) {
	var set uint64
	err := eachRange(s, i, func(v int) { set |= 1 << uint(v) })
	return set, err
}

func eachRange(s string, i int, add func(int)) error {
	b := fieldBounds[i]
	for _, part := range strings.Split(s, ",") {
		step := 1
		if base, st, ok := strings.Cut(part, "/"); ok {
			n, err := strconv.Atoi(st)
			if err != nil || n <= 0 {
				return fieldErr(i, "the increment in %q must be a positive number", part)
			}
			step, part = n, base
		}
		lo, hi := b.lo, b.hi
		switch {
		case part == "*":
		case strings.Contains(part, "-"):
			a, z, _ := strings.Cut(part, "-")
			var err error
			if lo, err = value(a, i); err != nil {
				return err
			}
			if hi, err = value(z, i); err != nil {
				return err
			}
			if lo > hi {
				return fieldErr(i, "range %q runs backwards", part)
			}
		default:
			v, err := value(part, i)
			if err != nil {
				return err
			}
			lo = v
			if step == 1 {
				hi = v
			}
		}
		for v := lo; v <= hi; v += step {
			add(v)
		}
	}
	return nil
}

func (c *cron) parseYears(s string) error {
	return eachRange(s, 5, func(y int) { c.years[(y-1970)/64] |= 1 << uint((y-1970)%64) })
}

func (c *cron) yearOK(y int) bool {
	if y < 1970 || y > maxYear {
		return false
	}
	return c.years[(y-1970)/64]&(1<<uint((y-1970)%64)) != 0
}

func (c *cron) parseDOM(s string) error {
	switch {
	case s == "?":
		c.domQ = true
	case s == "L":
		c.domL = true
	case s == "LW":
		c.domLW = true
	case strings.HasSuffix(s, "W"):
		v, err := value(strings.TrimSuffix(s, "W"), 2)
		if err != nil {
			return err
		}
		c.domW = v
	default:
		var err error
		c.dom, err = parseSet(s, 2)
		return err
	}
	return nil
}

func (c *cron) parseDOW(s string) error {
	switch {
	case s == "?":
		c.dowQ = true
	case s == "L":
		c.dow = 1 << 7 // Saturday, the last day of the week
	case strings.HasSuffix(s, "L"):
		v, err := value(strings.TrimSuffix(s, "L"), 4)
		if err != nil {
			return err
		}
		c.dowLast = v
	case strings.Contains(s, "#"):
		d, k, _ := strings.Cut(s, "#")
		v, err := value(d, 4)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(k)
		if err != nil || n < 1 || n > 5 {
			return fieldErr(4, "in %q the week number after # must be 1-5", s)
		}
		c.dowNth = [2]int{v, n}
	default:
		var err error
		c.dow, err = parseSet(s, 4)
		return err
	}
	return nil
}

func daysIn(y int, m time.Month) int { return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day() }

// dayOK reports whether the date matches the day-of-month / day-of-week rule.
func (c *cron) dayOK(t time.Time) bool {
	y, m, d := t.Date()
	last := daysIn(y, m)
	wd := int(t.Weekday()) + 1 // 1 = Sunday
	if !c.domQ {
		switch {
		case c.domL:
			return d == last
		case c.domLW:
			return d == nearestWeekday(y, m, last, last)
		case c.domW > 0:
			return d == nearestWeekday(y, m, min(c.domW, last), last)
		default:
			return c.dom&(1<<uint(d)) != 0
		}
	}
	switch {
	case c.dowLast > 0:
		return wd == c.dowLast && d+7 > last
	case c.dowNth[0] > 0:
		return wd == c.dowNth[0] && (d-1)/7+1 == c.dowNth[1]
	default:
		return c.dow&(1<<uint(wd)) != 0
	}
}

// nearestWeekday is the weekday nearest day n of the month, not crossing
// into another month (Quartz/EventBridge "W").
func nearestWeekday(y int, m time.Month, n, last int) int {
	switch time.Date(y, m, n, 0, 0, 0, 0, time.UTC).Weekday() {
	case time.Saturday:
		if n == 1 {
			return 3 // Monday the 3rd
		}
		return n - 1
	case time.Sunday:
		if n == last {
			return n - 2
		}
		return n + 1
	}
	return n
}

// Next returns the first fire time strictly after after (zero when there
// is none). A rate schedule counts from after itself; use NextFrom.
func (s Schedule) Next(after time.Time) time.Time { return s.NextFrom(after, after) }

// NextFrom returns the first fire time strictly after after. Rate ticks are
// anchor + k*period (k >= 1), so every replica computes the same ticks.
func (s Schedule) NextFrom(anchor, after time.Time) time.Time {
	after = after.UTC()
	switch s.kind {
	case 'r':
		anchor = anchor.UTC()
		if after.Before(anchor) {
			return anchor.Add(s.rate)
		}
		k := after.Sub(anchor)/s.rate + 1
		return anchor.Add(k * s.rate)
	case 'a':
		if s.at.After(after) {
			return s.at
		}
		return time.Time{}
	case 'c':
		return s.c.next(after)
	}
	return time.Time{}
}

func (c *cron) next(after time.Time) time.Time {
	t := after.Truncate(time.Minute).Add(time.Minute)
	for t.Year() <= maxYear {
		y, m, _ := t.Date()
		switch {
		case !c.yearOK(y):
			t = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC)
		case c.month&(1<<uint(m)) == 0:
			t = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		case !c.dayOK(t):
			t = time.Date(y, m, t.Day()+1, 0, 0, 0, 0, time.UTC)
		case c.hour&(1<<uint(t.Hour())) == 0:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case c.min&(1<<uint(t.Minute())) == 0:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}
