package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the machine's zoneinfo
)

// utc reads "2006-01-02 15:04" in UTC; "" is the zero time (no fire).
func utc(t testing.TB, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustParse(t testing.TB, expr string) Schedule {
	t.Helper()
	s, err := Parse(expr)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	return s
}

// checkChain calls Next repeatedly from from and compares each result.
func checkChain(t *testing.T, s Schedule, from time.Time, want []string) {
	t.Helper()
	cur := from
	for i, w := range want {
		got := s.Next(cur)
		if !got.Equal(utc(t, w)) {
			t.Fatalf("%s: Next #%d after %v = %v, want %q", s, i+1, cur.UTC(), got.UTC(), w)
		}
		if got.IsZero() {
			return
		}
		cur = got
	}
}

func TestNextCron(t *testing.T) {
	for _, tc := range []struct {
		expr, from string
		want       []string
	}{
		// The examples of the EventBridge docs.
		{"cron(0 10 * * ? *)", "2026-11-22 10:00", []string{"2026-11-23 10:00", "2026-11-24 10:00"}},
		{"cron(15 12 * * ? *)", "2026-11-22 12:14", []string{"2026-11-22 12:15", "2026-11-23 12:15"}},
		{"cron(0 18 ? * MON-FRI *)", "2026-11-20 18:00", []string{"2026-11-23 18:00", "2026-11-24 18:00"}}, // Friday -> Monday
		{"cron(0 8 1 * ? *)", "2026-11-22 00:00", []string{"2026-12-01 08:00", "2027-01-01 08:00"}},
		{"cron(0/15 * * * ? *)", "2026-11-22 10:07", []string{"2026-11-22 10:15", "2026-11-22 10:30", "2026-11-22 10:45", "2026-11-22 11:00"}},
		{"cron(0/10 * ? * MON-FRI *)", "2026-11-21 23:55", []string{"2026-11-23 00:00", "2026-11-23 00:10"}},
		{"cron(0/5 8-17 ? * MON-FRI *)", "2026-11-23 17:55", []string{"2026-11-24 08:00", "2026-11-24 08:05"}},
		{"cron(0 9 ? * 2#1 *)", "2026-11-22 00:00", []string{"2026-12-07 09:00", "2027-01-04 09:00"}}, // first Monday
		{"cron(0 0 L * ? *)", "2028-02-01 00:00", []string{"2028-02-29 00:00", "2028-03-31 00:00"}},   // leap year
		{"cron(0 0 L * ? *)", "2026-02-01 00:00", []string{"2026-02-28 00:00"}},
		{"cron(0 0 LW * ? *)", "2026-01-01 00:00", []string{"2026-01-30 00:00", "2026-02-27 00:00"}},  // Jan 31 and Feb 28 are Saturdays
		{"cron(0 0 LW * ? *)", "2026-05-01 00:00", []string{"2026-05-29 00:00"}},                      // May 31 is a Sunday
		{"cron(0 0 15W * ? *)", "2026-11-01 00:00", []string{"2026-11-16 00:00", "2026-12-15 00:00"}}, // Nov 15 is a Sunday
		{"cron(0 0 14W * ? *)", "2026-02-01 00:00", []string{"2026-02-13 00:00"}},                     // Feb 14 is a Saturday
		// W does not leave the month.
		{"cron(0 0 1W * ? *)", "2026-07-31 00:00", []string{"2026-08-03 00:00"}},                       // Aug 1 is a Saturday
		{"cron(0 0 31W * ? *)", "2026-05-01 00:00", []string{"2026-05-29 00:00"}},                      // May 31 is a Sunday, the last day
		{"cron(0 0 31W * ? *)", "2026-11-01 00:00", []string{"2026-12-31 00:00"}},                      // November has no 31st
		{"cron(0 0 30W * ? *)", "2026-02-01 00:00", []string{"2026-03-30 00:00"}},                      // nor February a 30th
		{"cron(30 23 ? * 6L *)", "2026-11-01 00:00", []string{"2026-11-27 23:30", "2026-12-25 23:30"}}, // last Friday
		{"cron(30 23 ? * FRIL *)", "2026-11-01 00:00", []string{"2026-11-27 23:30"}},
		{"cron(0 12 ? * L *)", "2026-11-22 13:00", []string{"2026-11-28 12:00"}}, // L alone: Saturday
		{"cron(0 9 ? * 5#5 *)", "2026-11-01 00:00", []string{"2026-12-31 09:00", "2027-04-29 09:00", "2027-07-29 09:00"}},
		{"cron(0 9 ? * THU#5 *)", "2026-11-01 00:00", []string{"2026-12-31 09:00"}},
		// Wrapping ranges, names in any case, lists.
		{"cron(0 12 ? * FRI-MON *)", "2026-11-25 00:00", []string{"2026-11-27 12:00", "2026-11-28 12:00", "2026-11-29 12:00", "2026-11-30 12:00", "2026-12-04 12:00"}},
		{"cron(0 22-1 * * ? *)", "2026-11-22 21:00", []string{"2026-11-22 22:00", "2026-11-22 23:00", "2026-11-23 00:00", "2026-11-23 01:00", "2026-11-23 22:00"}},
		{"cron(0 0 1 nov-feb ? *)", "2026-10-15 00:00", []string{"2026-11-01 00:00", "2026-12-01 00:00", "2027-01-01 00:00", "2027-02-01 00:00", "2027-11-01 00:00"}},
		{"cron(5,35 6,18 10-11 * ? *)", "2026-11-10 18:35", []string{"2026-11-11 06:05", "2026-11-11 06:35", "2026-11-11 18:05", "2026-11-11 18:35", "2026-12-10 06:05"}},
		{"cron(10/20 * * * ? *)", "2026-11-22 10:50", []string{"2026-11-22 11:10", "2026-11-22 11:30", "2026-11-22 11:50"}},
		{"cron(0 0 1-31/10 * ? *)", "2026-01-31 00:00", []string{"2026-02-01 00:00", "2026-02-11 00:00", "2026-02-21 00:00", "2026-03-01 00:00"}},
		// Years: leap days, gaps, the end.
		{"cron(0 0 29 FEB ? 2025-2030)", "2025-01-01 00:00", []string{"2028-02-29 00:00", ""}},
		{"cron(0 0 1 JAN ? 2027,2029)", "2026-06-01 00:00", []string{"2027-01-01 00:00", "2029-01-01 00:00", ""}},
		{"cron(0 0 1 JAN ? 2027)", "2027-01-01 00:00", []string{""}},
		{"cron(59 23 31 DEC ? 2199)", "2199-12-31 23:58", []string{"2199-12-31 23:59", ""}},
		{"cron(0 0 31 FEB ? *)", "2026-01-01 00:00", []string{""}}, // never
		{"cron(0 0 1 1 ? *)", "1900-05-05 00:00", []string{"1970-01-01 00:00"}},
		// Strictly after: seconds past a fire time do not fire it again.
		{"cron(0 10 * * ? *)", "2026-11-22 09:59", []string{"2026-11-22 10:00"}},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			checkChain(t, mustParse(t, tc.expr), utc(t, tc.from), tc.want)
		})
	}
	s := mustParse(t, "cron(0 10 * * ? *)")
	if got := s.Next(utc(t, "2026-11-22 10:00").Add(30 * time.Second)); !got.Equal(utc(t, "2026-11-23 10:00")) {
		t.Errorf("Next(10:00:30) = %v", got)
	}
	if got := s.Next(utc(t, "2026-11-22 09:59").Add(59 * time.Second)); !got.Equal(utc(t, "2026-11-22 10:00")) {
		t.Errorf("Next(09:59:59) = %v", got)
	}
}

