package search

import (
	"math"
	"strconv"
	"strings"
)

// Prefix is the comparator in front of a number, date or quantity value.
//
// Both sides of a comparison are ranges: a search value covers its implicit
// precision (date 2020-01 is the whole month, number 100 is [99.5, 100.5)),
// and an indexed value covers its own precision (DateRange) or is a point.
// With search range [sLo, sHi) and indexed range [vLo, vHi), per the R4
// search page:
//
//	eq  the search range fully contains the indexed range: sLo <= vLo && vHi <= sHi
//	ne  not eq
//	gt  the indexed range reaches above the search range:  vHi > sHi
//	lt  the indexed range reaches below the search range:  vLo < sLo
//	ge  gt or eq
//	le  lt or eq
//	sa  starts after: the indexed range lies wholly above:  vLo >= sHi
//	eb  ends before: the indexed range lies wholly below:   vHi <= sLo
//	ap  approximately: the ranges overlap once the search range is widened
//	    by a tolerance: 10% of the value for numbers and quantities (ApproxNumber);
//	    for dates 10% of the distance between the value and now, at least one
//	    day (ApproxDate).
type Prefix string

// The prefixes of the R4 search page.
const (
	Eq Prefix = "eq"
	Ne Prefix = "ne"
	Gt Prefix = "gt"
	Lt Prefix = "lt"
	Ge Prefix = "ge"
	Le Prefix = "le"
	Sa Prefix = "sa"
	Eb Prefix = "eb"
	Ap Prefix = "ap"
)

var prefixes = []Prefix{Eq, Ne, Gt, Lt, Ge, Le, Sa, Eb, Ap}

// splitPrefix separates a leading prefix; no prefix means eq.
func splitPrefix(s string) (Prefix, string) {
	if len(s) >= 2 {
		for _, p := range prefixes {
			if strings.HasPrefix(s, string(p)) {
				return p, s[2:]
			}
		}
	}
	return Eq, s
}

// MatchRange applies p to a search range and an indexed range, both
// half-open. For ap, widen the search range first (ApproxNumber, ApproxDate).
func MatchRange[T int64 | float64](p Prefix, sLo, sHi, vLo, vHi T) bool {
	eq := sLo <= vLo && vHi <= sHi
	switch p {
	case Eq:
		return eq
	case Ne:
		return !eq
	case Gt:
		return vHi > sHi
	case Lt:
		return vLo < sLo
	case Ge:
		return vHi > sHi || eq
	case Le:
		return vLo < sLo || eq
	case Sa:
		return vLo >= sHi
	case Eb:
		return vHi <= sLo
	case Ap:
		return vLo < sHi && sLo < vHi
	}
	return false
}

// NumberRange returns the implicit range of a decimal search value: half a
// unit of its last digit either side, so "100" is [99.5, 100.5) and "1.50"
// is [1.495, 1.505). Exponents count too: "1e2" is [50, 150).
func NumberRange(text string) (lo, hi float64, err error) {
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, 0, &strconv.NumError{Func: "NumberRange", Num: text, Err: strconv.ErrSyntax}
	}
	mant, exp := text, 0
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		mant = text[:i]
		exp, _ = strconv.Atoi(text[i+1:])
	}
	decimals := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		decimals = len(mant) - i - 1
	}
	half := 0.5 * math.Pow10(exp-decimals)
	return v - half, v + half, nil
}

// ApproxNumber widens a search value by 10% of its magnitude for ap.
func ApproxNumber(v float64) (lo, hi float64) {
	d := math.Abs(v) * 0.1
	return v - d, v + d
}

// ApproxDate widens a search range for ap by 10% of the distance between
// the value and now (the R4 page's suggestion), and by at least a day so
// that "ap today" is useful.
func ApproxDate(lo, hi, nowMs int64) (int64, int64) {
	dist := nowMs - lo
	if dist < 0 {
		dist = -dist
	}
	tol := dist / 10
	if tol < 86_400_000 {
		tol = 86_400_000
	}
	return satAdd(lo, -tol), satAdd(hi, tol)
}

func satAdd(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return MaxTime
	}
	if b < 0 && s > a {
		return MinTime
	}
	return s
}
