package search

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// NormalizeString prepares text for string search: lower case, accents
// removed, runs of whitespace collapsed to one space, trimmed. So "  Chalmers
// Müller " indexes as "chalmers muller" and the query "muller" finds it.
//
// The standard library has no Unicode normalisation, so accents are removed
// in two ways: combining marks (already-decomposed text) are dropped, and
// precomposed Latin letters map to their base letter through foldTable,
// which holds the canonical decompositions of U+00C0-U+024F and
// U+1E00-U+1EFF (from UnicodeData.txt, base letter kept). Letters with no
// decomposition but a conventional ASCII spelling (ß, æ, ø, ł...) are added.
func NormalizeString(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		r = unicode.ToLower(r)
		if r < utf8.RuneSelf {
			b.WriteRune(r)
		} else if f, ok := foldTable[r]; ok {
			b.WriteString(f)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// foldTable maps a lower-case accented letter to its unaccented spelling.
// Built once, never modified.
var foldTable = func() map[rune]string {
	const (
		from = "àáâãäåçèéêëìíîïñòóôõöùúûüýÿāăąćĉċčďēĕėęě" +
			"ĝğġģĥĩīĭįĵķĺļľńņňōŏőŕŗřśŝşšţťũūŭůűųŵŷźżž" +
			"ơưǎǐǒǔǖǘǚǜǟǡǧǩǫǭǰǵǹǻȁȃȅȇȉȋȍȏȑȓȕȗșțȟȧȩȫȭȯ" +
			"ȱȳḁḃḅḇḉḋḍḏḑḓḕḗḙḛḝḟḡḣḥḧḩḫḭḯḱḳḵḷḹḻḽḿṁṃṅṇṉṋ" +
			"ṍṏṑṓṕṗṙṛṝṟṡṣṥṧṩṫṭṯṱṳṵṷṹṻṽṿẁẃẅẇẉẋẍẏẑẓẕẖẗẘ" +
			"ẙạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừử" +
			"ữựỳỵỷỹ"
		to = "aaaaaaceeeeiiiinooooouuuuyyaaaccccdeeeee" +
			"gggghiiiijklllnnnooorrrssssttuuuuuuwyzzz" +
			"ouaiouuuuuaagkoojgnaaaeeiioorruusthaeooo" +
			"oyabbbcdddddeeeeefghhhhhiikkkllllmmmnnnn" +
			"oooopprrrrsssssttttuuuuuvvwwwwwxxyzzzhtw" +
			"yaaaaaaaaaaaaeeeeeeeeiioooooooooooouuuuu" +
			"uuyyyy"
	)
	m := map[rune]string{
		'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'đ': "d", 'ð': "d",
		'ł': "l", 'þ': "th", 'ı': "i", 'ħ': "h", 'ŀ': "l", 'ŧ': "t",
	}
	toRunes := []rune(to)
	for i, r := range []rune(from) {
		m[r] = string(toRunes[i])
	}
	return m
}()