func TestNextFromRate(t *testing.T) {
	anchor := utc(t, "2026-11-22 10:00").Add(17 * time.Second)
	for _, tc := range []struct {
		expr, after string
		plus        time.Duration // added to after
		want        string        // want + 17s
	}{
		{"rate(5 minutes)", "2026-11-22 10:07", 0, "2026-11-22 10:10"},
		{"rate(5 minutes)", "2026-11-22 10:10", 17 * time.Second, "2026-11-22 10:15"}, // on a tick: the next one
		{"rate(5 minutes)", "2026-11-22 10:10", 16 * time.Second, "2026-11-22 10:10"},
		{"rate(5 minutes)", "2026-11-22 09:00", 0, "2026-11-22 10:00"}, // before the anchor: the anchor
		{"rate(1 minute)", "2026-11-22 10:00", 17 * time.Second, "2026-11-22 10:01"},
		{"rate(1 hour)", "2027-03-01 00:30", 0, "2027-03-01 01:00"},
		{"rate(2 days)", "2026-11-23 10:00", 17 * time.Second, "2026-11-24 10:00"},
		{"rate(1 day)", "2026-11-22 10:00", 0, "2026-11-22 10:00"},
	} {
		s := mustParse(t, tc.expr)
		got := s.NextFrom(anchor, utc(t, tc.after).Add(tc.plus))
		if want := utc(t, tc.want).Add(17 * time.Second); !got.Equal(want) {
			t.Errorf("%s from %s+%v: got %v, want %v", tc.expr, tc.after, tc.plus, got, want)
		}
	}
	// Every replica, whatever its clock reads, lands on the same grid.
	s := mustParse(t, "rate(7 minutes)")
	for i := range 100 {
		after := anchor.Add(time.Duration(i) * 61 * time.Second)
		got := s.NextFrom(anchor, after)
		if !got.After(after) || got.Sub(anchor)%(7*time.Minute) != 0 || got.Sub(after) > 7*time.Minute {
			t.Fatalf("NextFrom(%v) = %v: not the next grid point", after, got)
		}
	}
	// Far apart, past what time.Duration holds.
	far := time.Date(2600, 1, 1, 0, 0, 3, 0, time.UTC)
	got := s.NextFrom(anchor, far)
	if !got.After(far) || got.Sub(far) > 7*time.Minute || (got.Unix()-anchor.Unix())%(7*60) != 0 {
		t.Errorf("far NextFrom = %v", got)
	}
	// Next on a rate counts from after itself.
	if got := s.Next(anchor); !got.Equal(anchor.Add(7 * time.Minute)) {
		t.Errorf("Next = %v", got)
	}
	if s.Period() != 7*time.Minute {
		t.Errorf("Period = %v", s.Period())
	}
}

