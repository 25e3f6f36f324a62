package search

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidDate is returned by DateRange for text that is not a FHIR date,
// dateTime or instant.
var ErrInvalidDate = errors.New("invalid date")

// Unbounded ends of a date range: a Period without start or end.
const (
	MinTime int64 = math.MinInt64
	MaxTime int64 = math.MaxInt64
)

// DateRange returns the half-open range [low, high) in Unix milliseconds
// that a FHIR date, dateTime or instant covers at its precision:
//
//	2020                      -> [2020-01-01T00:00Z, 2021-01-01T00:00Z)
//	2020-01                   -> [2020-01-01, 2020-02-01)
//	2020-01-02                -> [2020-01-02, 2020-01-03)
//	2020-01-02T10:00+01:00    -> one minute (search values may stop at minutes)
//	2020-01-02T10:00:05Z      -> one second
//	2020-01-02T10:00:05.1Z    -> 100 ms; three or more digits give 1 ms
//
// Values without a time zone (all dates, and dateTimes that omit it) are
// taken as UTC: FHIR leaves their zone to the server, and a fixed choice
// keeps indexing and querying consistent across replicas.
func DateRange(s string) (low, high int64, err error) {
	t, unit, err := parseDate(s)
	if err != nil {
		return 0, 0, err
	}
	return t.UnixMilli(), unit(t).UnixMilli(), nil
}

func dateErr(s string) error { return fmt.Errorf("%w %q", ErrInvalidDate, s) }

// parseDate returns the start instant of s and a function that advances an
// instant by the precision of s.
func parseDate(s string) (time.Time, func(time.Time) time.Time, error) {
	bad := func() (time.Time, func(time.Time) time.Time, error) { return time.Time{}, nil, dateErr(s) }
	year, ok := digits(s, 0, 4)
	if !ok || year < 1 {
		return bad()
	}
	if len(s) == 4 {
		return time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC), func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }, nil
	}
	month, ok := digits(s, 5, 2)
	if !ok || s[4] != '-' || month < 1 || month > 12 {
		return bad()
	}
	if len(s) == 7 {
		return time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC), func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }, nil
	}
	day, ok := digits(s, 8, 2)
	if !ok || s[7] != '-' || day < 1 || day > daysIn(year, month) {
		return bad()
	}
	if len(s) == 10 {
		return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC), func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }, nil
	}
	hour, okh := digits(s, 11, 2)
	minute, okm := digits(s, 14, 2)
	if s[10] != 'T' || !okh || !okm || s[13] != ':' || hour > 23 || minute > 59 {
		return bad()
	}
	rest := s[16:]
	sec, nanos := 0, 0
	step := time.Minute
	if len(rest) > 0 && rest[0] == ':' {
		var ok bool
		if sec, ok = digits(rest, 1, 2); !ok || sec > 60 {
			return bad()
		}
		rest, step = rest[3:], time.Second
		if len(rest) > 0 && rest[0] == '.' {
			n := 1
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if n == 1 {
				return bad()
			}
			frac := rest[1:n]
			step = time.Millisecond
			for i := 0; i < 9; i++ {
				nanos *= 10
				if i < len(frac) {
					nanos += int(frac[i] - '0')
				}
			}
			if len(frac) < 3 {
				step = time.Duration(math.Pow10(3-len(frac))) * time.Millisecond
			}
			nanos = nanos / 1e6 * 1e6 // index at millisecond resolution
			rest = rest[n:]
		}
	}
	loc, ok := zone(rest)
	if !ok {
		return bad()
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	return t, func(t time.Time) time.Time { return t.Add(step) }, nil
}

// zone parses "", "Z" or "+hh:mm"/"-hh:mm".
func zone(s string) (*time.Location, bool) {
	switch {
	case s == "" || s == "Z":
		return time.UTC, true
	case len(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':':
		return nil, false
	}
	h, okh := digits(s, 1, 2)
	m, okm := digits(s, 4, 2)
	if !okh || !okm || h > 14 || m > 59 {
		return nil, false
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return time.FixedZone(s, off), true
}

// digits reads n ASCII digits of s at i.
func digits(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
