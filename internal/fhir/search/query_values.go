package search

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// splitEscaped splits s on sep where sep is not escaped by a backslash.
// Escapes stay in the parts, to be removed by unescape once the value has
// been split at every level (",", then "$", then "|").
func splitEscaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unescape removes the search escapes (\, \| \$ \\); a backslash before
// any other character is kept as written.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`\,|$`, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// escape is the inverse of unescape, used by Encode.
func escape(s string) string {
	if !strings.ContainsAny(s, `\,|$`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`\,|$`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseCond parses one OR'ed value of c. It returns nil for an empty
// value, which is ignored as most servers do (a form field left blank).
func parseCond(c *Clause, raw string) (*Cond, error) {
	if strings.TrimSpace(unescape(raw)) == "" {
		return nil, nil
	}
	raw = strings.TrimSpace(raw)
	p := c.Param
	switch c.Modifier {
	case "missing":
		switch raw {
		case "true", "false":
			return &Cond{Text: raw, Missing: raw == "true"}, nil
		}
		return nil, fmt.Errorf("invalid :missing value %q (want true or false)", raw)
	case "text":
		t := unescape(raw)
		return &Cond{Text: t, String: NormalizeString(t)}, nil
	case "in", "not-in":
		return &Cond{Text: unescape(raw)}, nil
	case "of-type":
		parts := splitEscaped(raw, '|')
		if len(parts) != 3 || parts[2] == "" {
			return nil, fmt.Errorf("invalid :of-type value %q (want system|code|value)", raw)
		}
		return &Cond{System: unescape(parts[0]), Code: unescape(parts[1]), HasSystem: true, Text: unescape(parts[2])}, nil
	case "identifier":
		return parseToken(raw)
	}
	if c.TargetType != "" && p.Type == "reference" {
		return parseReference(p, c.TargetType, raw)
	}
	return parseTyped(p, p.Type, raw)
}

// parseTyped parses a value by parameter type; composites recurse with
// their components' types.
func parseTyped(p *Param, typ, raw string) (*Cond, error) {
	switch typ {
	case "string":
		t := unescape(raw)
		return &Cond{Text: t, String: NormalizeString(t)}, nil
	case "token":
		return parseToken(raw)
	case "reference":
		return parseReference(p, "", raw)
	case "date":
		prefix, rest := splitPrefix(raw)
		lo, hi, err := DateRange(rest)
		if err != nil {
			return nil, err
		}
		return &Cond{Prefix: prefix, Text: rest, Low: lo, High: hi}, nil
	case "number":
		prefix, rest := splitPrefix(raw)
		n, err := parseDecimal(rest)
		if err != nil {
			return nil, err
		}
		return &Cond{Prefix: prefix, Text: rest, Number: n}, nil
	case "quantity":
		return parseQuantity(raw)
	case "composite":
		parts := splitEscaped(raw, '$')
		if len(parts) != len(p.Components) {
			return nil, fmt.Errorf("composite value %q needs %d parts separated by $", raw, len(p.Components))
		}
		cond := &Cond{}
		for i, part := range parts {
			if strings.TrimSpace(unescape(part)) == "" {
				return nil, fmt.Errorf("composite value %q has an empty part", raw)
			}
			sub, err := parseTyped(p, p.Components[i].Type, strings.TrimSpace(part))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.Components[i].Code, err)
			}
			cond.Components = append(cond.Components, *sub)
		}
		return cond, nil
	case "special":
		if p.IsNear() {
			return parseNear(unescape(raw))
		}
	}
	// uri, other special
	return &Cond{Text: unescape(raw)}, nil
}

func parseToken(raw string) (*Cond, error) {
	parts := splitEscaped(raw, '|')
	switch len(parts) {
	case 1:
		return &Cond{Text: unescape(raw), Code: unescape(raw)}, nil
	case 2:
		c := &Cond{Text: unescape(raw), System: unescape(parts[0]), Code: unescape(parts[1]), HasSystem: true}
		if c.System == "" && c.Code == "" {
			return nil, fmt.Errorf("invalid token %q", raw)
		}
		return c, nil
	}
	return nil, fmt.Errorf("invalid token %q (want [system|]code)", raw)
}

func parseQuantity(raw string) (*Cond, error) {
	prefix, rest := splitPrefix(raw)
	parts := splitEscaped(rest, '|')
	if len(parts) != 1 && len(parts) != 3 {
		return nil, fmt.Errorf("invalid quantity %q (want number[|system|code])", raw)
	}
	n, err := parseDecimal(parts[0])
	if err != nil {
		return nil, err
	}
	c := &Cond{Prefix: prefix, Text: parts[0], Number: n}
	if len(parts) == 3 {
		c.System, c.Code, c.HasSystem = unescape(parts[1]), unescape(parts[2]), true
	}
	return c, nil
}

// parseReference reads Type/id, id (typed by the :Type modifier if any),
// or an absolute URL / canonical, which is kept whole.
func parseReference(p *Param, targetType, raw string) (*Cond, error) {
	t := unescape(raw)
	c := &Cond{Text: t}
	switch {
	case strings.Contains(t, "://") || strings.HasPrefix(t, "urn:"):
		c.RefURL = t
	case strings.Contains(t, "/"):
		typ, id, _ := strings.Cut(t, "/")
		id, _, _ = strings.Cut(id, "/_history/")
		if !IsResourceType(typ) || id == "" || strings.Contains(id, "/") {
			return nil, fmt.Errorf("invalid reference %q (want Type/id, id or an absolute URL)", t)
		}
		if !slices.Contains(p.Targets, typ) {
			return nil, fmt.Errorf("%s cannot reference %s", p.Name, typ)
		}
		if targetType != "" && typ != targetType {
			return nil, fmt.Errorf("reference %q does not match modifier :%s", t, targetType)
		}
		c.RefType, c.RefID = typ, id
	default:
		c.RefType, c.RefID = targetType, t
	}
	return c, nil
}

// parseDecimal accepts FHIR decimals (optionally with an exponent), which
// is narrower than strconv.ParseFloat: no "inf", hex or underscores.
func parseDecimal(s string) (float64, error) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits > 0 && i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		exp := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			exp++
		}
		if exp == 0 {
			digits = 0
		}
	}
	if digits == 0 || i != len(s) {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid number %q: %w", s, err)
	}
	return f, nil
}
