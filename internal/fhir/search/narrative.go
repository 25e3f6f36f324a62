package search

import (
	"html"
	"strings"
	"unicode/utf8"
)

// _text searches the narrative (Resource.text.div, R4 search.html): a value
// matches a resource whose narrative, without its markup and normalised as
// strings are (NormalizeString), contains it as a phrase. The index keeps
// the normalised narrative as string rows of "_text", in chunks short
// enough for any database's index key (PostgreSQL's B-tree entries stop
// near 2.7 KB) that overlap, so a phrase of up to narrativeOverlap bytes is
// always inside one chunk.

// TextParam is the _text parameter of every type.
var TextParam = &Param{Name: "_text", Type: "string", Modifiers: []string{}}

const (
	narrativeChunk   = 600 // bytes per row, at most
	narrativeOverlap = 120 // bytes each chunk repeats from the one before
	narrativeRows    = 40  // rows per resource, at most (~19 KB of text)
)

// appendNarrative adds the _text rows of a narrative's XHTML.
func appendNarrative(out []Value, div string) []Value {
	text := NormalizeString(html.UnescapeString(stripTags(div)))
	for start, n := 0, 0; start < len(text) && n < narrativeRows; n++ {
		end := min(start+narrativeChunk, len(text))
		if end < len(text) {
			// End at a space, so no word is cut (a word longer than a chunk
			// is cut anyway), and at a character boundary.
			if sp := strings.LastIndexByte(text[start:end], ' '); sp > narrativeOverlap {
				end = start + sp
			}
			for end > start && !utf8.RuneStart(text[end]) {
				end--
			}
		}
		out = append(out, Value{Param: TextParam.Name, Type: "string", String: text[start:end]})
		if end >= len(text) {
			break
		}
		next := end - narrativeOverlap
		if next <= start {
			next = end
		}
		for next < end && !utf8.RuneStart(text[next]) {
			next++
		}
		start = next
	}
	return out
}

// stripTags drops XHTML markup, keeping a space where a tag was so that
// words in adjacent cells or paragraphs stay apart.
func stripTags(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>' && in:
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}
