package terminology

import "strings"

// CodeQuery is a code search in one code system (the SDK's terminology.searchCpt and
// searchHcpcs): by code, by description (display) or both.
type CodeQuery struct {
	Text       string
	SearchType string // "code", "description" or "all" ("" is all)
	Strict     bool   // exact match (case-insensitive) instead of prefixes
}

// SearchCodes returns the concepts of cs that q matches, best first: exact code matches,
// then codes starting with the text, then displays in which every word of the text starts a
// word (or, strict, the whole display equal to the text); within each rank, in the code
// system's order.
func SearchCodes(cs *CodeSystem, q CodeQuery) []Coding {
	text := strings.ToLower(strings.TrimSpace(q.Text))
	if text == "" {
		return nil
	}
	byCode := q.SearchType != "description"
	byText := q.SearchType != "code"
	words := strings.Fields(text)
	var ranks [3][]Coding
	for _, c := range cs.Concepts {
		code := strings.ToLower(c.Code)
		disp := strings.ToLower(c.Display)
		rank := -1
		switch {
		case byCode && code == text:
			rank = 0
		case byCode && !q.Strict && strings.HasPrefix(code, text):
			rank = 1
		case byText && q.Strict && disp == text:
			rank = 2
		case byText && !q.Strict && allWordPrefixes(disp, words):
			rank = 2
		}
		if rank >= 0 {
			ranks[rank] = append(ranks[rank], Coding{System: cs.URL, Code: c.Code, Display: c.Display})
		}
	}
	return append(append(ranks[0], ranks[1]...), ranks[2]...)
}

func allWordPrefixes(s string, words []string) bool {
	for _, w := range words {
		if !wordPrefix(s, w) {
			return false
		}
	}
	return len(words) > 0
}
