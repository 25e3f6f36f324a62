package fhir

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/schema"
	"github.com/wardhealth/ward/internal/fhir/search"
)

// subset applies _elements and _summary=true|text|data to a search match.
func subset(content []byte, q *search.Query) json.RawMessage {
	return project(content, q.Elements, q.Summary)
}

// readProjection reads _elements and _summary from a read or vread's
// query (the spec allows both there too). _summary=count has no meaning
// for one resource.
func readProjection(q url.Values) (elements []string, summary string, err error) {
	if v := q.Get("_elements"); v != "" {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				elements = append(elements, e)
			}
		}
	}
	switch summary = q.Get("_summary"); summary {
	case "", "true", "text", "data", "false":
	default:
		return nil, "", fault.Invalid("invalid _summary %q on a read: use true, text, data or false", summary)
	}
	return elements, summary, nil
}

// project keeps the elements _elements names (with resourceType, id and
// meta) or those _summary=true|text|data keeps, and tags the result
// SUBSETTED as the spec asks. _elements wins over _summary.
func project(content []byte, elements []string, summary string) json.RawMessage {
	if len(elements) == 0 && summary != "text" && summary != "data" && summary != "true" {
		return content
	}
	if len(elements) == 0 && summary == "true" {
		m, err := decode(content)
		if err != nil {
			return content
		}
		typ, _ := m["resourceType"].(string)
		out, ok := schema.Summary(typ, m)
		if !ok {
			return content
		}
		meta, _ := out["meta"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		out["meta"] = tagSubsetted(meta)
		b, err := json.Marshal(out)
		if err != nil {
			return content
		}
		return b
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(content, &m); err != nil {
		return content
	}
	keep := map[string]bool{"resourceType": true, "id": true, "meta": true}
	switch {
	case len(elements) > 0:
		for _, e := range elements {
			keep[e] = true
			keep["_"+e] = true
		}
	case summary == "text":
		keep["text"] = true
	}
	out := map[string]json.RawMessage{}
	for k, v := range m {
		if keep[k] || (summary == "data" && len(elements) == 0 && k != "text") {
			out[k] = v
		}
	}
	var meta map[string]any
	_ = json.Unmarshal(out["meta"], &meta)
	if meta == nil {
		meta = map[string]any{}
	}
	out["meta"], _ = json.Marshal(tagSubsetted(meta))
	b, err := json.Marshal(out)
	if err != nil {
		return content
	}
	return b
}

// tagSubsetted adds the SUBSETTED tag to meta.
func tagSubsetted(meta map[string]any) map[string]any {
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(tags, map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"})
	return meta
}
