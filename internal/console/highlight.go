package console

import (
	"html/template"
	"strings"
)

// highlightJSON marks up JSON text for the console's <pre> blocks: every
// piece of the input is HTML-escaped first, then strings, keys, numbers
// and literals are wrapped in spans whose classes the stylesheet colours
// (no inline style, so the CSP holds). Text that is not JSON is printed
// escaped and unmarked: the output is always safe, whatever the input.
func highlightJSON(s string) template.HTML {
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	plain := 0 // start of the pending unmarked run
	flush := func(end int) {
		escapeTo(&b, s[plain:end])
	}
	span := func(class string, start, end int) {
		flush(start)
		b.WriteString(`<span class="`)
		b.WriteString(class)
		b.WriteString(`">`)
		escapeTo(&b, s[start:end])
		b.WriteString(`</span>`)
		plain = end
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			end := stringEnd(s, i)
			class := "j-str"
			if isKey(s, end) {
				class = "j-key"
			}
			span(class, i, end)
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			end := i + 1
			for end < len(s) && strings.IndexByte("0123456789+-.eE", s[end]) >= 0 {
				end++
			}
			span("j-num", i, end)
			i = end
		case c >= 'a' && c <= 'z':
			end := i + 1
			for end < len(s) && s[end] >= 'a' && s[end] <= 'z' {
				end++
			}
			if w := s[i:end]; w == "true" || w == "false" || w == "null" {
				span("j-lit", i, end)
			}
			i = end
		default:
			i++
		}
	}
	flush(len(s))
	return template.HTML(b.String()) //nolint:gosec // every byte of s went through escapeTo
}

// stringEnd is the index just past the JSON string starting at s[i] (a
// quote): its closing quote, or the end of the line or text when it has
// none.
func stringEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if j+1 < len(s) && s[j+1] != '\n' {
				j++
			}
		case '"':
			return j + 1
		case '\n':
			return j
		}
	}
	return len(s)
}

// isKey reports whether the string ending at end is an object key (a colon
// follows, after spaces).
func isKey(s string, end int) bool {
	for ; end < len(s); end++ {
		switch s[end] {
		case ' ', '\t', '\r', '\n':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// escapeTo writes s with the five characters HTML gives meaning to
// escaped, every other byte as it is (so unescaping gives s back).
func escapeTo(b *strings.Builder, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '"':
			rep = "&#34;"
		case '\'':
			rep = "&#39;"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(rep)
		last = i + 1
	}
	b.WriteString(s[last:])
}
