package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrInvalidPolicy is matched (errors.Is) by every Parse and Validate error.
var ErrInvalidPolicy = errors.New("invalid access policy")

// ParseError says where a document is malformed, e.g.
// `rule[2].effect: must be "Allow" or "Deny"`.
type ParseError struct {
	Path    string // "rule[2].effect"; "" for the document itself
	Message string
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

func (e *ParseError) Unwrap() error { return ErrInvalidPolicy }

// at prefixes err's path with p ("rule[2]" + ".effect", or + "[1]").
func at(p string, err error) error {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return &ParseError{Path: p, Message: err.Error()}
	}
	switch {
	case pe.Path == "":
		return &ParseError{Path: p, Message: pe.Message}
	case pe.Path[0] == '[':
		return &ParseError{Path: p + pe.Path, Message: pe.Message}
	default:
		return &ParseError{Path: p + "." + pe.Path, Message: pe.Message}
	}
}

func fail(format string, args ...any) error {
	return &ParseError{Message: fmt.Sprintf(format, args...)}
}

// Parse reads a policy document strictly: exact field names (unknown or
// duplicate fields are rejected), exact types, and nothing after the
// document. It checks shape only; Validate checks meaning.
func Parse(data []byte) (Document, error) {
	if !json.Valid(data) {
		return Document{}, syntaxError(data)
	}
	fields, err := objectFields(data)
	if err != nil {
		return Document{}, err
	}
	var doc Document
	seenRule := false
	for _, f := range fields {
		if f.key != "rule" {
			return Document{}, fail("unknown field %q: a policy has only \"rule\"", f.key)
		}
		seenRule = true
		var raws []json.RawMessage
		if firstByte(f.raw) != '[' {
			return Document{}, &ParseError{Path: "rule", Message: "must be a list of rules"}
		}
		if err := json.Unmarshal(f.raw, &raws); err != nil {
			return Document{}, &ParseError{Path: "rule", Message: err.Error()}
		}
		doc.Rule = make([]Rule, 0, len(raws))
		for i, raw := range raws {
			r, err := parseRule(raw)
			if err != nil {
				return Document{}, at(fmt.Sprintf("rule[%d]", i), err)
			}
			doc.Rule = append(doc.Rule, r)
		}
	}
	if !seenRule {
		return Document{}, &ParseError{Path: "rule", Message: `required: write {"rule": [...]}`}
	}
	return doc, nil
}

// syntaxError reports the first JSON syntax error with its byte offset, or
// the trailing data after a complete value.
func syntaxError(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			return fail("empty document")
		}
		return fail("invalid JSON at byte %d: %v", dec.InputOffset(), err)
	}
	return fail("unexpected data after the document at byte %d", dec.InputOffset())
}

func parseRule(raw []byte) (Rule, error) {
	fields, err := objectFields(raw)
	if err != nil {
		return Rule{}, err
	}
	var r Rule
	var seen [3]bool
	for _, f := range fields {
		var err error
		switch f.key {
		case "resource":
			r.Resource, err = decodeStringList(f.raw)
			seen[0] = true
		case "action":
			r.Action, err = decodeStringList(f.raw)
			seen[1] = true
		case "effect":
			r.Effect, err = decodeEffect(f.raw)
			seen[2] = true
		case "condition":
			r.Condition, err = decodeConditions(f.raw)
		default:
			return Rule{}, fail("unknown field %q: a rule has resource, action, effect and condition", f.key)
		}
		if err != nil {
			return Rule{}, at(f.key, err)
		}
	}
	for i, name := range [3]string{"resource", "action", "effect"} {
		if !seen[i] {
			return Rule{}, &ParseError{Path: name, Message: "required"}
		}
	}
	return r, nil
}

type field struct {
	key string
	raw json.RawMessage
}

// objectFields splits a JSON object (already known to be valid JSON) into its
// fields in order, rejecting duplicates, which encoding/json would silently
// resolve to the last one.
func objectFields(data []byte) ([]field, error) {
	if firstByte(data) != '{' {
		return nil, fail("must be an object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, fail("must be an object")
	}
	var out []field
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fail("%v", err)
		}
		key, _ := t.(string)
		if seen[key] {
			return nil, fail("duplicate field %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fail("%v", err)
		}
		out = append(out, field{key, raw})
	}
	return out, nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func decodeStringList(raw []byte) (StringList, error) {
	switch firstByte(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return StringList{}, fail("%v", err)
		}
		return StringList{Values: []string{s}, Scalar: true}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return StringList{}, fail("%v", err)
		}
		l := StringList{Values: make([]string, 0, len(items))}
		for i, it := range items {
			var s string
			if firstByte(it) != '"' || json.Unmarshal(it, &s) != nil {
				return StringList{}, &ParseError{Path: fmt.Sprintf("[%d]", i), Message: "must be a string"}
			}
			l.Values = append(l.Values, s)
		}
		return l, nil
	}
	return StringList{}, fail("must be a string or a list of strings")
}

func decodeEffect(raw []byte) (Effect, error) {
	var s string
	if firstByte(raw) == '"' && json.Unmarshal(raw, &s) == nil && (s == string(Allow) || s == string(Deny)) {
		return Effect(s), nil
	}
	return "", fail(`must be "Allow" or "Deny"`)
}

// decodeConditions accepts a string, an object, or a list of strings and
// objects. null is read as "no condition".
func decodeConditions(raw []byte) (Conditions, error) {
	switch firstByte(raw) {
	case 'n':
		return Conditions{}, nil
	case '"', '{':
		c, err := decodeCondition(raw)
		if err != nil {
			return Conditions{}, err
		}
		return Conditions{Items: []Condition{c}, Scalar: true}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return Conditions{}, fail("%v", err)
		}
		cs := Conditions{Items: make([]Condition, 0, len(items))}
		for i, it := range items {
			c, err := decodeCondition(it)
			if err != nil {
				return Conditions{}, at(fmt.Sprintf("[%d]", i), err)
			}
			cs.Items = append(cs.Items, c)
		}
		return cs, nil
	}
	return Conditions{}, fail("must be a FHIR search string, an object, or a list of them")
}

func decodeCondition(raw []byte) (Condition, error) {
	switch firstByte(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Condition{}, fail("%v", err)
		}
		return Condition{Query: s}, nil
	case '{':
		obj, err := canonicalObject(raw)
		if err != nil {
			return Condition{}, fail("%v", err)
		}
		return Condition{Object: obj}, nil
	}
	return Condition{}, fail("must be a FHIR search string or an object")
}
