package fhir

import (
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/fault"
)

// checkJSONText refuses a body that R4's JSON format forbids but Go's
// decoder lets through: invalid UTF-8 (decoded as U+FFFD, so stored other
// than sent), and strings holding control characters other than tab, line
// feed and carriage return (json.html: "\u0000" and the like), or half of a
// surrogate pair (also decoded as U+FFFD). It reads escapes only inside
// strings; a syntax error is left to the decoder.
func checkJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return fault.Invalid("the body is not valid UTF-8 (R4 JSON is UTF-8)")
	}
	in := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case !in:
			in = c == '"'
		case c == '"':
			in = false
		case c < 0x20:
			return fault.Invalid("a string holds the control character U+%04X at byte %d (R4 JSON forbids it)", c, i)
		case c == '\\' && i+1 < len(body):
			i++
			switch body[i] {
			case 'b', 'f':
				// \b and \f decode to control characters, as \u0008 would.
				return fault.Invalid("a string holds the control character U+%04X at byte %d (R4 JSON forbids it)", map[byte]rune{'b': 8, 'f': 12}[body[i]], i-1)
			case 'u':
			default:
				continue
			}
			r, ok := hex4(body, i+1)
			if !ok {
				continue // the decoder reports the bad escape
			}
			i += 4
			switch {
			case r < 0x20 && r != '\t' && r != '\n' && r != '\r':
				return fault.Invalid("a string holds the control character U+%04X at byte %d (R4 JSON forbids it)", r, i-5)
			case r >= 0xD800 && r < 0xDC00:
				// A high surrogate must be followed by a low one.
				if i+2 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
					if lo, ok := hex4(body, i+3); ok && lo >= 0xDC00 && lo < 0xE000 {
						i += 6
						continue
					}
				}
				return fault.Invalid("a string holds an unpaired surrogate \\u%04X at byte %d", r, i-5)
			case r >= 0xDC00 && r < 0xE000:
				return fault.Invalid("a string holds an unpaired surrogate \\u%04X at byte %d", r, i-5)
			}
		}
	}
	return nil
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