func TestAt(t *testing.T) {
	s := mustParse(t, "at(2026-12-01T09:00:30)")
	at := utc(t, "2026-12-01 09:00").Add(30 * time.Second)
	if got := s.Next(utc(t, "2026-11-22 00:00")); !got.Equal(at) {
		t.Errorf("Next = %v", got)
	}
	if got := s.Next(at); !got.IsZero() {
		t.Errorf("Next after the time = %v, want none", got)
	}
	ny, _ := time.LoadLocation("America/New_York")
	if got := s.In(ny).Next(utc(t, "2026-11-22 00:00")); !got.Equal(at.Add(5 * time.Hour)) {
		t.Errorf("in New York: %v", got)
	}
	// A wall time the clock skips still fires, just after the change.
	skipped := mustParse(t, "at(2026-03-08T02:30:00)").In(ny)
	if got := skipped.Next(utc(t, "2026-03-01 00:00")); !got.Equal(utc(t, "2026-03-08 07:30")) {
		t.Errorf("skipped wall time: %v", got.UTC())
	}
}

func TestIn(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// 2026: clocks go 02:00 -> 03:00 on March 8, 02:00 -> 01:00 on November 1.
	for _, tc := range []struct {
		expr, from string // from in UTC
		want       []string
	}{
		{"cron(0 9 * * ? *)", "2026-03-07 00:00", []string{"2026-03-07 14:00", "2026-03-08 13:00", "2026-03-09 13:00"}},
		{"cron(30 2 * * ? *)", "2026-03-07 12:00", []string{"2026-03-09 06:30"}},                     // 02:30 on March 8 does not exist
		{"cron(30 1 * * ? *)", "2026-10-31 12:00", []string{"2026-11-01 05:30", "2026-11-02 06:30"}}, // 01:30 happens twice, fires once
		{"cron(0/20 * * * ? *)", "2026-11-01 04:50", []string{"2026-11-01 05:00", "2026-11-01 05:20", "2026-11-01 05:40", "2026-11-01 07:00"}},
		{"cron(0/20 * * * ? *)", "2026-03-08 06:50", []string{"2026-03-08 07:00", "2026-03-08 07:20", "2026-03-08 07:40", "2026-03-08 08:00"}}, // 01:xx EST, then 03:00 EDT
		{"cron(0 0 L * ? *)", "2026-11-22 00:00", []string{"2026-11-30 05:00"}},                                                                // midnight local on Nov 30
		{"rate(1 hour)", "2026-11-01 04:30", []string{"2026-11-01 05:30", "2026-11-01 06:30"}},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			s := mustParse(t, tc.expr).In(ny)
			checkChain(t, s, utc(t, tc.from), tc.want)
			if got := s.Next(utc(t, tc.from)); got.Location() != ny {
				t.Errorf("Next is in %v, want the schedule's zone", got.Location())
			}
		})
	}
	// From inside the repeated hour (the second 01:10), 01:30 has fired.
	s := mustParse(t, "cron(30 1 * * ? *)").In(ny)
	if got := s.Next(utc(t, "2026-11-01 06:10")); !got.Equal(utc(t, "2026-11-02 06:30")) {
		t.Errorf("from the repeated hour: %v", got.UTC())
	}
	if mustParse(t, "cron(0 9 * * ? *)").In(nil).Location() != time.UTC {
		t.Error("In(nil) is not UTC")
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"cron(0 10 * * ? *)", "cron(0 10 * * ? *)"},
		{"  cron( 0   18 ? *  mon-fri * ) ", "cron(0 18 ? * MON-FRI *)"},
		{"cron(00 08 01 jan,Jul ? 2026-2030/2)", "cron(0 8 1 JAN,JUL ? 2026-2030/2)"},
		{"cron(0/05 * ? * 2#1 *)", "cron(0/5 * ? * 2#1 *)"},
		{"cron(0 0 lw * ? *)", "cron(0 0 LW * ? *)"},
		{"cron(0 0 05W * ? *)", "cron(0 0 5W * ? *)"},
		{"cron(0 0 ? * fril *)", "cron(0 0 ? * FRIL *)"},
		{"cron(*/10 22-2 ? * sat-sun *)", "cron(*/10 22-2 ? * SAT-SUN *)"},
		{"rate(1 minute)", "rate(1 minute)"},
		{"rate(005 Minutes)", "rate(5 minutes)"},
		{"rate(24 hours)", "rate(24 hours)"},
		{"rate( 2   days )", "rate(2 days)"},
		{"at(2026-12-01T09:00:00)", "at(2026-12-01T09:00:00)"},
	} {
		s := mustParse(t, tc.in)
		if s.String() != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, s.String(), tc.want)
		}
		if again := mustParse(t, s.String()); again.String() != s.String() {
			t.Errorf("%q does not round-trip: %q", s.String(), again.String())
		}
	}
	if (Schedule{}).String() != "" || !(Schedule{}).Next(time.Now()).IsZero() {
		t.Error("the zero Schedule should be empty and never fire")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		expr, msg string
		field     int
	}{
		{"cron(0 9 * * MON *)", "exactly one of day-of-month and day-of-week must be ?", 0},
		{"cron(0 9 ? * ? *)", "exactly one", 0},
		{"cron(0 9 * *)", "takes 6 fields", 0},
		{"cron(0 9 * * ? * *)", "not 7", 0},
		{"cron(60 9 ? * MON *)", "cron field 1 (minutes): 60 is out of range 0-59", 1},
		{"cron(0 24 ? * MON *)", "cron field 2 (hours): 24 is out of range 0-23", 2},
		{"cron(0 9 32 * ? *)", "cron field 3 (day-of-month): 32 is out of range 1-31", 3},
		{"cron(0 9 0 * ? *)", "cron field 3 (day-of-month): 0 is out of range 1-31", 3},
		{"cron(0 9 1 13 ? *)", "cron field 4 (month): 13 is out of range 1-12", 4},
		{"cron(0 9 ? * 8 *)", "cron field 5 (day-of-week): 8 is out of range 1-7", 5},
		{"cron(0 9 ? * 0 *)", "cron field 5 (day-of-week): 0 is out of range 1-7", 5},
		{"cron(0 9 1 * ? 1969)", "cron field 6 (year): 1969 is out of range 1970-2199", 6},
		{"cron(0 9 1 * ? 2200)", "out of range 1970-2199", 6},
		{"cron(0 9 ? FOO * *)", `cron field 4 (month): "FOO" is neither a number nor a name (JAN-DEC)`, 4},
		{"cron(0 9 ? * MONDAY *)", `"MONDAY" is neither a number nor a name (SUN-SAT)`, 5},
		{"cron(0 MON 1 * ? *)", `cron field 2 (hours): "MON" is not a number`, 2},
		{"cron(0 9 ? * 2#6 *)", `cron field 5 (day-of-week): in "2#6" the week after # must be 1-5`, 5},
		{"cron(0 9 ? * 3#1,6#3 *)", "stand alone", 5},
		{"cron(0 9 L,15 * ? *)", "stand alone", 3},
		{"cron(0 9 L-3 * ? *)", "write L, LW, nW", 3},
		{"cron(0 9 W * ? *)", "write L, LW, nW", 3},
		{"cron(0 9 32W * ? *)", "32 is out of range 1-31", 3},
		{"cron(0 9 ? * 8L *)", "8 is out of range 1-7", 5},
		{"cron(0 9 1 * ? 2030-2026)", `cron field 6 (year): the range "2030-2026" runs backwards`, 6},
		{"cron(0/0 9 1 * ? *)", `cron field 1 (minutes): the increment in "0/0" must be a number from 1 to 60`, 1},
		{"cron(0/x 9 1 * ? *)", "increment", 1},
		{"cron(0 9 1,,2 * ? *)", "empty value", 3},
		{"cron(-1 9 1 * ? *)", "is not a number", 1},
		{"cron(+1 9 1 * ? *)", "is not a number", 1},
		{"cron(0 ? 1 * ? *)", `cron field 2 (hours): "?" is not a number`, 2},
		{"rate(1 minutes)", "write rate(1 minute)", 0},
		{"rate(5 minute)", "write rate(5 minutes)", 0},
		{"rate(0 minutes)", "positive", 0},
		{"rate(-5 minutes)", "positive", 0},
		{"rate(5 weeks)", "minute(s), hour(s) or day(s)", 0},
		{"rate(5)", "a value and a unit", 0},
		{"rate(99999999 days)", "longest rate", 0},
		{"every 5 minutes", "is not a schedule expression", 0},
		{"cron 0 9 * * ? *", "is not a schedule expression", 0},
		{"", "is not a schedule expression", 0},
		{"at(tomorrow)", "yyyy-mm-ddThh:mm:ss", 0},
		{"at(2026-02-30T00:00:00)", "yyyy-mm-ddThh:mm:ss", 0},
	} {
		_, err := Parse(tc.expr)
		var e *Error
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want an *Error with %q", tc.expr, err, tc.msg)
			continue
		}
		if e.Field != tc.field {
			t.Errorf("Parse(%q): field %d, want %d", tc.expr, e.Field, tc.field)
		}
	}
}

// A schedule that never fires must not take long to say so.
func TestNextIsFast(t *testing.T) {
	s := mustParse(t, "cron(0 0 30 FEB ? *)")
	start := time.Now()
	for range 100 {
		if !s.Next(utc(t, "1970-01-01 00:00")).IsZero() {
			t.Fatal("30 February fired")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("100 searches to 2199 took %v", d)
	}
}
