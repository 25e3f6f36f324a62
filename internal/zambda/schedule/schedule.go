// Package schedule parses AWS EventBridge schedule expressions, as cron
// zambdas use them, and computes their fire times:
//
//	cron(Minutes Hours Day-of-month Month Day-of-week Year)
//	rate(5 minutes)   rate(1 hour)   rate(2 days)
//	at(2026-12-01T09:00:00)
//
// Cron fields take * , - / and names (JAN-DEC, SUN-SAT; day-of-week 1-7 is
// SUN-SAT); exactly one of day-of-month and day-of-week is ?. Day-of-month
// also takes L (last day), LW (last weekday) and nW (the weekday nearest
// the nth, within the month); day-of-week takes L (Saturday, the last day
// of the week), nL (the last such day of the month) and n#k (the kth such
// day of the month). Ranges may wrap (FRI-MON, 22-2), as in Quartz, which
// EventBridge cron follows.
//
// Times are UTC unless Schedule.In names a zone; then cron and at read the
// zone's wall clock, and daylight saving works as in EventBridge Scheduler:
// a wall time the clock skips does not fire, one it repeats fires once.
package schedule

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid matches every parse error (errors.Is); the *Error says what.
var ErrInvalid = errors.New("invalid schedule expression")

// Error is an expression the user must fix; the message names the field
// and the value.
type Error struct {
	Field int // 1-6 for a cron field, 0 for the expression as a whole
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

type kind uint8

const (
	kindNone kind = iota
	kindCron
	kindRate
	kindAt
)

// Schedule is a parsed expression. The zero Schedule never fires.
type Schedule struct {
	kind kind
	cron cron
	rate time.Duration
	unit int       // index in rateUnits, as written
	at   time.Time // wall clock, in UTC fields
	loc  *time.Location
}

// maxRate keeps anchor + k*period arithmetic within time.Duration.
const maxRate = 100 * 365 * 24 * time.Hour

// Parse reads an expression. Names and units may be in any case and
// spacing is free; String gives the canonical form.
func Parse(expr string) (Schedule, error) {
	e := strings.TrimSpace(expr)
	body := func(prefix string) (string, bool) {
		if strings.HasPrefix(e, prefix) && strings.HasSuffix(e, ")") {
			return strings.TrimSpace(e[len(prefix) : len(e)-1]), true
		}
		return "", false
	}
	if b, ok := body("cron("); ok {
		c, err := parseCron(b)
		if err != nil {
			return Schedule{}, err
		}
		return Schedule{kind: kindCron, cron: c}, nil
	}
	if b, ok := body("rate("); ok {
		d, unit, err := parseRate(b)
		if err != nil {
			return Schedule{}, err
		}
		return Schedule{kind: kindRate, rate: d, unit: unit}, nil
	}
	if b, ok := body("at("); ok {
		t, err := time.Parse("2006-01-02T15:04:05", b)
		if err != nil {
			return Schedule{}, invalid("at(...) takes a date and time as yyyy-mm-ddThh:mm:ss, not %q", clip(b))
		}
		return Schedule{kind: kindAt, at: t}, nil
	}
	return Schedule{}, invalid("%q is not a schedule expression: write cron(Minutes Hours Day-of-month Month Day-of-week Year), rate(5 minutes) or at(yyyy-mm-ddThh:mm:ss)", clip(expr))
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

var rateUnits = [...]struct {
	name string
	d    time.Duration
}{{"minute", time.Minute}, {"hour", time.Hour}, {"day", 24 * time.Hour}}

// parseRate reads "value unit"; AWS wants the singular exactly when the
// value is 1, so "rate(1 minutes)" and "rate(5 minute)" are refused.
func parseRate(b string) (time.Duration, int, error) {
	f := strings.Fields(b)
	if len(f) != 2 {
		return 0, 0, invalid("rate(...) takes a value and a unit, e.g. rate(5 minutes), not rate(%s)", clip(b))
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n <= 0 || !isDigits(f[0]) {
		return 0, 0, invalid("the rate value must be a positive whole number, not %q", clip(f[0]))
	}
	unit := strings.ToLower(f[1])
	for i, u := range rateUnits {
		if unit != u.name && unit != u.name+"s" {
			continue
		}
		if want := unitName(u.name, n); unit != want {
			return 0, 0, invalid("rate(%d %s): write rate(%d %s)", n, f[1], n, want)
		}
		if n > int64(maxRate/u.d) {
			return 0, 0, invalid("rate(%d %s) is longer than the longest rate, 100 years", n, unit)
		}
		return time.Duration(n) * u.d, i, nil
	}
	return 0, 0, invalid("the rate unit must be minute(s), hour(s) or day(s), not %q", clip(f[1]))
}

func unitName(base string, n int64) string {
	if n == 1 {
		return base
	}
	return base + "s"
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// String returns the canonical expression: single spaces, upper-case
// names, numbers without leading zeros. Parse(s.String()) is s.
func (s Schedule) String() string {
	switch s.kind {
	case kindCron:
		return "cron(" + strings.Join(s.cron.text[:], " ") + ")"
	case kindRate:
		u := rateUnits[s.unit]
		n := int64(s.rate / u.d)
		return fmt.Sprintf("rate(%d %s)", n, unitName(u.name, n))
	case kindAt:
		return "at(" + s.at.Format("2006-01-02T15:04:05") + ")"
	}
	return ""
}

// In returns the schedule read in loc's wall clock (nil means UTC). Rate
// schedules count elapsed time and do not change.
func (s Schedule) In(loc *time.Location) Schedule {
	s.loc = loc
	return s
}

// Location is the zone the schedule reads its wall clock in.
func (s Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// Period is a rate schedule's interval (0 for cron and at).
func (s Schedule) Period() time.Duration {
	if s.kind == kindRate {
		return s.rate
	}
	return 0
}

// Next returns the first fire time strictly after after, or the zero time
// when there is none (a past at(), a cron whose years are over). A rate
// schedule counts from after itself; callers that need the same ticks on
// every replica use NextFrom.
func (s Schedule) Next(after time.Time) time.Time { return s.NextFrom(after, after) }

// NextFrom is Next with rate ticks laid on a fixed grid: anchor + k*period
// for the smallest k >= 0 that falls strictly after after. The caller
// passes a time every replica agrees on (the start date, or the function's
// creation), so all replicas compute identical tick times. As in
// EventBridge Scheduler the anchor itself is the first tick. Cron and at
// ignore the anchor. Times come back in the schedule's Location.
func (s Schedule) NextFrom(anchor, after time.Time) time.Time {
	var t time.Time
	switch s.kind {
	case kindRate:
		t = gridNext(anchor, after, s.rate)
	case kindAt:
		if at := instantOrNormal(s.at, s.Location()); at.After(after) {
			t = at
		}
	case kindCron:
		t = s.cron.next(after, s.Location())
	}
	if t.IsZero() {
		return t
	}
	return t.In(s.Location())
}

// gridNext is the first anchor + k*p (k >= 0) after after.
func gridNext(anchor, after time.Time, p time.Duration) time.Time {
	if after.Before(anchor) {
		return anchor
	}
	if d := after.Sub(anchor); d < maxDuration-p {
		return anchor.Add((d/p + 1) * p)
	}
	// Far apart (Sub saturates past 292 years): exact integer arithmetic.
	ns := func(t time.Time) *big.Int {
		v := big.NewInt(t.Unix())
		v.Mul(v, big.NewInt(int64(time.Second)))
		return v.Add(v, big.NewInt(int64(t.Nanosecond())))
	}
	off := new(big.Int).Sub(ns(after), ns(anchor))
	off.Quo(off, big.NewInt(int64(p)))
	off.Add(off, big.NewInt(1))
	off.Mul(off, big.NewInt(int64(p)))
	sec, nsec := new(big.Int).QuoRem(off, big.NewInt(int64(time.Second)), new(big.Int))
	if !sec.IsInt64() || sec.Int64() > 1<<62 {
		return time.Time{}
	}
	return time.Unix(anchor.Unix()+sec.Int64(), int64(anchor.Nanosecond())+nsec.Int64())
}

const maxDuration = time.Duration(1<<63 - 1)
