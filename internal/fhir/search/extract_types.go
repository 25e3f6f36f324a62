package search

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fhir/fhirpath"
)

// stringParts are the elements of HumanName and Address that string search
// matches, in the order they are indexed. A map with none of them still
// yields its text or display, if any.
var stringParts = []string{
	"family", "given", "prefix", "suffix", // HumanName
	"line", "city", "district", "state", "postalCode", "country", // Address
	"text", "display",
}

func appendStrings(out []Value, base Value, v any) []Value {
	add := func(s string) {
		if strings.TrimSpace(s) == "" {
			return
		}
		val := base
		val.Exact, val.String = s, NormalizeString(s)
		out = append(out, val)
	}
	switch x := v.(type) {
	case string:
		add(x)
	case map[string]any:
		for _, k := range stringParts {
			switch part := x[k].(type) {
			case string:
				add(part)
			case []any:
				for _, e := range part {
					if s, ok := e.(string); ok {
						add(s)
					}
				}
			}
		}
	}
	return out
}

// contactSystems are ContactPoint.system codes; an Identifier's system is a
// URI, so the two shapes ({system, value}) can be told apart without a
// structure model.
var contactSystems = map[string]bool{
	"phone": true, "fax": true, "email": true, "pager": true, "url": true, "sms": true, "other": true,
}

func appendTokens(out []Value, base Value, it fhirpath.Item) []Value {
	switch x := it.Value.(type) {
	case string:
		base.Code = x
		return append(out, base)
	case bool:
		base.Code = strconv.FormatBool(x)
		return append(out, base)
	case json.Number:
		base.Code = string(x)
		return append(out, base)
	case map[string]any:
		return appendTokenMap(out, base, x, it.Type)
	}
	return out
}

func appendTokenMap(out []Value, base Value, m map[string]any, typ string) []Value {
	str := func(k string) string { s, _ := m[k].(string); return s }
	_, hasCoding := m["coding"]
	switch {
	case typ == "CodeableConcept" || hasCoding || (typ == "" && len(m) == 1 && str("text") != ""):
		codings, _ := m["coding"].([]any)
		for _, c := range codings {
			if cm, ok := c.(map[string]any); ok {
				out = appendTokenMap(out, base, cm, "Coding")
			}
		}
		if t := str("text"); t != "" {
			v := base
			v.Display = t
			out = append(out, v)
		}
		return out
	case typ == "Identifier" || typ == "ContactPoint" || m["value"] != nil:
		value := str("value")
		if value == "" {
			return out
		}
		base.System, base.Code = str("system"), value
		if typ == "Identifier" || (typ == "" && !contactSystems[base.System]) {
			if tt, ok := m["type"].(map[string]any); ok {
				base.Display, _ = tt["text"].(string)
				codings, _ := tt["coding"].([]any)
				for _, c := range codings {
					cm, _ := c.(map[string]any)
					sys, _ := cm["system"].(string)
					code, _ := cm["code"].(string)
					if code != "" {
						base.OfType = append(base.OfType, sys+"|"+code)
					}
				}
			}
		}
		return append(out, base)
	case str("code") != "" || str("system") != "":
		base.System, base.Code, base.Display = str("system"), str("code"), str("display")
		return append(out, base)
	}
	return out
}

func appendReference(out []Value, base Value, v any) []Value {
	switch x := v.(type) {
	case string: // canonical, uri
		setRef(&base, x)
		return append(out, base)
	case map[string]any:
		ref, _ := x["reference"].(string)
		if ref != "" {
			setRef(&base, ref)
		}
		if base.RefType == "" {
			if t, ok := x["type"].(string); ok && IsResourceType(t) {
				base.RefType = t
			}
		}
		if id, ok := x["identifier"].(map[string]any); ok {
			base.System, _ = id["system"].(string)
			base.Code, _ = id["value"].(string)
		}
		if ref != "" || base.Code != "" {
			return append(out, base)
		}
	}
	return out
}

// setRef classifies a reference string: "Type/id" (optionally with
// /_history/n) is local; anything with a scheme, "#", or that does not
// parse as Type/id is kept whole in RefURL.
func setRef(v *Value, ref string) {
	typ, id, ok := fhirpath.SplitReference(ref)
	local := ok && strings.Count(strings.SplitN(ref, "/_history/", 2)[0], "/") == 1 && IsResourceType(typ)
	if local {
		v.RefType, v.RefID = typ, id
		return
	}
	v.RefURL = ref
	if ok && IsResourceType(typ) {
		v.RefType = typ
	}
}

func appendDates(out []Value, base Value, v any) []Value {
	switch x := v.(type) {
	case string:
		if lo, hi, err := DateRange(x); err == nil {
			base.Low, base.High = lo, hi
			return append(out, base)
		}
	case map[string]any:
		if events, ok := x["event"].([]any); ok { // Timing
			for _, e := range events {
				out = appendDates(out, base, e)
			}
			return out
		}
		start, hasStart := x["start"].(string)
		end, hasEnd := x["end"].(string)
		if !hasStart && !hasEnd {
			return out
		}
		base.Low, base.High = MinTime, MaxTime
		if hasStart {
			lo, _, err := DateRange(start)
			if err != nil {
				return out
			}
			base.Low = lo
		}
		if hasEnd {
			_, hi, err := DateRange(end)
			if err != nil {
				return out
			}
			base.High = hi
		}
		return append(out, base)
	}
	return out
}

// appendQuantities handles decimals, Quantity (and Age, Duration, Money...),
// Range (low and high each become a value) and SampledData (its origin).
func appendQuantities(out []Value, base Value, v any) []Value {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return out
		}
		base.Number, base.NumberText = f, string(x)
		return append(out, base)
	case map[string]any:
		if num, ok := x["value"].(json.Number); ok {
			str := func(k string) string { s, _ := x[k].(string); return s }
			base.System, base.Code = str("system"), str("code")
			base.Unit = base.Code
			if base.Unit == "" {
				base.Unit = str("unit")
			}
			if base.Unit == "" {
				base.Unit = str("currency")
			}
			return appendQuantities(out, base, num)
		}
		for _, k := range []string{"low", "high", "origin"} {
			if q, ok := x[k].(map[string]any); ok {
				out = appendQuantities(out, base, q)
			}
		}
	}
	return out
}
