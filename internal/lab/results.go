package lab

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/hl7v2"
	"github.com/wardhealth/ward/internal/store"
)

// Acknowledgment codes (original mode).
const (
	AckAccept = "AA"
	AckError  = "AE" // could not be stored now: the sender may try again
	AckReject = "AR" // never will be: wrong route or secret, malformed
)

// Outcome is what ingesting one message came to.
type Outcome struct {
	Code      string // AckAccept, AckError or AckReject
	Text      string // why, for the ACK (never a secret)
	ControlID string
	Duplicate bool // accepted before: nothing stored this time
	ProjectID string
	Reports   []string // DiagnosticReport ids
}

func reject(ctrl, format string, args ...any) Outcome {
	return Outcome{Code: AckReject, ControlID: ctrl, Text: fmt.Sprintf(format, args...)}
}

// ResultIdentifierSystem names a report's HL7 origin: the route; the value
// is the message control id and the OBR's position.
func ResultIdentifierSystem(routeGUID string) string { return "urn:ward:hl7v2:" + routeGUID }

// Ingest stores an ORU^R01: one DiagnosticReport per OBR, based on the
// ServiceRequest its placer order number (OBR-2) names, with an Observation
// per OBX, all in one transaction. The route is MSH-6 (receiving
// facility) and its secret MSH-8 (security): a result names its project
// only by proving it knows the route's secret. The route and control id
// are recorded with the resources (store.LabResultKey), so a message sent
// again is found and acknowledged without a second copy.
func (s *Service) Ingest(ctx context.Context, raw []byte) Outcome {
	m, err := hl7v2.Parse(raw)
	if err != nil {
		return reject("", "%v", err)
	}
	return s.ingest(ctx, m)
}

// ingest is Ingest of a parsed message.
func (s *Service) ingest(ctx context.Context, m *hl7v2.Message) Outcome {
	msh := m.Segments[0]
	ctrl := msh.V(10)
	if ctrl == "" || len(ctrl) > 199 {
		return reject(ctrl, "MSH-10 (message control id) must be 1 to 199 characters")
	}
	if msh.C(9, 1) != "ORU" || msh.C(9, 2) != "R01" {
		return reject(ctrl, "only ORU^R01 is accepted, not %s^%s", msh.C(9, 1), msh.C(9, 2))
	}
	// The route, whether the message is stored already (its key is
	// written with the resources, in one transaction: if it is there, all
	// of the message is) and the first order: one query.
	look, err := s.store.LookupLabResult(ctx, msh.V(6), ctrl, derivedID(msh.V(6), ctrl, 1), firstOrder(m))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.ErrorContext(ctx, "lab result not stored", "route", msh.V(6), "control_id", ctrl, "err", err)
		return Outcome{Code: AckError, ControlID: ctrl, Text: "the result could not be stored now; send it again"}
	}
	route := look.Route
	if !s.authenticate(route, err == nil, msh.V(8)) {
		return reject(ctrl, "unknown route or wrong secret (MSH-6, MSH-8)")
	}
	out := Outcome{ControlID: ctrl, ProjectID: route.ProjectID}
	if look.Stored {
		out.Code, out.Duplicate, out.Text = AckAccept, true, "already received"
		return out
	}
	orders := map[string]store.Resource{}
	if look.OrderFound {
		orders[look.Order.ID] = look.Order
	}
	for attempt := 0; ; attempt++ {
		puts, reports, err := s.resultResources(ctx, route, m, ctrl, orders)
		if err != nil {
			var bad badResult
			if errors.As(err, &bad) {
				return reject(ctrl, "%s", bad.msg)
			}
			s.log.ErrorContext(ctx, "lab result not stored", "route", route.RouteGUID, "control_id", ctrl, "err", err)
			return Outcome{Code: AckError, ControlID: ctrl, Text: "the result could not be stored now; send it again"}
		}
		out.Reports = reports
		key := store.LabResultKey{ProjectID: route.ProjectID, RouteGUID: route.RouteGUID, ControlID: ctrl, ReportID: reports[0]}
		dup, err := s.storeResults(ctx, key, puts)
		if dup {
			out.Code, out.Duplicate, out.Text = AckAccept, true, "already received"
			return out
		}
		// An order completed or edited since it was read (another result
		// of it, say): read it again rather than overwrite it.
		if errors.Is(err, fault.ErrPrecondition) && attempt < 3 {
			clear(orders)
			continue
		}
		return s.stored(ctx, out, route, err)
	}
}

