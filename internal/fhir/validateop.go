package fhir

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
)

// validateOp is POST [type]/$validate and [type]/[id]/$validate: would the
// resource be accepted by a create (mode create, the default), an update
// (mode update) or is the resource's deletion allowed (mode delete)? The
// body is the resource, or a Parameters with "resource", "mode" and
// "profile" (mode may also be a query parameter). It needs the action of
// that interaction, writes nothing, and answers 200 with an
// OperationOutcome listing every problem, or one "All OK" information
// (R4 resource-operation-validate: 4xx only when validation could not be
// performed). Profiles are not checked, only the base definitions: a
// warning says so.
func (h *Handler) validateOp(w http.ResponseWriter, r *http.Request, p auth.Principal, typ, id string) error {
	if err := checkType(typ); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	in, err := validateInput(body, typ, r.URL.Query().Get("mode"))
	if err != nil {
		return err
	}
	if in.resourceID != "" && id != "" && in.resourceID != id && in.mode != "create" {
		return fault.Invalid("the resource's id %q does not match the URL's %q", in.resourceID, id)
	}
	if id == "" && in.mode != "create" {
		id = in.resourceID
	}
	action := map[string]string{"create": "FHIR:Create", "update": "FHIR:Update", "delete": "FHIR:Delete"}[in.mode]
	switch {
	case action == "":
		return fault.Invalid("mode must be create, update or delete, not %q", in.mode)
	case in.mode != "create" && id == "":
		return fault.Invalid("mode %s needs the resource's id: call [type]/[id]/$validate", in.mode)
	case in.mode == "create":
		id = ""
	}
	if _, err := h.svc.decide(r.Context(), p, action, typ, id); err != nil {
		return err
	}
	oo := operationOutcome{ResourceType: "OperationOutcome"}
	if in.mode != "delete" {
		if in.resource == nil {
			return fault.Invalid("the body must be the resource, or a Parameters with a resource parameter")
		}
		// Errors and warnings (empty objects and arrays, which a write
		// would drop) alike, in document order.
		_, issues, err := validateIssues(in.resource, typ)
		var inv *InvalidResource
		if err != nil && !errors.As(err, &inv) {
			return err
		}
		for _, is := range issues {
			oo.Issue = append(oo.Issue, schemaIssue(is))
		}
		if err == nil && in.mode == "update" && in.resourceID == "" {
			oo.Issue = append(oo.Issue, outcomeIssue{Severity: "error", Code: "required", Details: &text{"an update needs the resource's id"}, Expression: []string{typ + ".id"}})
		}
	}
	for _, prof := range in.profiles {
		oo.Issue = append(oo.Issue, outcomeIssue{Severity: "warning", Code: "not-supported",
			Details: &text{"profile " + prof + " was not checked: only the base R4 definitions are"}})
	}
	if len(oo.Issue) == 0 {
		oo = outcome("information", "informational", "All OK")
	}
	writeFHIR(w, http.StatusOK, oo)
	return nil
}

// validateRequest is what a $validate call asks.
type validateRequest struct {
	resource   json.RawMessage // nil when none was given
	resourceID string
	mode       string
	profiles   []string
}

// validateInput reads a $validate body: the resource itself, or (unless
// Parameters is what is validated) a Parameters resource.
func validateInput(body []byte, typ, mode string) (validateRequest, error) {
	in := validateRequest{mode: mode}
	if len(body) == 0 {
		if in.mode == "" {
			in.mode = "create"
		}
		return in, nil
	}
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Parameter    []struct {
			Name        string          `json:"name"`
			ValueCode   string          `json:"valueCode"`
			ValueURI    string          `json:"valueUri"`
			ValueCanon  string          `json:"valueCanonical"`
			Resource    json.RawMessage `json:"resource"`
			ValueString string          `json:"valueString"`
		} `json:"parameter"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return in, fault.Invalid("the body must be a JSON resource: %s", jsonErr(err))
	}
	if head.ResourceType != "Parameters" || typ == "Parameters" {
		in.resource, in.resourceID = body, head.ID
	} else {
		for _, prm := range head.Parameter {
			switch prm.Name {
			case "resource":
				in.resource = prm.Resource
			case "mode":
				if in.mode == "" {
					in.mode = prm.ValueCode
				}
			case "profile":
				in.profiles = append(in.profiles, prm.ValueURI+prm.ValueCanon+prm.ValueString)
			}
		}
		if in.resource != nil {
			var r struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(in.resource, &r)
			in.resourceID = r.ID
		}
	}
	if in.mode == "" {
		in.mode = "create"
	}
	return in, nil
}
