package search

import (
	"fmt"
	"strings"
	"unicode"
)

// _filter (R4 search_filter.html) combines conditions on the searched
// type's own parameters with and, or, not and parentheses:
//
//	_filter=name co "pet" and (birthdate ge 2000-01-01 or gender eq other)
//
// Each condition becomes one Clause with one value, answered by the same
// index as the plain parameter. Supported operators by parameter type:
// string eq ne co sw ew; token eq ne in ni; reference eq ne re; uri eq ne
// sw; number, date and quantity eq ne gt lt ge le sa eb ap; pr (present,
// true or false) on any. Not supported (a 400 naming them): parameter paths
// with filters or chains (code[system eq x].code, subject.name), and the
// operators po, ss and sb.

// Filter is one _filter value: its text as given, and its tree.
type Filter struct {
	Text string
	Root *FilterNode
}

// FilterNode is an operator over Kids ("and", "or", "not") or, with Op
// "", one condition.
type FilterNode struct {
	Op     string
	Kids   []*FilterNode
	Clause *Clause
	// Negate turns the condition into its opposite (ne).
	Negate bool
}

// maxFilterNodes bounds the conditions and operators of one _filter.
const maxFilterNodes = 64

// ParseFilter parses a _filter expression on resourceType.
func ParseFilter(resourceType, text string) (*FilterNode, error) {
	toks, err := filterTokens(text)
	if err != nil {
		return nil, err
	}
	p := &filterParser{typ: resourceType, toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return n, nil
}

type filterToken struct {
	text   string
	quoted bool // a "string": never a keyword or a parenthesis
}

// filterTokens splits text into words, "strings" (JSON-style escapes) and
// parentheses.
func filterTokens(text string) ([]filterToken, error) {
	var out []filterToken
	rs := []rune(text)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(' || r == ')':
			out = append(out, filterToken{text: string(r)})
			i++
		case r == '"':
			var b strings.Builder
			i++
			for ; i < len(rs) && rs[i] != '"'; i++ {
				if rs[i] == '\\' && i+1 < len(rs) {
					i++
					switch rs[i] {
					case 't':
						b.WriteRune('\t')
					case 'n':
						b.WriteRune('\n')
					case 'r':
						b.WriteRune('\r')
					default:
						b.WriteRune(rs[i])
					}
					continue
				}
				b.WriteRune(rs[i])
			}
			if i >= len(rs) {
				return nil, fmt.Errorf("unterminated string")
			}
			i++
			out = append(out, filterToken{text: b.String(), quoted: true})
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '(' && rs[j] != ')' && rs[j] != '"' {
				j++
			}
			out = append(out, filterToken{text: string(rs[i:j])})
			i = j
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty filter")
	}
	return out, nil
}

type filterParser struct {
	typ   string
	toks  []filterToken
	pos   int
	nodes int
}

func (p *filterParser) peekWord(w string) bool {
	return p.pos < len(p.toks) && !p.toks[p.pos].quoted && strings.EqualFold(p.toks[p.pos].text, w)
}

func (p *filterParser) node(n *FilterNode) (*FilterNode, error) {
	if p.nodes++; p.nodes > maxFilterNodes {
		return nil, fmt.Errorf("more than %d conditions and operators", maxFilterNodes)
	}
	return n, nil
}

// or := and ("or" and)*; and binds tighter.
func (p *filterParser) or() (*FilterNode, error) {
	return p.binary("or", p.and)
}

func (p *filterParser) and() (*FilterNode, error) {
	return p.binary("and", p.unary)
}

