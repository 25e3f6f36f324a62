// Package seedtable reads the action library tables of the seed documents.
//
// It is shared by the catalog generator and the policy tests, so that the test
// re-parses the checked-in seed with exactly the code that generated the catalog.
package seedtable

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
)

// Row is one action of the action library, as written in the seed.
type Row struct {
	Service      string
	Action       string
	ResourceType string
	Description  string
	MinScope     string // "", "*", "service-root" or "subfolder"
	DependsOn    string // "Service:Action" or ""
}

// Name is the action as written in policies, "Service:Action".
func (r Row) Name() string { return r.Service + ":" + r.Action }

// scopes are the only words the seed uses for a minimum scope.
var scopes = map[string]bool{"*": true, "service-root": true, "subfolder": true}

// dependencyCell matches a cell naming another action ("FHIR:Read").
var dependencyCell = regexp.MustCompile(`^[A-Za-z0-9]+:[A-Za-z0-9]+$`)

// Parse reads the pipe table of the current seed (002):
//
//	Service | Action | Resource Type | Description | Minimum Scope | Dependency |
//
// The Minimum Scope and Dependency cells are classified by content, not by
// position: the seed's FHIR:History row has "FHIR:Read" in the Minimum Scope
// column and nothing under Dependency. So a cell that looks like
// "Service:Action" is a dependency, and only "*", "service-root" and
// "subfolder" are scopes; anything else in those two cells is an error.
func Parse(text string) ([]Row, error) {
	var rows []Row
	inTable := false
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if !inTable {
			if strings.HasPrefix(s, "Service | Action | Resource Type |") {
				inTable = true
			}
			continue
		}
		if strings.HasPrefix(s, "---") {
			continue // the header separator
		}
		if s == "" || !strings.Contains(s, "|") {
			break // the table ends at the first line that is not a row
		}
		cells := splitCells(s)
		for len(cells) < 6 {
			cells = append(cells, "")
		}
		for _, extra := range cells[6:] {
			if extra != "" {
				return nil, fmt.Errorf("line %d: more than 6 cells: %q", line, s)
			}
		}
		r := Row{Service: cells[0], Action: cells[1], ResourceType: cells[2], Description: unquote(cells[3])}
		for _, c := range cells[4:6] {
			switch {
			case c == "":
			case scopes[c] && r.MinScope == "":
				r.MinScope = c
			case dependencyCell.MatchString(c) && r.DependsOn == "":
				r.DependsOn = c
			default:
				return nil, fmt.Errorf("line %d: %q is neither a minimum scope (*, service-root, subfolder) nor a Service:Action dependency", line, c)
			}
		}
		if r.Service == "" || r.Action == "" || r.ResourceType == "" {
			return nil, fmt.Errorf("line %d: empty service, action or resource type: %q", line, s)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !inTable {
		return nil, fmt.Errorf("no action library table found")
	}
	return rows, nil
}

// splitCells splits a row on '|' outside double quotes and trims each cell.
func splitCells(s string) []string {
	var cells []string
	var cur strings.Builder
	quoted := false
	for _, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
			cur.WriteRune(c)
		case c == '|' && !quoted:
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(c)
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		cells = append(cells, rest)
	}
	return cells
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// ParseRunTogether reads the older seed (003), whose table lost its cell
// separators when it was crawled: "AppCreateUserUserGrants permission ...*".
// Rows are split with what we know: the service is the longest known service
// prefix, every description starts with "Grants" (possibly quoted), the
// resource type is the longest known type that ends the text before it, and
// a trailing "*", "service-root", "subfolder" or "Service:Action" is the
// scope or dependency. A row that cannot be split this way is an error, so a
// new service or type in the old table cannot pass unnoticed.
func ParseRunTogether(text string, services, types []string) ([]Row, error) {
	const header = "ServiceActionResource TypeDescriptionMinimum ScopeDependency"
	_, table, ok := strings.Cut(text, header)
	if !ok {
		return nil, fmt.Errorf("no run-together table header found")
	}
	var rows []Row
	for n, s := range strings.Split(table, "\n") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		r, err := splitRunTogether(s, services, types)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", n, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func splitRunTogether(s string, services, types []string) (Row, error) {
	var r Row
	for _, svc := range services {
		if strings.HasPrefix(s, svc) && len(svc) > len(r.Service) {
			r.Service = svc
		}
	}
	if r.Service == "" {
		return r, fmt.Errorf("no known service prefix in %q", s)
	}
	rest := s[len(r.Service):]
	d := strings.Index(rest, "Grants")
	if d > 0 && rest[d-1] == '"' {
		d--
	}
	if d <= 0 {
		return r, fmt.Errorf("no description in %q", s)
	}
	head, tail := rest[:d], rest[d:]
	for _, t := range types {
		if strings.HasSuffix(head, t) && len(head) > len(t) && len(t) > len(r.ResourceType) {
			r.ResourceType = t
		}
	}
	if r.ResourceType == "" {
		return r, fmt.Errorf("no known resource type ends %q", head)
	}
	r.Action = strings.TrimSuffix(head, r.ResourceType)
	for _, sc := range []string{"service-root", "subfolder", "*"} {
		if strings.HasSuffix(tail, sc) {
			r.MinScope, tail = sc, strings.TrimSuffix(tail, sc)
			break
		}
	}
	for _, svc := range services {
		if i := strings.LastIndex(tail, svc+":"); i > 0 && dependencyCell.MatchString(tail[i:]) {
			r.DependsOn, tail = tail[i:], tail[:i]
			break
		}
	}
	r.Description = unquote(strings.TrimSpace(tail))
	return r, nil
}
