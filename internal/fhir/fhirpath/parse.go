package fhirpath

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported marks valid FHIRPath that this subset deliberately does not
// implement, so callers can tell "fix your expression" from "not here".
var ErrUnsupported = errors.New("unsupported FHIRPath")

// maxDepth bounds parser recursion: search expressions nest a few levels,
// and a fuzzed "((((..." must not exhaust the stack.
const maxDepth = 64

// Binary operator precedence, loosest first, from the FHIRPath grammar.
var precedence = map[string]int{
	"implies": 1,
	"or":      2, "xor": 2,
	"and": 3,
	"in":  4, "contains": 4,
	"=": 5, "~": 5, "!=": 5, "!~": 5,
	"<": 6, ">": 6, "<=": 6, ">=": 6,
	"|":  7,
	"is": 8, "as": 8,
	"+": 9, "-": 9, "&": 9,
	"*": 10, "/": 10, "div": 10, "mod": 10,
}

// supportedBinary lists the operators this subset evaluates.
var supportedBinary = map[string]bool{
	"or": true, "xor": true, "and": true, "implies": true,
	"=": true, "!=": true, "~": true, "!~": true,
	"<": true, ">": true, "<=": true, ">=": true,
	"|": true, "is": true, "as": true,
}

type parser struct {
	toks  []token
	pos   int
	depth int
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) isOp(text string) bool {
	t := p.peek()
	return t.kind == tokOp && t.text == text
}

func (p *parser) expect(text string) error {
	if !p.isOp(text) {
		t := p.peek()
		return fmt.Errorf("expected %q at %d, found %q", text, t.pos, t.text)
	}
	p.next()
	return nil
}

// binaryOp reports the operator at the cursor, if any: punctuation or one
// of the keyword operators.
func (p *parser) binaryOp() (string, bool) {
	t := p.peek()
	if t.kind != tokOp && t.kind != tokIdent {
		return "", false
	}
	_, ok := precedence[t.text]
	return t.text, ok
}

func (p *parser) parseExpr(minPrec int) (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, fmt.Errorf("expression nested deeper than %d", maxDepth)
	}
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.binaryOp()
		if !ok || precedence[op] < minPrec {
			return left, nil
		}
		pos := p.next().pos
		if !supportedBinary[op] {
			return nil, fmt.Errorf("operator %q at %d: %w", op, pos, ErrUnsupported)
		}
		if op == "is" || op == "as" {
			typ, err := p.parseTypeSpecifier()
			if err != nil {
				return nil, err
			}
			left = &typeOp{op: op, operand: left, typ: typ}
			continue
		}
		right, err := p.parseExpr(precedence[op] + 1)
		if err != nil {
			return nil, err
		}
		left = &binary{op: op, left: left, right: right}
	}
}

// parseTypeSpecifier reads a type name, optionally qualified (FHIR.Quantity,
// System.String); the namespace is dropped because names do not clash here.
func (p *parser) parseTypeSpecifier() (string, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", fmt.Errorf("expected a type name at %d, found %q", t.pos, t.text)
	}
	name := t.text
	if p.isOp(".") && p.toks[p.pos+1].kind == tokIdent && (name == "FHIR" || name == "System") {
		p.next()
		name = p.next().text
	}
	return name, nil
}

func (p *parser) parseUnary() (node, error) {
	if p.isOp("-") || p.isOp("+") {
		neg := p.next().text == "-"
		if t := p.peek(); t.kind == tokNumber {
			p.next()
			text := t.text
			if neg {
				text = "-" + text
			}
			return p.parsePostfix(&literal{items: []Item{{Value: json.Number(text)}}})
		}
		return nil, fmt.Errorf("unary sign on a non-number: %w", ErrUnsupported)
	}
	term, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	return p.parsePostfix(term)
}

func (p *parser) parsePostfix(left node) (node, error) {
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.next()
			if t.kind != tokIdent {
				return nil, fmt.Errorf("expected a name after '.' at %d, found %q", t.pos, t.text)
			}
			inv, err := p.parseInvocation(t, false)
			if err != nil {
				return nil, err
			}
			left = &chain{left: left, right: inv}
		case p.isOp("["):
			p.next()
			idx, err := p.parseExpr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			left = &indexer{operand: left, index: idx}
		default:
			return left, nil
		}
	}
}

func (p *parser) parseTerm() (node, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return &literal{items: []Item{{Value: t.text, Type: "string"}}}, nil
	case tokNumber:
		return &literal{items: []Item{{Value: json.Number(t.text)}}}, nil
	case tokVar:
		switch t.text {
		case "resource", "context", "rootResource":
			return rootVar{}, nil
		case "ucum":
			return &literal{items: []Item{{Value: "http://unitsofmeasure.org", Type: "string"}}}, nil
		}
		return nil, fmt.Errorf("variable %%%s: %w", t.text, ErrUnsupported)
	case tokThis:
		if t.text == "this" {
			return thisVar{}, nil
		}
		return nil, fmt.Errorf("variable $%s: %w", t.text, ErrUnsupported)
	case tokIdent:
		switch t.text {
		case "true", "false":
			return &literal{items: []Item{{Value: t.text == "true", Type: "boolean"}}}, nil
		}
		return p.parseInvocation(t, true)
	case tokOp:
		switch t.text {
		case "(":
			inner, err := p.parseExpr(0)
			if err != nil {
				return nil, err
			}
			return inner, p.expect(")")
		case "{":
			return &literal{}, p.expect("}")
		}
	case tokEOF:
		return nil, fmt.Errorf("unexpected end of expression")
	}
	return nil, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
}

// parseInvocation reads a member name or a function call. head is true at
// the start of an expression, where a capitalised name is a type filter
// (Patient.name starts at the Patient resource).
func (p *parser) parseInvocation(t token, head bool) (node, error) {
	if !p.isOp("(") {
		if head && t.text != "" && t.text[0] >= 'A' && t.text[0] <= 'Z' {
			return &typeFilter{name: t.text}, nil
		}
		return &member{name: t.text}, nil
	}
	p.next()
	var args []node
	for !p.isOp(")") {
		if len(args) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		arg, err := p.parseExpr(0)
		if err != nil {
			return nil, err
		}
		args = append(args, arg)
	}
	p.next()
	return newCall(t.text, args)
}

// typeName extracts a type specifier passed as a function argument, as in
// as(Quantity) or ofType(FHIR.Quantity).
func typeName(arg node) (string, bool) {
	switch a := arg.(type) {
	case *typeFilter:
		return a.name, true
	case *member:
		return a.name, true
	case *chain:
		if ns, ok := a.left.(*typeFilter); ok && (ns.name == "FHIR" || ns.name == "System") {
			if m, ok := a.right.(*member); ok {
				return m.name, true
			}
			if tf, ok := a.right.(*typeFilter); ok {
				return tf.name, true
			}
		}
	}
	return "", false
}

func trimNamespace(t string) string {
	return strings.TrimPrefix(strings.TrimPrefix(t, "FHIR."), "System.")
}
