package search

import (
	"strings"
	"testing"
)

func TestAppendNarrative(t *testing.T) {
	rows := appendNarrative(nil, `<div xmlns="http://www.w3.org/1999/xhtml"><p>Patient has <b>chronic</b> heart&#160;failure</p><table><tr><td>Zoë</td><td>B&amp;B</td></tr></table></div>`)
	if len(rows) != 1 || rows[0].String != "patient has chronic heart failure zoe b&b" || rows[0].Param != "_text" || rows[0].Type != "string" {
		t.Fatalf("rows %+v", rows)
	}
	// A long narrative: chunks within the bound, and every phrase of up
	// to narrativeOverlap bytes whole in one of them.
	var words []string
	for i := range 400 {
		words = append(words, strings.Repeat(string(rune('a'+i%26)), 1+i%9))
	}
	text := strings.Join(words, " ")
	rows = appendNarrative(nil, "<div>"+text+"</div>")
	if len(rows) < 3 {
		t.Fatalf("%d rows for %d bytes", len(rows), len(text))
	}
	for _, r := range rows {
		if len(r.String) > narrativeChunk {
			t.Fatalf("a row of %d bytes", len(r.String))
		}
	}
	for i := 0; i+8 < len(words); i += 7 {
		phrase := strings.Join(words[i:i+8], " ")
		if len(phrase) > narrativeOverlap {
			continue
		}
		found := false
		for _, r := range rows {
			found = found || strings.Contains(r.String, phrase)
		}
		if !found {
			t.Fatalf("phrase %q (words %d..%d) is in no row", phrase, i, i+8)
		}
	}
	// Bounded: a huge narrative gives at most narrativeRows rows.
	if rows := appendNarrative(nil, strings.Repeat("word ", 10000)); len(rows) != narrativeRows {
		t.Fatalf("%d rows, want %d", len(rows), narrativeRows)
	}
}
