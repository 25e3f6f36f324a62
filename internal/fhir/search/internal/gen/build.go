package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// bundle is the slice of Bundle-searchParams.json the generator reads.
type bundle struct {
	Entry []struct {
		Resource searchParameter `json:"resource"`
	} `json:"entry"`
}

type searchParameter struct {
	URL        string   `json:"url"`
	Code       string   `json:"code"`
	Base       []string `json:"base"`
	Type       string   `json:"type"`
	Expression string   `json:"expression"`
	Target     []string `json:"target"`
	Comparator []string `json:"comparator"`
	Modifier   []string `json:"modifier"`
	Component  []struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	} `json:"component"`
}

// param is one registry row; the field names are short because the file is
// embedded in the binary and shipped in every build.
type param struct {
	Name        string      `json:"name"`
	Type        string      `json:"type"`
	Expr        string      `json:"expr"`
	Targets     []string    `json:"targets,omitempty"`
	Components  []component `json:"components,omitempty"`
	Comparators []string    `json:"comparators,omitempty"`
	Modifiers   []string    `json:"modifiers,omitempty"`
}

type component struct {
	Code string `json:"code"`
	Type string `json:"type"`
	Expr string `json:"expr"`
}

type registry struct {
	Types  []string
	Params map[string][]param
}

func build(b bundle) (*registry, error) {
	byURL := map[string]searchParameter{}
	for _, e := range b.Entry {
		byURL[e.Resource.URL] = e.Resource
	}
	reg := &registry{Params: map[string][]param{}}
	types := map[string]bool{}
	seen := map[string]bool{}
	for _, e := range b.Entry {
		sp := e.Resource
		if sp.Expression == "" {
			// _text, _content and _query have no expression: they need a
			// full-text index or a named query, which Ward does not offer.
			continue
		}
		parts := splitUnion(sp.Expression)
		for _, base := range sp.Base {
			expr := sp.Expression
			if len(sp.Base) > 1 {
				var mine []string
				for _, p := range parts {
					if leadingType(p) == base {
						mine = append(mine, p)
					}
				}
				if len(mine) == 0 {
					return nil, fmt.Errorf("%s: no part of %q starts with %s", sp.URL, sp.Expression, base)
				}
				expr = strings.Join(mine, " | ")
			}
			key := base + "." + sp.Code
			if seen[key] {
				return nil, fmt.Errorf("%s: duplicate parameter %s", sp.URL, key)
			}
			seen[key] = true
			p := param{Name: sp.Code, Type: sp.Type, Expr: expr, Comparators: sp.Comparator, Modifiers: sp.Modifier}
			p.Targets = append([]string(nil), sp.Target...)
			sort.Strings(p.Targets)
			for _, c := range sp.Component {
				def, ok := byURL[c.Definition]
				if !ok {
					return nil, fmt.Errorf("%s: unknown component definition %s", sp.URL, c.Definition)
				}
				p.Components = append(p.Components, component{Code: def.Code, Type: def.Type, Expr: c.Expression})
			}
			reg.Params[base] = append(reg.Params[base], p)
			if base != "Resource" && base != "DomainResource" {
				types[base] = true
			}
		}
		for _, t := range sp.Target {
			types[t] = true
		}
	}
	for t := range types {
		reg.Types = append(reg.Types, t)
	}
	sort.Strings(reg.Types)
	all := strings.Join(reg.Types, ",")
	for _, ps := range reg.Params {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
		for i := range ps {
			// A reference to any resource lists all 145 types; "*" keeps the
			// file a third of the size. The loader expands it again.
			if strings.Join(ps[i].Targets, ",") == all {
				ps[i].Targets = []string{"*"}
			}
		}
	}
	return reg, nil
}

// splitUnion splits a FHIRPath expression on its top-level "|" operators,
// ignoring those inside parentheses and string literals.
func splitUnion(expr string) []string {
	var parts []string
	depth, start := 0, 0
	inString := false
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '\'' && (i == 0 || expr[i-1] != '\\'):
			inString = !inString
		case inString:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			parts = append(parts, strings.TrimSpace(expr[start:i]))
			start = i + 1
		}
	}
	return append(parts, strings.TrimSpace(expr[start:]))
}

// leadingType returns the first identifier of a union part, past any
// opening parentheses: "(Observation.value as Quantity)" -> "Observation".
func leadingType(part string) string {
	part = strings.TrimLeft(part, "( ")
	if i := strings.IndexAny(part, ". ()"); i >= 0 {
		return part[:i]
	}
	return part
}

// encode writes one parameter per line so that regenerating the file gives
// readable diffs.
func encode(reg *registry) ([]byte, error) {
	var buf bytes.Buffer
	types, err := json.Marshal(reg.Types)
	if err != nil {
		return nil, fmt.Errorf("encode types: %w", err)
	}
	fmt.Fprintf(&buf, "{\"types\":%s,\n\"params\":{", types)
	bases := make([]string, 0, len(reg.Params))
	for b := range reg.Params {
		bases = append(bases, b)
	}
	sort.Strings(bases)
	for i, b := range bases {
		if i > 0 {
			buf.WriteString(",")
		}
		fmt.Fprintf(&buf, "\n%q:[", b)
		for j, p := range reg.Params[b] {
			line, err := json.Marshal(p)
			if err != nil {
				return nil, fmt.Errorf("encode %s.%s: %w", b, p.Name, err)
			}
			if j > 0 {
				buf.WriteString(",")
			}
			buf.WriteString("\n")
			buf.Write(line)
		}
		buf.WriteString("]")
	}
	buf.WriteString("}}\n")
	return buf.Bytes(), nil
}