func (p *filterParser) binary(op string, next func() (*FilterNode, error)) (*FilterNode, error) {
	first, err := next()
	if err != nil {
		return nil, err
	}
	kids := []*FilterNode{first}
	for p.peekWord(op) {
		p.pos++
		k, err := next()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return p.node(&FilterNode{Op: op, Kids: kids})
}

// unary := "not" "(" or ")" | "(" or ")" | condition.
func (p *filterParser) unary() (*FilterNode, error) {
	if p.peekWord("not") {
		p.pos++
		if !p.peekWord("(") {
			return nil, fmt.Errorf("not must be followed by a parenthesis")
		}
		inner, err := p.group()
		if err != nil {
			return nil, err
		}
		return p.node(&FilterNode{Op: "not", Kids: []*FilterNode{inner}})
	}
	if p.peekWord("(") {
		return p.group()
	}
	return p.condition()
}

func (p *filterParser) group() (*FilterNode, error) {
	p.pos++ // "("
	if p.nodes++; p.nodes > maxFilterNodes {
		return nil, fmt.Errorf("more than %d conditions and operators", maxFilterNodes)
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if !p.peekWord(")") {
		return nil, fmt.Errorf("missing )")
	}
	p.pos++
	return n, nil
}

// condition := parameter operator value.
func (p *filterParser) condition() (*FilterNode, error) {
	if p.pos+3 > len(p.toks) {
		return nil, fmt.Errorf("a condition is parameter operator value")
	}
	name, op, val := p.toks[p.pos], p.toks[p.pos+1], p.toks[p.pos+2]
	if name.quoted || op.quoted || (!val.quoted && (val.text == "(" || val.text == ")")) {
		return nil, fmt.Errorf("a condition is parameter operator value, near %q", name.text)
	}
	p.pos += 3
	if strings.ContainsAny(name.text, "[].") {
		return nil, fmt.Errorf("parameter paths with filters or chains (%s) are not supported", name.text)
	}
	param, ok := Lookup(p.typ, name.text)
	if !ok {
		return nil, fmt.Errorf("unknown search parameter %q for %s", name.text, p.typ)
	}
	n, err := filterCondition(param, strings.ToLower(op.text), val.text)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", name.text, op.text, val.text, err)
	}
	return p.node(n)
}

// filterCondition maps one condition onto a clause of param.
func filterCondition(param *Param, op, value string) (*FilterNode, error) {
	c := &Clause{Param: param}
	n := &FilterNode{Clause: c}
	parse := func(raw string) error {
		cond, err := parseCond(c, raw)
		if err != nil {
			return err
		}
		if cond == nil {
			return fmt.Errorf("the value is empty")
		}
		c.Values = []Cond{*cond}
		return nil
	}
	if op == "pr" {
		if value != "true" && value != "false" {
			return nil, fmt.Errorf("pr takes true or false")
		}
		c.Modifier = "missing"
		c.Values = []Cond{{Text: map[string]string{"true": "false", "false": "true"}[value], Missing: value == "false"}}
		return n, nil
	}
	// Values are single: a literal comma or pipe is the value's own.
	esc := strings.NewReplacer(`\`, `\\`, `,`, `\,`, `$`, `\$`).Replace
	switch param.Type {
	case "string":
		switch op {
		case "eq", "ne", "sw", "ew", "co":
			if err := parse(esc(value)); err != nil {
				return nil, err
			}
			c.Values[0].Op = map[string]string{"eq": "eq", "ne": "eq", "ew": "ew"}[op]
			if op == "co" {
				c.Modifier = "contains"
			}
			n.Negate = op == "ne"
			return n, nil
		}
	case "token":
		switch op {
		case "eq", "ne":
			n.Negate = op == "ne"
			return n, parse(esc(value))
		case "in", "ni":
			c.Modifier = map[string]string{"in": "in", "ni": "not-in"}[op]
			return n, parse(esc(value))
		}
	case "reference":
		switch op {
		case "eq", "ne", "re":
			n.Negate = op == "ne"
			return n, parse(esc(value))
		}
	case "uri":
		switch op {
		case "eq", "ne", "sw":
			if op == "sw" {
				c.Modifier = "below"
			}
			n.Negate = op == "ne"
			return n, parse(esc(value))
		}
	case "number", "date", "quantity":
		switch op {
		case "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap":
			return n, parse(op + esc(value))
		}
	default:
		return nil, fmt.Errorf("%s parameters cannot be used in _filter", param.Type)
	}
	return nil, fmt.Errorf("operator %q does not apply to a %s parameter", op, param.Type)
}

// clauses lists the conditions under n.
func (n *FilterNode) clauses(out []*Clause) []*Clause {
	if n == nil {
		return out
	}
	if n.Clause != nil {
		out = append(out, n.Clause)
	}
	for _, k := range n.Kids {
		out = k.clauses(out)
	}
	return out
}

// FilterClauses lists the conditions of every _filter of q, for the checks
// every clause gets.
func (q *Query) FilterClauses() []*Clause {
	var out []*Clause
	for _, f := range q.Filters {
		out = f.Root.clauses(out)
	}
	return out
}
