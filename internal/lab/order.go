package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/hl7v2"
	"github.com/wardhealth/ward/internal/store"
)

// SubmitRequest is the SDK's LabOrderSubmitParams, plus Ward's routeGuid
// (needed only when several of the project's routes share the account
// number).
type SubmitRequest struct {
	AccountNumber  string          `json:"accountNumber"`
	ServiceRequest json.RawMessage `json:"serviceRequest"` // "ServiceRequest/id" or a list of them
	OrderNumber    string          `json:"orderNumber"`
	RouteGUID      string          `json:"routeGuid"`
	PrimaryID      string          `json:"primaryId"`
}

// maxOrderTests bounds the ServiceRequests of one order.
const maxOrderTests = 50

// Submit sends the ServiceRequests as one ORM^O01 to the route's lab and
// waits for its acceptance. Everything in the order is read as the caller
// (FHIR:Read on each ServiceRequest, its Patient, Coverage and requester),
// so nobody sends a lab what they could not read. The message control id
// is derived from the route and the order, so a submit repeated (by the
// SDK's retries, or by hand) is the same message: once the lab accepted
// it, Ward answers without sending it again; before that, the lab sees
// the same control id again and can discard the copy.
func (s *Service) Submit(ctx context.Context, p auth.Principal, body []byte) (map[string]any, error) {
	var in SubmitRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fault.Invalid("the body must be {accountNumber, serviceRequest, orderNumber?}: %v", err)
	}
	refs, err := serviceRequestRefs(in.ServiceRequest)
	if err != nil {
		return nil, err
	}
	if in.AccountNumber == "" {
		return nil, fault.Invalid("accountNumber is required")
	}
	if len(in.OrderNumber) > 50 || strings.ContainsAny(in.OrderNumber, "\r\n") {
		return nil, fault.Invalid("orderNumber must be at most 50 characters on one line")
	}
	route, err := s.submitRoute(ctx, p.ProjectID, in)
	if err != nil {
		return nil, err
	}
	ord, err := s.readOrder(ctx, p, refs)
	if err != nil {
		return nil, err
	}
	ord.route, ord.orderNumber = route, in.OrderNumber
	ord.controlID = controlID(p.ProjectID, route.RouteGUID, refs, in.OrderNumber)
	state, err := s.store.BeginLabOrder(ctx, p.ProjectID, ord.controlID, route.RouteGUID, s.now())
	if err != nil {
		return nil, err
	}
	if state == store.LabOrderAccepted {
		return map[string]any{"controlId": ord.controlID, "status": "accepted", "duplicate": true}, nil
	}
	msg := s.orderMessage(ord)
	if err := s.send(ctx, route.MLLPAddress, ord.controlID, msg.Encode()); err != nil {
		return nil, err
	}
	if err := s.store.AcceptLabOrder(ctx, p.ProjectID, ord.controlID, s.now()); err != nil {
		return nil, err
	}
	return map[string]any{"controlId": ord.controlID, "status": "accepted"}, nil
}

