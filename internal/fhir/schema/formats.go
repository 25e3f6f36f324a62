package schema

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// reSpace is what \s matches in the spec regexes (as RE2 reads them).
const reSpace = "\t\n\f\r "

// formatCheck returns the check for a primitive's string form: the spec's regex, anchored.
// The most frequent and the longest values get a hand-written equivalent instead, because
// Go's regexp costs a few hundred nanoseconds per call; TestHandWrittenFormats checks each one
// against the spec regex. Some checks add what a regex cannot say (calendar days, 32-bit
// ranges).
func formatCheck(name, regex string) (func(string) bool, error) {
	switch name {
	case "string", "markdown":
		// The spec regex is [ \r\n\t\S]+: anything but form feeds (and vertical tab variants
		// RE2's \s does not cover). Long narrative text makes a byte scan worth it.
		return func(s string) bool { return s != "" && !strings.ContainsRune(s, '\f') }, nil
	case "xhtml":
		return func(s string) bool { return s != "" }, nil
	case "base64Binary":
		return validBase64, nil
	case "uri", "url", "canonical":
		// \S*; emptiness is reported before formats are checked.
		return func(s string) bool { return !strings.ContainsAny(s, reSpace) }, nil
	case "code":
		return validCode, nil
	case "id":
		return validID, nil
	case "boolean", "decimal":
		// Checked as JSON values; encoding/json already enforces the number grammar, which
		// is the decimal regex.
		return func(string) bool { return true }, nil
	}
	if regex == "" {
		return nil, fmt.Errorf("primitive %s has no regex", name)
	}
	re, err := regexp.Compile(`^(?:` + regex + `)$`)
	if err != nil {
		return nil, fmt.Errorf("primitive %s: regex: %w", name, err)
	}
	match := re.MatchString
	switch name {
	case "integer", "positiveInt", "unsignedInt":
		// The regexes allow any number of digits; the spec limits all three to 32 bits.
		lowest := int64(-1 << 31)
		switch name {
		case "positiveInt":
			lowest = 1
		case "unsignedInt":
			lowest = 0
		}
		return func(s string) bool {
			if !match(s) {
				return false
			}
			n, err := strconv.ParseInt(s, 10, 32)
			return err == nil && n >= lowest
		}, nil
	case "date", "dateTime", "instant":
		// The regexes accept 2023-02-31; a calendar check catches days a month lacks.
		return func(s string) bool { return match(s) && validDay(s) }, nil
	}
	return match, nil
}

// validDay checks the day of a value that already matched a date regex (YYYY[-MM[-DD...]]).
func validDay(s string) bool {
	if len(s) < 10 {
		return true
	}
	year, _ := strconv.Atoi(s[:4])
	month, _ := strconv.Atoi(s[5:7])
	day, _ := strconv.Atoi(s[8:10])
	return day <= daysIn(year, month)
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// validBase64 accepts what the spec regex (\s*([0-9a-zA-Z\+/=]){4}\s*)+ accepts: base64
// characters in groups of four, whitespace allowed between groups. It scans bytes rather than
// running the regex because attachments can be megabytes.
func validBase64(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
			n++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			if n%4 != 0 {
				return false
			}
		default:
			return false
		}
	}
	return n > 0 && n%4 == 0
}

// validCode is the code regex [^\s]+(\s[^\s]+)*: no leading, trailing or doubled whitespace.
func validCode(s string) bool {
	prevSpace := true // as if preceded by whitespace, so a leading one fails
	for i := 0; i < len(s); i++ {
		space := strings.IndexByte(reSpace, s[i]) >= 0
		if space && prevSpace {
			return false
		}
		prevSpace = space
	}
	return !prevSpace
}

// validID is the id regex [A-Za-z0-9\-\.]{1,64}.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
