package schema

// Summary returns the _summary=true form of resource m (decoded JSON of
// resourceType): only the elements the R4 definitions mark isSummary,
// inside the resource's own backbone elements too (Patient.contact is not
// a summary element, Observation.component is, and so is its code). A
// datatype's value is kept whole. resourceType is always kept; the other
// properties (unknown ones included) only when the definitions list them
// as summary. ok is false for a type the model does not know.
func Summary(resourceType string, m map[string]any) (out map[string]any, ok bool) {
	t := theModel().types[resourceType]
	if t == nil || !t.resource {
		return nil, false
	}
	out = summarize(t, m)
	out["resourceType"] = resourceType
	return out, true
}

func summarize(t *typeInfo, m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		p, known := t.props[k]
		if !known || !p.el.summary {
			continue
		}
		if p.el.inline == nil {
			out[k] = v
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			out[k] = summarize(p.el.inline, x)
		case []any:
			list := make([]any, len(x))
			for i, item := range x {
				if im, isMap := item.(map[string]any); isMap {
					list[i] = summarize(p.el.inline, im)
				} else {
					list[i] = item
				}
			}
			out[k] = list
		default:
			out[k] = v
		}
	}
	return out
}
