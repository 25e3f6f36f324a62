package fhir

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
)

// termParams are the inputs of a terminology operation: from the query string (GET) or a
// Parameters body (POST), by name. Primitives keep their text; a Coding parameter (coding,
// codingA, codingB) is split into its system and code.
type termParams struct {
	values   map[string]string
	resource map[string]json.RawMessage // valueSet, codeSystem given inline
}

func (tp termParams) get(name string) string { return tp.values[name] }

// intParam reads a non-negative integer parameter, def when absent.
func (tp termParams) intParam(name string, def int) (int, error) {
	s := tp.values[name]
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fault.Invalid("%s must be a non-negative integer, not %q", name, s)
	}
	return n, nil
}

// maxTermParam bounds one parameter's text.
const maxTermParam = 4096

// readTermParams reads GET query parameters, or a POST body that is a Parameters resource
// (query parameters count too). A parameter given twice is a 400.
func readTermParams(r *http.Request) (termParams, error) {
	tp := termParams{values: map[string]string{}, resource: map[string]json.RawMessage{}}
	if err := tp.addQuery(r.URL.Query()); err != nil {
		return tp, err
	}
	if r.Method != http.MethodPost {
		return tp, nil
	}
	body, err := readBody(r)
	if err != nil {
		return tp, err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return tp, nil
	}
	return tp, tp.addParameters(body)
}

func (tp termParams) addQuery(q url.Values) error {
	for k, vs := range q {
		if len(vs) > 1 {
			return fault.Invalid("parameter %s is given %d times", k, len(vs))
		}
		if len(vs[0]) > maxTermParam {
			return fault.Invalid("parameter %s is longer than %d characters", k, maxTermParam)
		}
		tp.values[k] = vs[0]
	}
	return nil
}

// parseTermParameters reads a Parameters resource of a terminology operation (the parser of
// outside input behind POST; FuzzTermParameters).
func parseTermParameters(body []byte) (termParams, error) {
	tp := termParams{values: map[string]string{}, resource: map[string]json.RawMessage{}}
	return tp, tp.addParameters(body)
}

func (tp termParams) addParameters(body []byte) error {
	var p struct {
		ResourceType string                       `json:"resourceType"`
		Parameter    []map[string]json.RawMessage `json:"parameter"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fault.Invalid("the body must be a Parameters resource: %s", jsonErr(err))
	}
	if p.ResourceType != "Parameters" {
		return fault.Invalid("the body must be a Parameters resource, not %q", p.ResourceType)
	}
	for i, prm := range p.Parameter {
		var name string
		if err := json.Unmarshal(prm["name"], &name); err != nil || name == "" {
			return fault.Invalid("parameter %d has no name", i)
		}
		if _, dup := tp.values[name]; dup {
			return fault.Invalid("parameter %s is given more than once", name)
		}
		if _, dup := tp.resource[name]; dup {
			return fault.Invalid("parameter %s is given more than once", name)
		}
		if res, ok := prm["resource"]; ok {
			tp.resource[name] = res
			continue
		}
		if c, ok := prm["valueCoding"]; ok {
			var coding struct {
				System  string `json:"system"`
				Code    string `json:"code"`
				Display string `json:"display"`
			}
			if err := json.Unmarshal(c, &coding); err != nil {
				return fault.Invalid("parameter %s: valueCoding must be a Coding", name)
			}
			tp.values[name+".system"], tp.values[name+".code"], tp.values[name+".display"] = coding.System, coding.Code, coding.Display
			tp.values[name] = coding.Code
			continue
		}
		found := false
		for k, raw := range prm {
			if !strings.HasPrefix(k, "value") {
				continue
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				var n json.Number
				if err := json.Unmarshal(raw, &n); err != nil {
					var b bool
					if err := json.Unmarshal(raw, &b); err != nil {
						return fault.Invalid("parameter %s: %s must be a primitive or a Coding", name, k)
					}
					s = strconv.FormatBool(b)
				} else {
					s = n.String()
				}
			}
			if len(s) > maxTermParam {
				return fault.Invalid("parameter %s is longer than %d characters", name, maxTermParam)
			}
			tp.values[name], found = s, true
			break
		}
		if !found {
			return fault.Invalid("parameter %s has no value", name)
		}
	}
	return nil
}
