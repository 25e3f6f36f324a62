package schedule

import (
	"math/bits"
	"time"
)

// next is the first fire time strictly after after, reading the cron in
// loc's wall clock. Wall times are walked in order (skipping whole fields
// at a time in nextWall); one that loc skips (spring forward) never fires,
// one that loc repeats (fall back) fires at its first instant only.
func (c *cron) next(after time.Time, loc *time.Location) time.Time {
	lt := after.In(loc)
	w := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), 0, 0, time.UTC).Add(time.Minute)
	for {
		var ok bool
		if w, ok = c.nextWall(w); !ok {
			return time.Time{}
		}
		// Only within a daylight-saving change does this loop go round
		// more than once: at most one pass per minute of the change.
		if t, ok := instant(w, loc); ok && t.After(after) {
			return t
		}
		w = w.Add(time.Minute)
	}
}

// nextWall returns the first wall time (held in UTC fields) at or after w
// that the cron matches. It skips a year, month, day or hour at a time, so
// it loops at most a few times per year searched.
func (c *cron) nextWall(w time.Time) (time.Time, bool) {
	y, mo, d := w.Date()
	m, h, mi := int(mo), w.Hour(), w.Minute()
	if y < minYear {
		y, m, d, h, mi = minYear, 1, 1, 0, 0
	}
	for y <= maxYear {
		if !c.yearOK(y) {
			y, m, d, h, mi = y+1, 1, 1, 0, 0
			continue
		}
		if n := nextBit(c.month, m); n != m {
			if n < 0 {
				y, m, d, h, mi = y+1, 1, 1, 0, 0
				continue
			}
			m, d, h, mi = n, 1, 0, 0
		}
		if n := nextBit(c.days(y, time.Month(m)), d); n != d {
			if n < 0 {
				m, d, h, mi = m+1, 1, 0, 0
				continue
			}
			d, h, mi = n, 0, 0
		}
		if n := nextBit(c.hour, h); n != h {
			if n < 0 {
				d, h, mi = d+1, 0, 0
				continue
			}
			h, mi = n, 0
		}
		if n := nextBit(c.min, mi); n != mi {
			if n < 0 {
				h, mi = h+1, 0
				continue
			}
			mi = n
		}
		return time.Date(y, time.Month(m), d, h, mi, 0, 0, time.UTC), true
	}
	return time.Time{}, false
}

// nextBit is the lowest set bit of set at or above from, or -1.
func nextBit(set uint64, from int) int {
	if from >= 64 {
		return -1
	}
	if rest := set >> uint(from) << uint(from); rest != 0 {
		return bits.TrailingZeros64(rest)
	}
	return -1
}

// days returns the days of month m of year y that the day-of-month /
// day-of-week rule matches, as bits 1-31.
func (c *cron) days(y int, m time.Month) uint64 {
	last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
	month := uint64(1)<<uint(last+1) - 2 // bits 1..last
	first := int(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Weekday()) + 1
	// weekday of day d, 1 = Sunday
	wd := func(d int) int { return (first-1+d-1)%7 + 1 }
	switch c.domKind {
	case domSet:
		return c.dom & month
	case domLast:
		return 1 << uint(last)
	case domLastWeek:
		return 1 << uint(nearestWeekday(last, wd(last), last))
	case domNear:
		if c.domN > last {
			return 0 // like a plain 31, 31W skips shorter months
		}
		return 1 << uint(nearestWeekday(c.domN, wd(c.domN), last))
	}
	switch c.dowKind {
	case dowLast:
		return 1 << uint(last-(wd(last)-c.dowN+7)%7)
	case dowNth:
		d := 1 + (c.dowN-first+7)%7 + 7*(c.dowK-1)
		if d > last {
			return 0
		}
		return 1 << uint(d)
	case dowSet:
		var set uint64
		for d := 1; d <= last; d++ {
			if c.dow&(1<<uint(wd(d))) != 0 {
				set |= 1 << uint(d)
			}
		}
		return set
	}
	return 0
}

// nearestWeekday is the Monday-Friday day nearest day n (weekday wd) of a
// month of last days, without leaving the month (Quartz "W"): Saturday
// the 1st moves to Monday the 3rd, Sunday the last to Friday.
func nearestWeekday(n, wd, last int) int {
	switch wd {
	case 7: // Saturday
		if n == 1 {
			return 3
		}
		return n - 1
	case 1: // Sunday
		if n == last {
			return n - 2
		}
		return n + 1
	}
	return n
}

// instant is the first instant whose wall clock in loc is w (given in UTC
// fields); ok is false when loc skips that wall time.
func instant(w time.Time, loc *time.Location) (time.Time, bool) {
	if loc == time.UTC {
		return w, true
	}
	// The instant lies within 14 hours of w; the zone's offset there is
	// the one before or after any change near w (changes are far apart).
	var best time.Time
	found := false
	for _, probe := range [...]time.Duration{-15 * time.Hour, 0, 15 * time.Hour} {
		_, off := w.Add(probe).In(loc).Zone()
		t := w.Add(-time.Duration(off) * time.Second)
		if sameWall(t.In(loc), w) && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	return best, found
}

// instantOrNormal is instant, or for a wall time the clock skips, that
// wall time read with the offset before the change (02:30 when clocks
// jump 02:00 -> 03:00 gives 03:30): a one-time schedule should not vanish.
func instantOrNormal(w time.Time, loc *time.Location) time.Time {
	if t, ok := instant(w, loc); ok {
		return t
	}
	_, off := w.Add(-15 * time.Hour).In(loc).Zone()
	return w.Add(-time.Duration(off) * time.Second)
}

func sameWall(t, w time.Time) bool {
	ty, tm, td := t.Date()
	wy, wm, wd := w.Date()
	return ty == wy && tm == wm && td == wd && t.Hour() == w.Hour() && t.Minute() == w.Minute() && t.Second() == w.Second()
}
