package fhirpath

import (
	"encoding/json"
	"strings"
)

// choiceSuffix maps the type suffix of a choice element ("valueQuantity")
// to the FHIR type name. It lists every type R4 allows in a choice [x].
var choiceSuffix = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{
		"base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
		"instant", "integer", "markdown", "oid", "positiveInt", "string", "time",
		"unsignedInt", "uri", "url", "uuid",
		"Address", "Age", "Annotation", "Attachment", "CodeableConcept", "Coding",
		"ContactPoint", "Count", "Distance", "Duration", "HumanName", "Identifier", "Money",
		"Period", "Quantity", "Range", "Ratio", "Reference", "SampledData", "Signature",
		"Timing", "ContactDetail", "Contributor", "DataRequirement", "Expression",
		"ParameterDefinition", "RelatedArtifact", "TriggerDefinition", "UsageContext",
		"Dosage", "Meta",
	} {
		m[strings.ToUpper(t[:1])+t[1:]] = t
	}
	return m
}()

// subtypes lists the types an "is"/"as" test also accepts for a supertype:
// Age, Count, Distance, Duration and SimpleQuantity are Quantity profiles,
// and the string-like primitives specialise string or uri.
var subtypes = map[string][]string{
	"quantity": {"age", "count", "distance", "duration", "simplequantity", "moneyquantity"},
	"string":   {"code", "id", "markdown"},
	"uri":      {"url", "canonical", "oid", "uuid"},
	"integer":  {"positiveint", "unsignedint"},
}

// isType reports whether it is of type name (or a subtype). Names compare
// case-insensitively because FHIR and System namespaces differ only in case
// (dateTime vs DateTime, string vs String), and the R4 definitions mix them.
func isType(it Item, name string) bool {
	want := trimNamespace(name)
	have := itemType(it)
	if have == "" {
		return false
	}
	if strings.EqualFold(have, want) {
		return true
	}
	if strings.EqualFold(want, "Resource") || strings.EqualFold(want, "DomainResource") {
		m, ok := it.Value.(map[string]any)
		_, isRes := m["resourceType"]
		return ok && isRes
	}
	for _, sub := range subtypes[strings.ToLower(want)] {
		if strings.EqualFold(have, sub) {
			return true
		}
	}
	return false
}

// itemType is the declared type, else what the JSON itself shows.
func itemType(it Item) string {
	if it.Type != "" {
		return it.Type
	}
	switch v := it.Value.(type) {
	case map[string]any:
		if rt, ok := v["resourceType"].(string); ok {
			return rt
		}
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return "decimal"
		}
		return "integer"
	case float64:
		return "decimal"
	}
	return ""
}
