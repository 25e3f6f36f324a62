package search

import (
	"errors"
	"testing"
)

func TestDateRange(t *testing.T) {
	tests := []struct {
		in        string
		low, high string // RFC 3339; empty high means an error is expected
	}{
		{"2020", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"},
		{"2020-01", "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"},
		{"2020-12", "2020-12-01T00:00:00Z", "2021-01-01T00:00:00Z"},
		{"2020-02-29", "2020-02-29T00:00:00Z", "2020-03-01T00:00:00Z"},
		{"2020-01-02T10:00", "2020-01-02T10:00:00Z", "2020-01-02T10:01:00Z"},
		{"2020-01-02T10:00+01:00", "2020-01-02T09:00:00Z", "2020-01-02T09:01:00Z"},
		{"2020-01-02T10:00:05Z", "2020-01-02T10:00:05Z", "2020-01-02T10:00:06Z"},
		{"2020-01-02T10:00:05-05:30", "2020-01-02T15:30:05Z", "2020-01-02T15:30:06Z"},
		{"2020-01-02T10:00:05", "2020-01-02T10:00:05Z", "2020-01-02T10:00:06Z"},
		{"2020-01-02T10:00:05.1Z", "2020-01-02T10:00:05.1Z", "2020-01-02T10:00:05.2Z"},
		{"2020-01-02T10:00:05.12Z", "2020-01-02T10:00:05.12Z", "2020-01-02T10:00:05.13Z"},
		{"2020-01-02T10:00:05.123Z", "2020-01-02T10:00:05.123Z", "2020-01-02T10:00:05.124Z"},
		{"2020-01-02T10:00:05.123456Z", "2020-01-02T10:00:05.123Z", "2020-01-02T10:00:05.124Z"},
		{"0001", "0001-01-01T00:00:00Z", "0002-01-01T00:00:00Z"},
		{"2020-13", "", ""},
		{"2019-02-29", "", ""},
		{"2020-00", "", ""},
		{"2020-1", "", ""},
		{"20", "", ""},
		{"0000", "", ""},
		{"2020-01-02T24:00:00Z", "", ""},
		{"2020-01-02T10", "", ""},
		{"2020-01-02T10:00:05.Z", "", ""},
		{"2020-01-02T10:00:05+1:00", "", ""},
		{"2020-01-02T10:00:05+15:00", "", ""},
		{"2020-01-02 10:00", "", ""},
		{"2020-01-02x", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		lo, hi, err := DateRange(tt.in)
		if tt.high == "" {
			if !errors.Is(err, ErrInvalidDate) {
				t.Errorf("DateRange(%q) = %d, %d, %v; want ErrInvalidDate", tt.in, lo, hi, err)
			}
			continue
		}
		if err != nil || lo != at(t, tt.low) || hi != at(t, tt.high) {
			t.Errorf("DateRange(%q) = %d, %d, %v; want %s .. %s", tt.in, lo, hi, err, tt.low, tt.high)
		}
	}
}

func TestNormalizeString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Chalmers", "chalmers"},
		{"  Peter \t James\n", "peter james"},
		{"Müller", "muller"},
		{"Zoë Ångström", "zoe angstrom"},
		{"Łukasz Straße", "lukasz strasse"},
		{"Nguyễn Văn Độ", "nguyen van do"},
		{"CAFE\u0301", "cafe"}, // decomposed: e + combining acute
		{"Ærø", "aero"},
		{"日本", "日本"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeString(tt.in); got != tt.want {
			t.Errorf("NormalizeString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMatchRange(t *testing.T) {
	// Search value 2020-01 against indexed ranges.
	sLo, sHi := at(t, "2020-01-01T00:00:00Z"), at(t, "2020-02-01T00:00:00Z")
	day := func(d string) [2]int64 {
		lo, hi, err := DateRange(d)
		if err != nil {
			t.Fatal(err)
		}
		return [2]int64{lo, hi}
	}
	inside, before, after, spanning := day("2020-01-15"), day("2019-12-31"), day("2020-02-01"), [2]int64{at(t, "2019-12-31T00:00:00Z"), at(t, "2020-01-02T00:00:00Z")}
	tests := []struct {
		p                               Prefix
		inside, before, after, spanning bool
	}{
		{Eq, true, false, false, false},
		{Ne, false, true, true, true},
		{Gt, false, false, true, false},
		{Lt, false, true, false, true},
		{Ge, true, false, true, false},
		{Le, true, true, false, true},
		{Sa, false, false, true, false},
		{Eb, false, true, false, false},
		{Ap, true, false, false, true},
	}
	for _, tt := range tests {
		got := [4]bool{
			MatchRange(tt.p, sLo, sHi, inside[0], inside[1]), MatchRange(tt.p, sLo, sHi, before[0], before[1]),
			MatchRange(tt.p, sLo, sHi, after[0], after[1]), MatchRange(tt.p, sLo, sHi, spanning[0], spanning[1]),
		}
		if want := [4]bool{tt.inside, tt.before, tt.after, tt.spanning}; got != want {
			t.Errorf("%s: got %v, want %v (inside, before, after, spanning)", tt.p, got, want)
		}
	}
}

func TestNumberRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi float64
	}{
		{"100", 99.5, 100.5},
		{"1.50", 1.495, 1.505},
		{"1e2", 50, 150},
		{"-2.0", -2.05, -1.95},
	}
	for _, tt := range tests {
		lo, hi, err := NumberRange(tt.in)
		if err != nil || abs(lo-tt.lo) > 1e-9 || abs(hi-tt.hi) > 1e-9 {
			t.Errorf("NumberRange(%q) = %v, %v, %v", tt.in, lo, hi, err)
		}
	}
	if _, _, err := NumberRange("abc"); err == nil {
		t.Error("NumberRange(abc) succeeded")
	}
	// ap 100 is 90..110: 109 matches, 111 does not.
	lo, hi := ApproxNumber(100)
	if !MatchRange(Ap, lo, hi, 109, 109.000001) || MatchRange(Ap, lo, hi, 111, 111.000001) {
		t.Error("ap 100 should accept 109 and reject 111")
	}
	now := at(t, "2020-01-01T00:00:00Z")
	dLo, dHi := ApproxDate(at(t, "2010-01-01T00:00:00Z"), at(t, "2010-01-02T00:00:00Z"), now)
	if dLo != at(t, "2010-01-01T00:00:00Z")-(now-at(t, "2010-01-01T00:00:00Z"))/10 || dHi <= at(t, "2010-01-02T00:00:00Z") {
		t.Errorf("ApproxDate widened to %d..%d", dLo, dHi)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
