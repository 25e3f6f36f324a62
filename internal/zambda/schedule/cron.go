package schedule

import (
	"fmt"
	"strconv"
	"strings"
)

// cron is a parsed cron(...) body: one bit set per field, plus the
// day-of-month / day-of-week rule, which depends on the month.
type cron struct {
	text  [6]string // canonical fields, for String
	min   uint64    // bits 0-59
	hour  uint64    // bits 0-23
	month uint64    // bits 1-12
	years [4]uint64 // bit y-minYear
	dom   uint64    // bits 1-31, when domKind is domSet
	dow   uint64    // bits 1-7 (1 = Sunday), when dowKind is dowSet
	domKind,
	dowKind uint8
	domN int // nW
	dowN int // nL, n#k: the weekday
	dowK int // n#k: the week
}

const (
	domSet      uint8 = iota
	domAny            // ?
	domLast           // L
	domLastWeek       // LW
	domNear           // nW
)

const (
	dowSet  uint8 = iota
	dowAny        // ?
	dowLast       // nL
	dowNth        // n#k
)

const (
	minYear = 1970
	maxYear = 2199
)

const (
	fMin = iota
	fHour
	fDOM
	fMonth
	fDOW
	fYear
)

var (
	fieldNames = [6]string{"minutes", "hours", "day-of-month", "month", "day-of-week", "year"}
	fieldLo    = [6]int{0, 0, 1, 1, 1, minYear}
	fieldHi    = [6]int{59, 23, 31, 12, 7, maxYear}
	monthNames = [...]string{1: "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNames   = [...]string{1: "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

func fieldErr(i int, format string, args ...any) error {
	return &Error{Field: i + 1, Msg: fmt.Sprintf("cron field %d (%s): ", i+1, fieldNames[i]) + fmt.Sprintf(format, args...)}
}

func parseCron(body string) (cron, error) {
	var c cron
	f := strings.Fields(body)
	if len(f) != 6 {
		return c, invalid("cron(...) takes 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), not %d", len(f))
	}
	for i, s := range f {
		f[i] = strings.ToUpper(s)
	}
	var err error
	if c.min, c.text[fMin], err = parseSet(f[fMin], fMin); err != nil {
		return c, err
	}
	if c.hour, c.text[fHour], err = parseSet(f[fHour], fHour); err != nil {
		return c, err
	}
	if c.month, c.text[fMonth], err = parseSet(f[fMonth], fMonth); err != nil {
		return c, err
	}
	if err := c.parseYears(f[fYear]); err != nil {
		return c, err
	}
	if err := c.parseDOM(f[fDOM]); err != nil {
		return c, err
	}
	if err := c.parseDOW(f[fDOW]); err != nil {
		return c, err
	}
	if (c.domKind == domAny) == (c.dowKind == dowAny) {
		return c, invalid("cron: exactly one of day-of-month and day-of-week must be ?, e.g. cron(0 9 ? * MON *) or cron(0 9 1 * ? *), not %s and %s", f[fDOM], f[fDOW])
	}
	return c, nil
}

// value reads one number, or name for month and day-of-week, of field i;
// it returns the value and its canonical text.
func value(s string, i int) (int, string, error) {
	names := monthNames[:]
	switch i {
	case fDOW:
		names = dayNames[:]
	case fMonth:
	default:
		names = nil
	}
	for v, n := range names {
		if n != "" && s == n {
			return v, n, nil
		}
	}
	if !isDigits(s) {
		if names != nil {
			return 0, "", fieldErr(i, "%q is neither a number nor a name (%s-%s)", clip(s), names[1], names[len(names)-1])
		}
		return 0, "", fieldErr(i, "%q is not a number", clip(s))
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < fieldLo[i] || v > fieldHi[i] {
		return 0, "", fieldErr(i, "%s is out of range %d-%d", clip(s), fieldLo[i], fieldHi[i])
	}
	return v, strconv.Itoa(v), nil
}

// parseSet reads a list of *, n, a-b, each with an optional /step, for
// fields whose values fit in 64 bits (all but the year).
func parseSet(s string, i int) (set uint64, text string, err error) {
	text, err = eachValue(s, i, func(v int) { set |= 1 << uint(v) })
	return set, text, err
}

// eachValue calls add for every value the list s of field i holds and
// returns the list's canonical text. Ranges wrap (22-2 is 22,23,0,1,2),
// except years.
func eachValue(s string, i int, add func(int)) (string, error) {
	lo, hi := fieldLo[i], fieldHi[i]
	span := hi - lo + 1
	parts := strings.Split(s, ",")
	out := make([]string, len(parts))
	for pi, part := range parts {
		base, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || !isDigits(stepText) || n < 1 || n > span {
				return "", fieldErr(i, "the increment in %q must be a number from 1 to %d", clip(part), span)
			}
			step = n
			stepText = strconv.Itoa(n)
		}
		from, to := lo, hi
		var text string
		switch {
		case base == "*":
			text = "*"
		case strings.Contains(base, "-"):
			a, z, _ := strings.Cut(base, "-")
			var at, zt string
			var err error
			if from, at, err = value(a, i); err != nil {
				return "", err
			}
			if to, zt, err = value(z, i); err != nil {
				return "", err
			}
			if to < from {
				if i == fYear {
					return "", fieldErr(i, "the range %q runs backwards", clip(part))
				}
				to += span
			}
			text = at + "-" + zt
		case base == "":
			return "", fieldErr(i, "%q has an empty value", clip(s))
		default:
			v, vt, err := value(base, i)
			if err != nil {
				return "", err
			}
			from, text = v, vt
			if !hasStep {
				to = v
			}
		}
		for v := from; v <= to; v += step {
			add(lo + (v-lo)%span)
		}
		if hasStep {
			text += "/" + stepText
		}
		out[pi] = text
	}
	return strings.Join(out, ","), nil
}

func (c *cron) parseYears(s string) error {
	text, err := eachValue(s, fYear, func(y int) { c.years[(y-minYear)/64] |= 1 << uint((y-minYear)%64) })
	c.text[fYear] = text
	return err
}

func (c *cron) yearOK(y int) bool {
	if y < minYear || y > maxYear {
		return false
	}
	return c.years[(y-minYear)/64]&(1<<uint((y-minYear)%64)) != 0
}

// special reports whether s uses one of the letters that must stand alone.
func special(s string, letters string) bool {
	for _, part := range strings.Split(s, ",") {
		if strings.ContainsAny(part, letters) && part != s {
			return true
		}
	}
	return false
}

func (c *cron) parseDOM(s string) error {
	if special(s, "?LW") {
		return fieldErr(fDOM, "%q: ?, L and W stand alone, not in a list", clip(s))
	}
	c.text[fDOM] = s
	switch {
	case s == "?":
		c.domKind = domAny
	case s == "L":
		c.domKind = domLast
	case s == "LW":
		c.domKind = domLastWeek
	case strings.HasSuffix(s, "W") && isDigits(s[:len(s)-1]):
		v, vt, err := value(s[:len(s)-1], fDOM)
		if err != nil {
			return err
		}
		c.domKind, c.domN, c.text[fDOM] = domNear, v, vt+"W"
	case strings.ContainsAny(s, "?LW"):
		return fieldErr(fDOM, "%q: write L, LW, nW (e.g. 15W) or ?", clip(s))
	default:
		var err error
		c.dom, c.text[fDOM], err = parseSet(s, fDOM)
		return err
	}
	return nil
}

func (c *cron) parseDOW(s string) error {
	if special(s, "?L#") {
		return fieldErr(fDOW, "%q: ?, L and # stand alone, not in a list", clip(s))
	}
	c.text[fDOW] = s
	switch {
	case s == "?":
		c.dowKind = dowAny
	case s == "L":
		c.dow = 1 << 7 // Saturday, the last day of the week
	case strings.HasSuffix(s, "L"):
		v, vt, err := value(s[:len(s)-1], fDOW)
		if err != nil {
			return err
		}
		c.dowKind, c.dowN, c.text[fDOW] = dowLast, v, vt+"L"
	case strings.Contains(s, "#"):
		d, k, _ := strings.Cut(s, "#")
		v, vt, err := value(d, fDOW)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(k)
		if err != nil || !isDigits(k) || n < 1 || n > 5 {
			return fieldErr(fDOW, "in %q the week after # must be 1-5", clip(s))
		}
		c.dowKind, c.dowN, c.dowK, c.text[fDOW] = dowNth, v, n, vt+"#"+strconv.Itoa(n)
	case strings.Contains(s, "?"):
		return fieldErr(fDOW, "%q: ? stands alone", clip(s))
	default:
		var err error
		c.dow, c.text[fDOW], err = parseSet(s, fDOW)
		return err
	}
	return nil
}
