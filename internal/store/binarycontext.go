package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ContextAccess is what a caller may see of Binaries by their
// securityContext (R4: the resource whose access governs the Binary's):
// a Binary whose context is a local reference ("Type/id", indexed under
// Param) shows only when the caller may read that resource. Types in Open
// are read without restriction (any id, known or not); a type in Types
// only for existing resources its Restriction lets through; any other
// type not at all. A Binary without a context, or whose context is an
// absolute URL, shows.
type ContextAccess struct {
	Param string
	Open  []string
	Types map[string]Restriction
}

// contextRestriction is the SQL of a: no index row of the resource (alias
// r) under a.Param names a resource the caller may not read. One primary
// key lookup per candidate row, so counts and pages stay exact and cost
// what the Binaries matched cost.
func (p *planner) contextRestriction(r, projectID string, a *ContextAccess) string {
	c := p.alias("bc")
	var readable []string
	if len(a.Open) > 0 {
		readable = append(readable, c+".ref_type IN ("+p.list(a.Open)+")")
	}
	types := make([]string, 0, len(a.Types))
	for typ := range a.Types {
		types = append(types, typ)
	}
	slices.Sort(types) // the same SQL for the same access: statement caches hit
	for _, typ := range types {
		t := p.alias("bt")
		readable = append(readable, "("+c+".ref_type = "+p.arg(typ)+" AND "+c+".ref_id IN (SELECT "+t+".id FROM fhir_resources "+t+
			" WHERE "+p.resourceWhere(t, projectID, typ, nil)+p.restriction(t, projectID, a.Types[typ])+"))")
	}
	if len(readable) == 0 {
		readable = []string{"1=0"}
	}
	return " AND NOT EXISTS (SELECT 1 FROM fhir_idx_reference " + c + " WHERE " + c + ".project_id = " + p.arg(projectID) +
		" AND " + c + ".resource_type = " + r + ".resource_type AND " + c + ".id = " + r + ".id AND " + c + ".param = " + p.arg(a.Param) +
		" AND " + c + ".url = '' AND " + c + ".ref_id <> '' AND NOT (" + strings.Join(readable, " OR ") + "))"
}

// ReferenceTargetTypes lists the types that typ's reference parameter
// param points at in the project (local references only).
func (s *Store) ReferenceTargetTypes(ctx context.Context, projectID, typ, param string) ([]string, error) {
	rows, err := s.query(ctx, `SELECT DISTINCT ref_type FROM fhir_idx_reference WHERE project_id = ? AND resource_type = ? AND param = ? AND url = '' AND ref_id <> ''`,
		projectID, typ, param)
	if err != nil {
		return nil, fmt.Errorf("reference target types: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
