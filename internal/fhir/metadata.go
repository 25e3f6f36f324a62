package fhir

import (
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/wardhealth/ward/internal/fhir/search"
)

// capability is built once: it depends only on the registry.
var capabilityOnce = sync.OnceValue(buildCapability)

func buildCapability() map[string]any {
	interactions := []map[string]string{}
	for _, code := range []string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"} {
		interactions = append(interactions, map[string]string{"code": code})
	}
	var resources []map[string]any
	for _, typ := range search.ResourceTypes() {
		var params []map[string]string
		for _, p := range search.Params(typ) {
			if p.Type == "special" && !p.IsNear() || p.Type == "composite" && !p.Composite() {
				continue // not indexed: listing them would be untrue
			}
			params = append(params, map[string]string{"name": p.Name, "type": p.Type})
		}
		ops := []map[string]string{{"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}}
		switch typ {
		case "Patient":
			ops = append(ops, map[string]string{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
				map[string]string{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"})
		case "Group":
			ops = append(ops, map[string]string{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"})
		case "ValueSet": // termops.go
			ops = append(ops, map[string]string{"name": "expand", "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"},
				map[string]string{"name": "validate-code", "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code"})
		case "CodeSystem":
			ops = append(ops, map[string]string{"name": "lookup", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"},
				map[string]string{"name": "validate-code", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code"},
				map[string]string{"name": "subsumes", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes"})
		}
		resources = append(resources, map[string]any{
			"type": typ, "interaction": interactions, "versioning": "versioned", "readHistory": true,
			"updateCreate": true, "conditionalCreate": true, "conditionalUpdate": true, "conditionalDelete": "single",
			"searchInclude": []string{"*"}, "searchRevInclude": []string{"*"}, "searchParam": params,
			"operation": ops,
		})
	}
	return map[string]any{
		"resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-22", "kind": "instance",
		"software": map[string]string{"name": "Ward"},
		// Bulk Data Access (docs/bulk-export.md).
		"instantiates": []string{"http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"},
		"fhirVersion":  "4.0.1", "format": []string{"json"}, "patchFormat": []string{"application/json-patch+json"},
		"rest": []map[string]any{{
			"mode": "server", "resource": resources,
			"interaction": []map[string]string{{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"},
				{"code": "search-system", "documentation": "GET [base]?_type=... and POST [base]/_search: one counted query per type, at most _count resources read; no _sort"}},
			// Compartment search: GET [base]/[Compartment]/[id]/[type or *].
			"compartment": compartmentURLs(),
			"operation":   []map[string]string{{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}},
			// Parameters of every type beyond those the registry lists.
			"searchParam": []map[string]string{{"name": "_list", "type": "special", "documentation": "resources a List (by id) holds"},
				{"name": "_text", "type": "string", "documentation": "a phrase in the narrative"},
				{"name": "_filter", "type": "special", "documentation": "and, or, not over the type's own parameters"}},
			"security": map[string]any{"description": "OAuth2 bearer tokens from /oauth/token; every interaction is checked against the caller's access policy."},
		}},
	}
}

func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) error {
	cs := capabilityOnce()
	out := make(map[string]any, len(cs)+1)
	for k, v := range cs {
		out[k] = v
	}
	out["implementation"] = map[string]string{"description": "Ward FHIR R4 API", "url": h.base}
	writeFHIR(w, http.StatusOK, out)
	return nil
}

// compartmentURLs are the canonical URLs of the R4 CompartmentDefinitions
// Ward searches by.
func compartmentURLs() []string {
	var out []string
	for comp := range r4Compartments {
		out = append(out, "http://hl7.org/fhir/CompartmentDefinition/"+strings.ToLower(comp[:1])+comp[1:])
	}
	slices.Sort(out)
	return out
}
