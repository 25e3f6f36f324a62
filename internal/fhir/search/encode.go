package search

import (
	"strconv"
	"strings"
)

// Encode prints the query in canonical form, for the Bundle's self link:
// clauses in key order, then the result parameters; ignored parameters are
// left out. ParseQuery(Encode(q)) gives q back (Ignored aside).
func (q *Query) Encode() string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(queryEscape(k))
		b.WriteByte('=')
		b.WriteString(queryEscape(v))
	}
	for _, c := range q.Clauses {
		add(c.key(), c.encodeValues())
	}
	for _, f := range q.Filters {
		add("_filter", f.Text)
	}
	if q.Count >= 0 {
		add("_count", strconv.Itoa(q.Count))
	}
	if q.Offset > 0 {
		add("_offset", strconv.Itoa(q.Offset))
	}
	if len(q.Sort) > 0 {
		keys := make([]string, len(q.Sort))
		for i, s := range q.Sort {
			keys[i] = s.Param
			if s.Desc {
				keys[i] = "-" + s.Param
			}
		}
		add("_sort", strings.Join(keys, ","))
	}
	if q.Total != "" {
		add("_total", q.Total)
	}
	if q.Summary != "" {
		add("_summary", q.Summary)
	}
	if len(q.Elements) > 0 {
		add("_elements", strings.Join(q.Elements, ","))
	}
	for _, inc := range q.Include {
		add(inc.key("_include"), inc.value())
	}
	for _, inc := range q.RevInclude {
		add(inc.key("_revinclude"), inc.value())
	}
	return b.String()
}

// queryEscape percent-encodes like url.QueryEscape but leaves the
// characters search syntax uses (: | , $ / @) readable, so a self link shows
// "code=http://loinc.org|1234-5" rather than a wall of %3A and %7C.
func queryEscape(s string) string {
	const keep = "-._~:|,$/@!*'()"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte(keep, c) >= 0:
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

func (inc Include) key(name string) string {
	if inc.Iterate {
		return name + ":iterate"
	}
	return name
}

func (inc Include) value() string {
	if inc.Type == "*" {
		return "*"
	}
	v := inc.Type + ":" + inc.Param
	if inc.Target != "" {
		v += ":" + inc.Target
	}
	return v
}

// key is the canonical parameter name of the clause, modifiers and chain
// included: "subject:Patient.name:exact", "_has:Observation:patient:code".
func (c *Clause) key() string {
	if c.Reverse != nil {
		return "_has:" + c.Reverse.Type + ":" + c.Reverse.Ref.Name + ":" + c.Reverse.Clause.key()
	}
	k := c.Param.Name
	switch {
	case c.Modifier != "":
		k += ":" + c.Modifier
	case c.TargetType != "":
		k += ":" + c.TargetType
	}
	if c.Chain != nil {
		k += "." + c.Chain.key()
	}
	return k
}

func (c *Clause) encodeValues() string {
	target := c
	if c.Reverse != nil {
		target = c.Reverse.Clause
	}
	for target.Chain != nil {
		target = target.Chain
	}
	parts := make([]string, len(target.Values))
	for i, v := range target.Values {
		parts[i] = target.encodeCond(v)
	}
	return strings.Join(parts, ",")
}

func (c *Clause) encodeCond(v Cond) string {
	switch c.Modifier {
	case "missing":
		return strconv.FormatBool(v.Missing)
	case "text", "in", "not-in":
		return escape(v.Text)
	case "of-type":
		return escape(v.System) + "|" + escape(v.Code) + "|" + escape(v.Text)
	case "identifier":
		return encodeToken(v)
	}
	return encodeTyped(c.Param, c.Param.Type, v)
}

func encodeTyped(p *Param, typ string, v Cond) string {
	switch typ {
	case "token":
		return encodeToken(v)
	case "date", "number":
		return encodePrefix(v.Prefix) + v.Text
	case "quantity":
		s := encodePrefix(v.Prefix) + v.Text
		if v.HasSystem {
			s += "|" + escape(v.System) + "|" + escape(v.Code)
		}
		return s
	case "composite":
		parts := make([]string, len(v.Components))
		for i, sub := range v.Components {
			parts[i] = encodeTyped(p, p.Components[i].Type, sub)
		}
		return strings.Join(parts, "$")
	}
	return escape(v.Text)
}

func encodeToken(v Cond) string {
	if v.HasSystem {
		return escape(v.System) + "|" + escape(v.Code)
	}
	return escape(v.Code)
}

func encodePrefix(p Prefix) string {
	if p == Eq {
		return ""
	}
	return string(p)
}
