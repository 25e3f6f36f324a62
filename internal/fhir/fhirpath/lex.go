package fhirpath

import (
	"fmt"
	"strings"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokIdent
	tokString
	tokNumber
	tokOp   // operators and punctuation: . ( ) [ ] , | = != ~ !~ < > <= >= + - * / &
	tokVar  // %name
	tokThis // $this, $index, $total
)

type token struct {
	kind tokenKind
	text string
	pos  int
}

// lex splits an expression into tokens. Keywords (and, or, is, as, true...)
// stay identifiers; the parser gives them meaning by position.
func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, src[i:j], i})
			i = j
		case c == '`':
			j := strings.IndexByte(src[i+1:], '`')
			if j < 0 {
				return nil, fmt.Errorf("unterminated delimited identifier at %d", i)
			}
			toks = append(toks, token{tokIdent, src[i+1 : i+1+j], i})
			i += j + 2
		case c == '\'':
			s, n, err := lexString(src[i:])
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, token{tokString, s, i})
			i += n
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && (src[j] >= '0' && src[j] <= '9') {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			toks = append(toks, token{tokNumber, src[i:j], i})
			i = j
		case c == '%' || c == '$':
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("expected a name after %q at %d", c, i)
			}
			kind := tokVar
			if c == '$' {
				kind = tokThis
			}
			toks = append(toks, token{kind, src[i+1 : j], i})
			i = j
		case c == '@':
			return nil, fmt.Errorf("date/time literals (@...) are not supported (at %d)", i)
		default:
			op := string(c)
			if i+1 < len(src) {
				switch two := src[i : i+2]; two {
				case "!=", "!~", "<=", ">=":
					op = two
				}
			}
			if !strings.Contains(".()[],|=~<>+-*/&{}", op) && op != "!=" && op != "!~" && op != "<=" && op != ">=" {
				return nil, fmt.Errorf("unexpected character %q at %d", c, i)
			}
			toks = append(toks, token{tokOp, op, i})
			i += len(op)
		}
	}
	return append(toks, token{tokEOF, "", len(src)}), nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// lexString reads a single-quoted string literal with FHIRPath escapes and
// returns its value and the number of bytes consumed.
func lexString(src string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(src); i++ {
		switch c := src[i]; c {
		case '\'':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(src) {
				return "", 0, fmt.Errorf("unterminated string")
			}
			i++
			switch e := src[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'f':
				b.WriteByte('\f')
			case '\'', '"', '`', '\\', '/':
				b.WriteByte(e)
			default:
				return "", 0, fmt.Errorf("unsupported escape \\%c", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}
