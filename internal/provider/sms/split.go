package sms

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPart is the SDK's limit: "Messages over 160 characters will be split
// into multiple SMS messages."
const MaxPart = 160

// Split cuts msg into parts of at most MaxPart characters (runes), at the
// last whitespace inside a part when there is one, so words stay whole;
// the whitespace at a cut is dropped. A message of MaxPart characters or
// fewer is one part, unchanged.
func Split(msg string) []string {
	if utf8.RuneCountInString(msg) <= MaxPart {
		return []string{msg}
	}
	var parts []string
	rest := []rune(msg)
	for len(rest) > MaxPart {
		cut := MaxPart
		for i := MaxPart; i > 0; i-- {
			if unicode.IsSpace(rest[i]) {
				cut = i
				break
			}
		}
		part := strings.TrimRightFunc(string(rest[:cut]), unicode.IsSpace)
		if part != "" {
			parts = append(parts, part)
		}
		rest = []rune(strings.TrimLeftFunc(string(rest[cut:]), unicode.IsSpace))
	}
	if len(rest) > 0 {
		parts = append(parts, string(rest))
	}
	return parts
}
