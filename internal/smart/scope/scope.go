// Package scope parses SMART on FHIR scopes (App Launch 2.x, v1 and v2
// forms) and answers which of them cover an interaction. It is pure: the
// FHIR service turns the answer into query restrictions.
package scope

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Perm is a set of SMART v2 permission letters.
type Perm uint8

// The letters, in the order the spec writes them (cruds).
const (
	Create Perm = 1 << iota
	Read
	Update
	Delete
	Search
)

// All is .cruds (and v1 .*).
const All = Create | Read | Update | Delete | Search

// String writes the letters in cruds order.
func (p Perm) String() string {
	var b strings.Builder
	for i, c := range "cruds" {
		if p&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Resource is one resource scope: context/Type.perms?filter.
type Resource struct {
	Raw     string
	Context string // patient, user or system
	Type    string // a resource type or "*"
	Perms   Perm
	// Filter is the v2 "?param=value" restriction, nil when absent. Its
	// parameters are ANDed like a search.
	Filter url.Values
	V1     bool
}

// Set is a parsed scope string.
type Set struct {
	Resources []Resource
	// Other holds every non-resource scope as written (openid, fhirUser,
	// launch, launch/patient, offline_access, online_access, ...).
	Other []string
}

// ErrMalformed wraps every parse failure.
var ErrMalformed = errors.New("malformed scope")

// maxScopes bounds the work a hostile scope string can cause.
const maxScopes = 100

// Parse reads a space-separated scope string. Scopes that do not look like
// resource scopes (no "/" with a known context) are kept in Other; a
// resource scope that is malformed is an error naming it, so a client
// learns why rather than getting less than it asked for silently.
func Parse(s string) (Set, error) {
	var set Set
	fields := strings.Fields(s)
	if len(fields) > maxScopes {
		return Set{}, fmt.Errorf("%w: more than %d scopes", ErrMalformed, maxScopes)
	}
	for _, f := range fields {
		r, ok, err := ParseResource(f)
		if err != nil {
			return Set{}, err
		}
		if ok {
			set.Resources = append(set.Resources, r)
		} else {
			set.Other = append(set.Other, f)
		}
	}
	return set, nil
}

// ParseResource parses one scope. ok is false for scopes that are not
// resource scopes at all (launch/patient, openid...).
func ParseResource(s string) (r Resource, ok bool, err error) {
	ctx, rest, found := strings.Cut(s, "/")
	if !found || (ctx != "patient" && ctx != "user" && ctx != "system") {
		return Resource{}, false, nil
	}
	bad := func(why string) (Resource, bool, error) {
		return Resource{}, true, fmt.Errorf("%w %q: %s", ErrMalformed, s, why)
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	typ, perms, found := strings.Cut(rest, ".")
	if !found {
		return bad("expected context/Type.permissions, e.g. patient/Observation.rs")
	}
	if typ != "*" && !validType(typ) {
		return bad("the resource type must be a FHIR type name or *")
	}
	r = Resource{Raw: s, Context: ctx, Type: typ}
	switch perms {
	case "read":
		r.Perms, r.V1 = Read|Search, true
	case "write":
		r.Perms, r.V1 = Create|Update|Delete, true
	case "*":
		r.Perms, r.V1 = All, true
	default:
		if perms == "" {
			return bad("no permissions after the dot")
		}
		last := -1
		for _, c := range perms {
			i := strings.IndexRune("cruds", c)
			if i < 0 {
				return bad(fmt.Sprintf("%q is not a permission letter (c, r, u, d, s) nor read, write or *", c))
			}
			if i <= last {
				return bad("permission letters must be in cruds order, each once")
			}
			last = i
			r.Perms |= 1 << i
		}
	}
	if hasQuery {
		if r.V1 {
			return bad("v1 scopes (.read, .write, .*) take no ?filter")
		}
		if r.Type == "*" {
			return bad("a ?filter needs a resource type, not *")
		}
		v, err := url.ParseQuery(query)
		if err != nil || len(v) == 0 {
			return bad("the ?filter must be param=value pairs")
		}
		for k := range v {
			if k == "" || strings.HasPrefix(k, "_") && k != "_id" && k != "_tag" && k != "_security" && k != "_profile" {
				return bad(fmt.Sprintf("filter parameter %q is not supported", k))
			}
		}
		r.Filter = v
	}
	return r, true, nil
}

// validType accepts FHIR resource type names (an upper-case letter, then
// letters); whether the type exists is the FHIR service's business.
func validType(t string) bool {
	if t == "" || len(t) > 64 || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for i := 1; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Covering returns the resource scopes that allow p on typ. Several may;
// any one suffices (scopes union).
func (s Set) Covering(typ string, p Perm) []Resource {
	var out []Resource
	for _, r := range s.Resources {
		if (r.Type == "*" || r.Type == typ) && r.Perms&p != 0 {
			out = append(out, r)
		}
	}
	return out
}

// Has reports whether the set holds a non-resource scope.
func (s Set) Has(name string) bool {
	for _, o := range s.Other {
		if o == name {
			return true
		}
	}
	return false
}

// HasContext reports whether any resource scope uses ctx (patient, user,
// system).
func (s Set) HasContext(ctx string) bool {
	for _, r := range s.Resources {
		if r.Context == ctx {
			return true
		}
	}
	return false
}

// Strings writes the set back as scope strings, resource scopes as
// written (v1 scopes are echoed in v1 form, as the spec asks).
func (s Set) Strings() []string {
	out := make([]string, 0, len(s.Resources)+len(s.Other))
	for _, r := range s.Resources {
		out = append(out, r.Raw)
	}
	return append(out, s.Other...)
}