// firstOrder is the ServiceRequest id the message's first OBR names (""
// when it names none that could be one): read with the route.
func firstOrder(m *hl7v2.Message) string {
	for _, seg := range m.Segments {
		if seg.Name == "OBR" {
			if id := seg.V(2); validID(id) {
				return id
			}
			return ""
		}
	}
	return ""
}

// stored is the outcome of a message whose write returned err.
func (s *Service) stored(ctx context.Context, out Outcome, route store.LabRoute, err error) Outcome {
	ctrl := out.ControlID
	if err != nil {
		if errors.Is(err, fault.ErrInvalid) {
			// What the message says cannot be stored as FHIR: sending it
			// again will not help.
			return reject(ctrl, "the result is not valid FHIR: %v", err)
		}
		s.log.ErrorContext(ctx, "lab result not stored", "route", route.RouteGUID, "control_id", ctrl, "err", err)
		return Outcome{Code: AckError, ControlID: ctrl, Text: "the result could not be stored now; send it again"}
	}
	out.Code = AckAccept
	return out
}

// storeResults writes a message's resources in one transaction, durable
// on return. They are new (the duplicate check found the first report
// absent), so they are written as creates, batched with other messages'
// (batcher), with the new version of an order a final result completes
// (refused, as a conflict, if the order changed since it was read), and
// key, which records the message as stored. dup: the message was stored
// meanwhile (the same message arriving twice at once); nothing was
// written this time.
func (s *Service) storeResults(ctx context.Context, key store.LabResultKey, puts []resultPut) (dup bool, err error) {
	projectID := key.ProjectID
	w := &resultWrite{ctx: ctx, key: &key}
	for _, p := range puts {
		r, index, err := s.fhir.PrepareSystemResource(projectID, p.typ, p.id, p.m, p.ifVersion)
		if errors.Is(err, fhir.ErrHooked) {
			// A type whose writes run a hook: one at a time, as PUTs.
			return false, s.putAll(ctx, key, puts)
		}
		if err != nil {
			return false, err
		}
		if p.ifVersion != 0 {
			// The order a final result completes: a new version of it.
			w.updates, w.updateIndex = append(w.updates, r), append(w.updateIndex, index)
			continue
		}
		w.rs, w.index = append(w.rs, r), append(w.index, index)
	}
	err = s.batch.write(w)
	if errors.Is(err, store.ErrConflict) {
		// The message was stored meanwhile (its key is taken), or (not by
		// Ward) a resource was written at one of its new ids: that one is
		// replaced, as a PUT does.
		look, lerr := s.store.LookupLabResult(ctx, key.RouteGUID, key.ControlID, derivedID(key.RouteGUID, key.ControlID, 1), "")
		if lerr == nil && look.Stored {
			return true, nil
		}
		err = s.putAll(ctx, key, puts)
	}
	if err != nil {
		return false, err
	}
	s.fhir.Committed()
	return false, nil
}

// resultPut is one resource of a message, built as decoded JSON: handed to
// fhir.PrepareSystemResource as it is, so that its JSON is encoded once.
type resultPut struct {
	typ, id string
	m       map[string]any
	// ifVersion, when not 0, is the version of the order this write
	// completes (fhir.SystemPut.IfVersion).
	ifVersion int64
}

// systemPuts is puts as JSON bodies.
func systemPuts(puts []resultPut) ([]fhir.SystemPut, error) {
	out := make([]fhir.SystemPut, len(puts))
	for i, p := range puts {
		body, err := json.Marshal(p.m)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", p.typ, p.id, err)
		}
		out[i] = fhir.SystemPut{Type: p.typ, ID: p.id, Body: body, IfVersion: p.ifVersion}
	}
	return out, nil
}

// putAll writes puts one by one as PUTs, and key, in one transaction
// (fhir.SystemPutAll): for what a batch cannot take.
func (s *Service) putAll(ctx context.Context, key store.LabResultKey, puts []resultPut) error {
	sp, err := systemPuts(puts)
	if err != nil {
		return err
	}
	return s.fhir.SystemPutAll(ctx, key.ProjectID, sp, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertLabResultKeys(ctx, []store.LabResultKey{key})
	})
}

// authenticate checks the secret against the route's in constant time;
// an unknown route (found false) costs the same hash and comparison.
func (s *Service) authenticate(r store.LabRoute, found bool, secret string) bool {
	want := r.SecretHash
	if !found {
		want = strings.Repeat("0", 64)
	}
	got := secretHash(secret)
	ok := subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	return ok && found && secret != ""
}