func serviceRequestRefs(raw json.RawMessage) ([]string, error) {
	var one string
	var many []string
	if err := json.Unmarshal(raw, &one); err == nil {
		many = []string{one}
	} else if err := json.Unmarshal(raw, &many); err != nil || len(raw) == 0 {
		return nil, fault.Invalid("serviceRequest must be \"ServiceRequest/<id>\" or a list of them")
	}
	if len(many) == 0 || len(many) > maxOrderTests {
		return nil, fault.Invalid("an order holds 1 to %d ServiceRequests", maxOrderTests)
	}
	ids := make([]string, 0, len(many))
	seen := map[string]bool{}
	for _, r := range many {
		id, ok := strings.CutPrefix(r, "ServiceRequest/")
		if !ok || !validID(id) {
			return nil, fault.Invalid("serviceRequest %q must be ServiceRequest/<id>", r)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// validID is a FHIR id: [A-Za-z0-9-.]{1,64}.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(isAlnum(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// submitRoute is the route named, or the one route with the account number.
func (s *Service) submitRoute(ctx context.Context, projectID string, in SubmitRequest) (Route, error) {
	if in.RouteGUID != "" {
		rt, err := s.GetRoute(ctx, projectID, in.RouteGUID)
		if err != nil {
			return Route{}, err
		}
		if rt.AccountNumber != in.AccountNumber {
			return Route{}, fault.Invalid("route %s is not for account %q", in.RouteGUID, in.AccountNumber)
		}
		return rt, nil
	}
	all, err := s.ListRoutes(ctx, projectID)
	if err != nil {
		return Route{}, err
	}
	var match []Route
	for _, r := range all {
		if r.AccountNumber == in.AccountNumber {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 0:
		return Route{}, fault.NotFound("no lab route has account number %q (create one with lab.routeCreate)", in.AccountNumber)
	case 1:
		return match[0], nil
	}
	return Route{}, fault.Invalid("%d routes have account number %q: name one with routeGuid", len(match), in.AccountNumber)
}

// controlID is MSH-10 (at most 20 characters in v2.5.1): a hash of what
// makes the order this order.
func controlID(projectID, route string, ids []string, orderNumber string) string {
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	h := sha256.Sum256([]byte(projectID + "\x00" + route + "\x00" + strings.Join(sorted, ",") + "\x00" + orderNumber))
	return hex.EncodeToString(h[:10])
}

// order is what an ORM^O01 is made of.
type order struct {
	route       Route
	controlID   string
	orderNumber string
	requests    []map[string]any
	patient     map[string]any
	coverage    map[string]any // nil: none
	requester   map[string]any // nil: none readable as a Practitioner
}

func (s *Service) readOrder(ctx context.Context, p auth.Principal, ids []string) (order, error) {
	var ord order
	subject := ""
	for _, id := range ids {
		sr, err := s.read(ctx, p, "ServiceRequest", id)
		if err != nil {
			return order{}, err
		}
		ref := str(sr, "subject", "reference")
		if !strings.HasPrefix(ref, "Patient/") {
			return order{}, fault.Invalid("ServiceRequest/%s needs a subject that is a Patient", id)
		}
		if subject != "" && ref != subject {
			return order{}, fault.Invalid("the ServiceRequests of one order must have the same subject")
		}
		subject = ref
		if len(codings(sr["code"])) == 0 {
			return order{}, fault.Invalid("ServiceRequest/%s needs a code (the lab's item code)", id)
		}
		ord.requests = append(ord.requests, sr)
	}
	var err error
	if ord.patient, err = s.read(ctx, p, "Patient", strings.TrimPrefix(subject, "Patient/")); err != nil {
		return order{}, err
	}
	first := ord.requests[0]
	if ins, _ := first["insurance"].([]any); len(ins) > 0 {
		if m, ok := ins[0].(map[string]any); ok {
			if id, ok := strings.CutPrefix(str(m, "reference"), "Coverage/"); ok {
				if ord.coverage, err = s.read(ctx, p, "Coverage", id); err != nil {
					return order{}, err
				}
			}
		}
	}
	if id, ok := strings.CutPrefix(str(first, "requester", "reference"), "Practitioner/"); ok {
		if ord.requester, err = s.read(ctx, p, "Practitioner", id); err != nil {
			return order{}, err
		}
	}
	return ord, nil
}

// read is a FHIR read as the caller, decoded.
func (s *Service) read(ctx context.Context, p auth.Principal, typ, id string) (map[string]any, error) {
	if !validID(id) {
		return nil, fault.Invalid("%s/%s is not a valid reference", typ, id)
	}
	r, err := s.fhir.Read(ctx, p, typ, id)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(r.Content, &m); err != nil {
		return nil, fmt.Errorf("stored %s/%s: %w", typ, id, err)
	}
	return m, nil
}

// str walks nested objects (the first element of arrays) to a string.
func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, k := range path {
		if a, ok := cur.([]any); ok {
			if len(a) == 0 {
				return ""
			}
			cur = a[0]
		}
		o, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = o[k]
	}
	s, _ := cur.(string)
	return s
}

func codings(cc any) []coding {
	m, ok := cc.(map[string]any)
	if !ok {
		return nil
	}
	list, _ := m["coding"].([]any)
	var out []coding
	for _, c := range list {
		if cm, ok := c.(map[string]any); ok {
			code, _ := cm["code"].(string)
			if code == "" {
				continue
			}
			sys, _ := cm["system"].(string)
			disp, _ := cm["display"].(string)
			out = append(out, coding{System: sys, Code: code, Display: disp})
		}
	}
	return out
}

// hl7Code is an HL7 CE/CWE (code, text, coding system) from a FHIR
// CodeableConcept, preferring the lab's own item code.
func hl7Code(cc any, labGUID string) hl7v2.Field {
	cs := codings(cc)
	if len(cs) == 0 {
		return hl7v2.Value("")
	}
	pick := cs[0]
	for _, c := range cs {
		if c.System == LabSystem(labGUID) {
			pick = c
			break
		}
	}
	text := pick.Display
	if m, ok := cc.(map[string]any); ok && text == "" {
		text, _ = m["text"].(string)
	}
	return hl7v2.Components(pick.Code, text, hl7System(pick.System, labGUID))
}

func hl7System(system, labGUID string) string {
	switch system {
	case loincSystem:
		return "LN"
	case LabSystem(labGUID):
		return "L"
	case "http://www.ama-assn.org/go/cpt":
		return "C4"
	}
	return system
}

func fhirSystem(hl7 string, labGUID string) string {
	switch hl7 {
	case "LN":
		return loincSystem
	case "L", "99" + "LAB", "":
		return LabSystem(labGUID)
	case "C4":
		return "http://www.ama-assn.org/go/cpt"
	}
	return "urn:ward:hl7v2:coding-system:" + url.PathEscape(hl7)
}

func hl7Gender(g string) string {
	switch g {
	case "male":
		return "M"
	case "female":
		return "F"
	case "other":
		return "O"
	}
	return "U"
}

// orderMessage is the ORM^O01: MSH, PID, IN1 (with a Coverage), then an
// ORC and an OBR per ServiceRequest, placer order number = its id (the
// results' OBR-2 names it back).
func (s *Service) orderMessage(o order) *hl7v2.Message {
	now := hl7Time(s.now())
	rt := o.route
	m := hl7v2.NewMessage(hl7v2.Value(s.cfg.Facility), hl7v2.Value(rt.AccountNumber), hl7v2.Value(rt.LabGUID),
		hl7v2.Value(rt.LabGUID), hl7v2.Value(now), hl7v2.Value(""), hl7v2.Components("ORM", "O01", "ORM_O01"),
		hl7v2.Value(o.controlID), hl7v2.Value("P"), hl7v2.Value("2.5.1"))
	pt := o.patient
	ptID, _ := pt["id"].(string)
	m.Add("PID", hl7v2.Value("1"), hl7v2.Value(""), hl7v2.Components(ptID, "", "", s.cfg.Facility, "PI"), hl7v2.Value(""),
		hl7v2.Components(str(pt, "name", "family"), firstGiven(pt)), hl7v2.Value(""),
		hl7v2.Value(strings.ReplaceAll(str(pt, "birthDate"), "-", "")), hl7v2.Value(hl7Gender(str(pt, "gender"))))
	if c := o.coverage; c != nil {
		f := make([]hl7v2.Field, 36)
		for i := range f {
			f[i] = hl7v2.Value("")
		}
		f[0] = hl7v2.Value("1")
		f[2] = hl7v2.Value(str(c, "payor", "identifier", "value"))
		f[3] = hl7v2.Value(str(c, "payor", "display"))
		f[35] = hl7v2.Value(str(c, "subscriberId"))
		m.Add("IN1", f...)
	}
	var doctor hl7v2.Field = hl7v2.Value("")
	if r := o.requester; r != nil {
		doctor = hl7v2.Components(npi(r), str(r, "name", "family"), firstGiven(r))
	}
	group := o.orderNumber
	if group == "" {
		group = o.controlID
	}
	for i, sr := range o.requests {
		id, _ := sr["id"].(string)
		orc := make([]hl7v2.Field, 12)
		for j := range orc {
			orc[j] = hl7v2.Value("")
		}
		orc[0], orc[1], orc[3], orc[8], orc[11] = hl7v2.Value("NW"), hl7v2.Value(id), hl7v2.Value(group), hl7v2.Value(now), doctor
		m.Add("ORC", orc...)
		obr := make([]hl7v2.Field, 16)
		for j := range obr {
			obr[j] = hl7v2.Value("")
		}
		obr[0], obr[1], obr[3] = hl7v2.Value(fmt.Sprint(i+1)), hl7v2.Value(id), hl7Code(sr["code"], rt.LabGUID)
		obr[6] = hl7v2.Value(hl7Time(parseFHIRTime(str(sr, "authoredOn"), s.now())))
		obr[15] = doctor
		m.Add("OBR", obr...)
	}
	return m
}

func firstGiven(m map[string]any) string {
	names, _ := m["name"].([]any)
	if len(names) == 0 {
		return ""
	}
	n, _ := names[0].(map[string]any)
	given, _ := n["given"].([]any)
	if len(given) == 0 {
		return ""
	}
	g, _ := given[0].(string)
	return g
}

func npi(m map[string]any) string {
	ids, _ := m["identifier"].([]any)
	for _, i := range ids {
		if im, ok := i.(map[string]any); ok && im["system"] == "http://hl7.org/fhir/sid/us-npi" {
			v, _ := im["value"].(string)
			return v
		}
	}
	id, _ := m["id"].(string)
	return id
}
