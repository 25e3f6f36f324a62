package policy

import (
	"bytes"
	"encoding/json"
)

// Document is an access policy as the Oystehr API carries it:
// {"rule":[{"resource":...,"action":...,"effect":...,"condition":...}]}.
type Document struct {
	Rule []Rule `json:"rule"`
}

// Rule grants or denies actions on resources, optionally under conditions.
type Rule struct {
	Resource  StringList `json:"resource"`
	Action    StringList `json:"action"`
	Effect    Effect     `json:"effect"`
	Condition Conditions `json:"condition,omitzero"`
}

// StringList is a string or a list of strings. Scalar remembers that the
// sender wrote a bare string, so the document marshals back in its own shape.
type StringList struct {
	Values []string
	Scalar bool
}

// List builds a StringList written as a JSON list.
func List(values ...string) StringList { return StringList{Values: values} }

// Effect is "Allow" or "Deny".
type Effect string

const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Condition is one FHIR condition: a search string such as
// "Patient?general-practitioner=Practitioner/123" (Query), or an object kept
// as compact JSON (Object) because its meaning belongs to the FHIR layer.
type Condition struct {
	Query  string
	Object json.RawMessage
}

// Conditions is a rule's condition: a string, an object, or a list of them
// (Scalar remembers the bare form). A resource passes if it matches any one.
type Conditions struct {
	Items  []Condition
	Scalar bool
}

// IsZero reports an absent condition, so "omitzero" drops it when marshalling.
func (c Conditions) IsZero() bool { return c.Items == nil }

// MarshalJSON writes the document; a nil rule list is written as [] because
// Parse requires the list.
func (d Document) MarshalJSON() ([]byte, error) {
	type plain Document // no methods, so no recursion
	if d.Rule == nil {
		d.Rule = []Rule{}
	}
	return json.Marshal(plain(d))
}

// UnmarshalJSON is as strict as Parse, so a Document embedded in a request
// body is checked the same way.
func (d *Document) UnmarshalJSON(data []byte) error {
	doc, err := Parse(data)
	if err != nil {
		return err
	}
	*d = doc
	return nil
}

func (l StringList) MarshalJSON() ([]byte, error) {
	if l.Scalar && len(l.Values) == 1 {
		return json.Marshal(l.Values[0])
	}
	if l.Values == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(l.Values)
}

func (l *StringList) UnmarshalJSON(data []byte) error {
	v, err := decodeStringList(data)
	if err != nil {
		return err
	}
	*l = v
	return nil
}

func (e *Effect) UnmarshalJSON(data []byte) error {
	v, err := decodeEffect(data)
	if err != nil {
		return err
	}
	*e = v
	return nil
}

func (c Condition) MarshalJSON() ([]byte, error) {
	if c.Object != nil {
		return c.Object, nil
	}
	return json.Marshal(c.Query)
}

func (c Conditions) MarshalJSON() ([]byte, error) {
	if c.Scalar && len(c.Items) == 1 {
		return json.Marshal(c.Items[0])
	}
	if c.Items == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(c.Items)
}

func (c *Conditions) UnmarshalJSON(data []byte) error {
	v, err := decodeConditions(data)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// String returns the condition as text: the query, or the object's JSON.
func (c Condition) String() string {
	if c.Object != nil {
		return string(c.Object)
	}
	return c.Query
}

// canonicalObject compacts a JSON object and escapes it the way
// encoding/json escapes raw messages, so the bytes survive Marshal unchanged
// and a re-parsed document compares equal.
func canonicalObject(raw []byte) (json.RawMessage, error) {
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	return escaped.Bytes(), nil
}
