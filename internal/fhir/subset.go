package fhir

import (
	"encoding/json"

	"github.com/wardhealth/ward/internal/fhir/search"
)

// subset applies _elements and _summary=text|data to a search match, and
// tags the result SUBSETTED as the spec asks.
func subset(content []byte, q *search.Query) json.RawMessage {
	if len(q.Elements) == 0 && q.Summary != "text" && q.Summary != "data" {
		return content
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(content, &m); err != nil {
		return content
	}
	keep := map[string]bool{"resourceType": true, "id": true, "meta": true}
	switch {
	case len(q.Elements) > 0:
		for _, e := range q.Elements {
			keep[e] = true
			keep["_"+e] = true
		}
	case q.Summary == "text":
		keep["text"] = true
	}
	out := map[string]json.RawMessage{}
	for k, v := range m {
		if keep[k] || (q.Summary == "data" && len(q.Elements) == 0 && k != "text") {
			out[k] = v
		}
	}
	var meta map[string]any
	_ = json.Unmarshal(out["meta"], &meta)
	if meta == nil {
		meta = map[string]any{}
	}
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(tags, map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"})
	out["meta"], _ = json.Marshal(meta)
	b, err := json.Marshal(out)
	if err != nil {
		return content
	}
	return b
}
