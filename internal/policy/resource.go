package policy

import (
	"fmt"
	"strings"
)

// pattern is a parsed rule resource. Omitted trailing segments and "*" are
// both stored as "" (any): "FHIR" = "FHIR:*" = "FHIR:*:*".
type pattern struct {
	service string // "" = any service
	typ     string // "" = any type
	id      string // "" = any id
	z3      z3Pattern
}

// parseResource parses one rule resource. problem says what is wrong and what
// to write instead; warning notes an accepted but non-canonical form.
func parseResource(s string) (p pattern, problem, warning string) {
	if s == "" {
		return p, `empty resource: write "Service:Type:id", e.g. "FHIR:Patient:123", or "*" for everything`, ""
	}
	if s == "*" {
		return p, "", ""
	}
	svc, rest, hasRest := strings.Cut(s, ":")
	if svc == "Z3" {
		p.service = "Z3"
		p.z3, problem, warning = parseZ3(rest, hasRest)
		return p, problem, warning
	}
	segs := strings.Split(s, ":")
	if len(segs) > 3 {
		return p, fmt.Sprintf("%q has %d segments: a resource is Service:Type:id, e.g. \"FHIR:Patient:123\"", s, len(segs)), ""
	}
	wild := false
	for i, seg := range segs {
		switch {
		case seg == "":
			return p, fmt.Sprintf("%q has an empty segment: each of Service:Type:id must be a name or *", s), ""
		case seg == "*":
			wild = true
		case wild:
			return p, fmt.Sprintf("%q: a wildcard cannot be followed by a specific segment; write %q for all, or name the %s",
				s, strings.Join(segs[:i], ":"), segName(i-1)), ""
		case strings.Contains(seg, "*"):
			return p, fmt.Sprintf("%q: * must be a whole segment (prefix patterns such as %q are not supported)", s, seg), ""
		}
	}
	if svc == "*" {
		return p, "", ""
	}
	if ok, sugg := knownService(svc); !ok {
		if sugg != "" {
			return p, fmt.Sprintf("unknown service %q in %q: did you mean %q?", svc, s, sugg), ""
		}
		return p, fmt.Sprintf("unknown service %q in %q: services are %s", svc, s, strings.Join(serviceNames(), ", ")), ""
	}
	p.service = svc
	if len(segs) < 2 || segs[1] == "*" {
		return p, "", ""
	}
	p.typ = segs[1]
	if !hasType(svc, p.typ) {
		return p, unknownTypeMessage(svc, p.typ, s), ""
	}
	if len(segs) < 3 || segs[2] == "*" {
		return p, "", ""
	}
	p.id = segs[2]
	if svc == "Project" {
		return p, fmt.Sprintf("%q: Project:%s has no id segment; write \"Project:%s\"", s, p.typ, p.typ), ""
	}
	return p, "", ""
}

func segName(i int) string {
	return [...]string{"service", "type", "id"}[i]
}

func hasType(svc, typ string) bool {
	for _, t := range serviceTypes[svc] {
		if t == typ {
			return true
		}
	}
	return false
}

func unknownTypeMessage(svc, typ, s string) string {
	for _, t := range serviceTypes[svc] {
		if strings.EqualFold(t, typ) {
			return fmt.Sprintf("unknown %s type %q in %q: did you mean %q?", svc, typ, s, t)
		}
	}
	if svc == "FHIR" {
		return fmt.Sprintf("unknown FHIR type %q in %q: use an R4 resource type such as Patient", typ, s)
	}
	return fmt.Sprintf("unknown %s type %q in %q: %s types are %s", svc, typ, s, svc, strings.Join(serviceTypes[svc], ", "))
}

// covers reports whether pattern a matches everything pattern b matches
// (used for the dependency warning). Z3 patterns are compared textually
// except for the root, which covers all of Z3.
func (a pattern) covers(b pattern) bool {
	if a.service == "" {
		return true
	}
	if a.service != b.service {
		return false
	}
	if a.service == "Z3" {
		return a.z3.kind == z3Root || (a.z3.kind == b.z3.kind && a.z3.bucket == b.z3.bucket && strings.Join(a.z3.segs, "/") == strings.Join(b.z3.segs, "/"))
	}
	if a.typ != "" && a.typ != b.typ {
		return false
	}
	return a.id == "" || a.id == b.id
}

// String writes the pattern in canonical form.
func (p pattern) String() string {
	if p.service == "" {
		return "*"
	}
	if p.service == "Z3" {
		return "Z3:" + p.z3.String()
	}
	s := p.service + ":" + or(p.typ, "*")
	if p.id != "" {
		s += ":" + p.id
	}
	return s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
