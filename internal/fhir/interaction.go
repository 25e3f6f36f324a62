package fhir

import (
	"net/http"
	"strings"
)

// kind is a FHIR RESTful interaction (R4 §3.1.0), as a request's method and
// path name it.
type kind int

const (
	kindUnknown      kind = iota
	kindBatch             // POST [base]: batch or transaction
	kindCapabilities      // GET [base]/metadata
	kindHistorySystem
	kindHistoryType
	kindHistoryInstance
	kindSearch     // GET [base]/[type]?...
	kindSearchPost // POST [base]/[type]/_search
	kindValidate   // POST [base]/[type](/[id])/$validate
	kindCreate
	kindConditionalUpdate
	kindConditionalPatch
	kindConditionalDelete
	kindRead
	kindVRead
	kindUpdate
	kindPatch
	kindDelete
	kindOperation // [base]/[type](/[id])/$op (GET or POST)
	// GET [base]?params (POST [base]/_search): the whole system, or
	// the types _type names.
	kindSearchSystem
	kindSearchSystemPost
	// GET [base]/[compartment]/[id]/[type or *]?params (POST
	// .../_search): the resources of a compartment.
	kindSearchCompartment
	kindSearchCompartmentPost
)

// interaction is one parsed request: what it does and to what.
type interaction struct {
	kind    kind
	typ, id string
	version string // vread
	op      string // "$everything"
	target  string // compartment search: the type searched, or "*"
	query   string // raw query: a search's or a condition's
}

// parseInteraction reads method and path (relative to the FHIR base, with or
// without slashes around it) into an interaction: the one parser behind the
// REST router and bundle entries, so the two cannot drift apart. kindUnknown
// means no interaction has that form.
func parseInteraction(method, path, rawQuery string) interaction {
	path = strings.Trim(path, "/")
	var seg []string
	if path != "" {
		seg = strings.Split(path, "/")
	}
	in := interaction{query: rawQuery}
	if len(seg) > 0 {
		in.typ = seg[0]
	}
	if len(seg) > 1 {
		in.id = seg[1]
	}
	m := strings.ToUpper(method)
	get, post := m == http.MethodGet, m == http.MethodPost
	switch len(seg) {
	case 0:
		switch {
		case post:
			in.kind = kindBatch
		case get: // bare GET [base] too: a search of every type (R4 3.1.0.1.7)
			in.kind = kindSearchSystem
		}
	case 1:
		switch {
		case seg[0] == "metadata" && get:
			in.kind, in.typ = kindCapabilities, ""
		case seg[0] == "_history" && get:
			in.kind, in.typ = kindHistorySystem, ""
		case seg[0] == "_search" && post:
			in.kind, in.typ = kindSearchSystemPost, ""
		case get:
			in.kind = kindSearch
		case post:
			in.kind = kindCreate
		case m == http.MethodPut && rawQuery != "":
			in.kind = kindConditionalUpdate
		case m == http.MethodPatch && rawQuery != "":
			in.kind = kindConditionalPatch
		case m == http.MethodDelete && rawQuery != "":
			in.kind = kindConditionalDelete
		}
	case 2:
		in.id = ""
		switch {
		case seg[1] == "_search" && post:
			in.kind = kindSearchPost
		case seg[1] == "$validate" && post:
			in.kind = kindValidate
		case strings.HasPrefix(seg[1], "$") && (get || post):
			in.kind, in.op = kindOperation, seg[1] // a type-level operation: id ""
		case seg[1] == "_history" && get:
			in.kind = kindHistoryType
		default:
			in.id = seg[1]
			switch m {
			case http.MethodGet:
				in.kind = kindRead
			case http.MethodPut:
				in.kind = kindUpdate
			case http.MethodPatch:
				in.kind = kindPatch
			case http.MethodDelete:
				in.kind = kindDelete
			}
		}
	case 3:
		switch {
		case seg[2] == "$validate" && post:
			in.kind = kindValidate
		case seg[2] == "_history" && get:
			in.kind = kindHistoryInstance
		case strings.HasPrefix(seg[2], "$") && (get || post):
			in.kind, in.op = kindOperation, seg[2]
		case get && seg[1] != "" && seg[2] != "" && !strings.HasPrefix(seg[2], "_"):
			in.kind, in.target = kindSearchCompartment, seg[2]
		}
	case 4:
		switch {
		case seg[2] == "_history" && get:
			in.kind, in.version = kindVRead, seg[3]
		case seg[3] == "_search" && post && seg[1] != "" && seg[2] != "" && !strings.HasPrefix(seg[2], "_") && !strings.HasPrefix(seg[2], "$"):
			in.kind, in.target = kindSearchCompartmentPost, seg[2]
		}
	}
	return in
}