// badResult is a message that will never be stored (AR).
type badResult struct{ msg string }

func (b badResult) Error() string { return b.msg }

func bad(format string, args ...any) error { return badResult{fmt.Sprintf(format, args...)} }

// resultID is a new time-ordered id (UUIDv7), for every resource of a
// result (as Ward's creates do): its index rows, clustered by id, then
// append to their b-trees instead of landing on random pages, each of
// which the commit writes to the log and the checkpoint copies back (the
// writer's largest cost with hashed ids; 20-28% of the CPU per message
// with the first report's id still hashed).
func resultID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// derivedID is a FHIR id from the route, control id and position: the id
// of a message's first report when Ward stored results before it kept
// their keys (store.LabResultKey); such a message sent again is still
// recognised by it.
func derivedID(route, ctrl string, pos ...int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s", route, ctrl)
	for _, p := range pos {
		fmt.Fprintf(h, "\x00%d", p)
	}
	return "hl7-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// maxResults bounds the reports and observations of one message.
const maxResults = 1000

// resultResources builds the message's resources: Observations, then the
// DiagnosticReport of each OBR. orders holds the ServiceRequests read
// already (by id); the others are read here.
func (s *Service) resultResources(ctx context.Context, route store.LabRoute, m *hl7v2.Message, ctrl string, orders map[string]store.Resource) ([]resultPut, []string, error) {
	msh := m.Segments[0]
	issued, ok := fhirTime(msh.V(7))
	if !ok || len(issued) < 20 {
		issued = s.now().UTC().Format("2006-01-02T15:04:05Z")
	}
	var puts []resultPut
	var reports []string
	var report map[string]any
	var results []any
	nOBR, nOBX := 0, 0
	var subject string
	done := map[string]bool{} // ServiceRequests completed by this message
	flush := func() error {
		if report == nil {
			return nil
		}
		report["result"] = results
		id, _ := report["id"].(string)
		puts = append(puts, resultPut{typ: "DiagnosticReport", id: id, m: report})
		reports = append(reports, id)
		report, results = nil, nil
		return nil
	}
	for i, seg := range m.Segments {
		switch seg.Name {
		case "OBR":
			if err := flush(); err != nil {
				return nil, nil, err
			}
			nOBR++
			srID := seg.V(2)
			if !validID(srID) {
				return nil, nil, bad("OBR %d: OBR-2 (placer order number) must be the id of a ServiceRequest Ward sent", nOBR)
			}
			sr, ok := orders[srID]
			var err error
			if !ok {
				sr, err = s.store.GetResource(ctx, route.ProjectID, "ServiceRequest", srID)
			}
			if errors.Is(err, store.ErrNotFound) || err == nil && sr.Deleted {
				return nil, nil, bad("OBR %d: ServiceRequest %s is not known", nOBR, srID)
			}
			if err != nil {
				return nil, nil, err
			}
			var srm map[string]any
			if err := json.Unmarshal(sr.Content, &srm); err != nil {
				return nil, nil, fmt.Errorf("stored ServiceRequest/%s: %w", srID, err)
			}
			subject = str(srm, "subject", "reference")
			if put, ok := completeOrder(sr, srm, seg.V(25)); ok && !done[srID] {
				// Written with the report (one transaction), only if
				// the order has not changed since it was read here.
				done[srID] = true
				puts = append(puts, put)
			}
			report = map[string]any{
				"resourceType": "DiagnosticReport",
				"id":           resultID(),
				"identifier": []any{map[string]any{"system": ResultIdentifierSystem(route.RouteGUID),
					"value": ctrl + "/" + strconv.Itoa(nOBR)}},
				"basedOn":  []any{map[string]any{"reference": "ServiceRequest/" + srID}},
				"status":   reportStatus(seg.V(25)),
				"category": []any{labCategory()},
				"code":     codeableConcept(seg, 4, route.LabGUID),
				"issued":   issued,
			}
			if subject != "" {
				report["subject"] = map[string]any{"reference": subject}
			}
			if t, ok := fhirTime(seg.V(7)); ok {
				report["effectiveDateTime"] = t
			}
		case "OBX":
			if report == nil {
				return nil, nil, bad("segment %d: an OBX before any OBR", i+1)
			}
			nOBX++
			if nOBX > maxResults {
				return nil, nil, bad("more than %d OBX segments", maxResults)
			}
			obs, err := observation(seg, route, nOBX, subject, issued, srRef(report))
			if err != nil {
				return nil, nil, err
			}
			id := obs["id"].(string)
			puts = append(puts, resultPut{typ: "Observation", id: id, m: obs})
			results = append(results, map[string]any{"reference": "Observation/" + id})
		}
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	if len(reports) == 0 {
		return nil, nil, bad("no OBR segment: nothing to store")
	}
	return puts, reports, nil
}

// srRef is a new copy of the report's basedOn: resources share no maps
// (validation may edit what it is given).
func srRef(report map[string]any) any {
	ref := report["basedOn"].([]any)[0].(map[string]any)["reference"]
	return []any{map[string]any{"reference": ref}}
}

// completeOrder is the write that marks the ServiceRequest an OBR answers
// completed, when OBR-25 says the result is final (F, or C: a corrected
// final). A preliminary result leaves the order as it is (active); an order
// that is already completed, revoked or entered-in-error is not touched.
func completeOrder(sr store.Resource, srm map[string]any, resultStatus string) (resultPut, bool) {
	if resultStatus != "F" && resultStatus != "C" {
		return resultPut{}, false
	}
	switch srm["status"] {
	case "completed", "revoked", "entered-in-error":
		return resultPut{}, false
	}
	srm["status"] = "completed"
	return resultPut{typ: "ServiceRequest", id: sr.ID, m: srm, ifVersion: sr.VersionID}, true
}

func labCategory() map[string]any {
	return map[string]any{"coding": []any{map[string]any{
		"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB", "display": "Laboratory"}}}
}

func codeableConcept(seg hl7v2.Segment, f int, labGUID string) map[string]any {
	code, text, sys := seg.C(f, 1), seg.C(f, 2), seg.C(f, 3)
	cc := map[string]any{}
	if code != "" {
		c := map[string]any{"system": fhirSystem(sys, labGUID), "code": code}
		if text != "" {
			c["display"] = text
		}
		cc["coding"] = []any{c}
	}
	if text != "" {
		cc["text"] = text
	}
	if len(cc) == 0 {
		cc["text"] = "unknown"
	}
	return cc
}

// reportStatus maps OBR-25 (HL7 table 0123) to DiagnosticReport.status.
func reportStatus(v string) string {
	switch v {
	case "F":
		return "final"
	case "C":
		return "corrected"
	case "P", "R", "S", "I":
		return "preliminary"
	case "X":
		return "cancelled"
	case "A":
		return "partial"
	}
	return "registered"
}

// observationStatus maps OBX-11 (HL7 table 0085).
func observationStatus(v string) string {
	switch v {
	case "F":
		return "final"
	case "C":
		return "corrected"
	case "P", "R", "S", "I":
		return "preliminary"
	case "X", "D":
		return "cancelled"
	case "W":
		return "entered-in-error"
	}
	return "registered"
}

func observation(seg hl7v2.Segment, route store.LabRoute, nOBX int, subject, issued string, basedOn any) (map[string]any, error) {
	obs := map[string]any{
		"resourceType": "Observation",
		"id":           resultID(),
		"status":       observationStatus(seg.V(11)),
		"category":     []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}}}},
		"code":         codeableConcept(seg, 3, route.LabGUID),
		"issued":       issued,
		"basedOn":      basedOn,
	}
	if subject != "" {
		obs["subject"] = map[string]any{"reference": subject}
	}
	if t, ok := fhirTime(seg.V(14)); ok {
		obs["effectiveDateTime"] = t
	}
	val := seg.V(5)
	switch typ := seg.V(2); typ {
	case "NM", "SN":
		if val == "" {
			break
		}
		n, err := strconv.ParseFloat(val, 64)
		if err != nil || strings.ContainsAny(val, "eEinfINFN") {
			return nil, bad("OBX %d: OBX-5 %q is not a number (OBX-2 is %s)", nOBX, val, typ)
		}
		q := map[string]any{"value": json.Number(strconv.FormatFloat(n, 'f', -1, 64))}
		if u := seg.C(6, 1); u != "" {
			q["unit"] = u
			q["system"] = "http://unitsofmeasure.org"
			q["code"] = u
		}
		obs["valueQuantity"] = q
	case "CE", "CWE", "CNE":
		obs["valueCodeableConcept"] = codeableConcept(seg, 5, route.LabGUID)
	default: // ST, TX, FT and the rest: as text
		if val != "" {
			obs["valueString"] = val
		}
	}
	if r := seg.V(7); r != "" {
		obs["referenceRange"] = []any{map[string]any{"text": r}}
	}
	if f := seg.V(8); f != "" {
		obs["interpretation"] = []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": f}}}}
	}
	return obs, nil
}
