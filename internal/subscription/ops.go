package subscription

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
)

// Register adds the operations on Subscription instances:
//
//	GET  [base]/Subscription/{id}/$events[?_count=n]  recent deliveries with their attempts (FHIR:Read)
//	POST [base]/Subscription/{id}/$replay[?from=seq]  requeue deliveries from an outbox sequence
//	                                                  number, or every failed one (FHIR:Update)
func (s *Service) Register(h *fhir.Handler) {
	h.Operation("Subscription", "$events", s.events)
	h.Operation("Subscription", "$replay", s.replay)
}

type param struct {
	Name         string  `json:"name"`
	ValueString  *string `json:"valueString,omitempty"`
	ValueCode    *string `json:"valueCode,omitempty"`
	ValueInteger *int64  `json:"valueInteger,omitempty"`
	ValueInstant *string `json:"valueInstant,omitempty"`
	ValueBoolean *bool   `json:"valueBoolean,omitempty"`
	ValueRef     *ref    `json:"valueReference,omitempty"`
	Part         []param `json:"part,omitempty"`
}

type ref struct {
	Reference string `json:"reference"`
}

func sp(v string) *string { return &v }
func ip(v int64) *int64   { return &v }
func inst(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	return sp(t.UTC().Format(time.RFC3339Nano))
}

func writeParams(w http.ResponseWriter, ps []param) {
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"resourceType": "Parameters", "parameter": ps})
}

func (s *Service) events(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	if err := s.fhir.Require(r.Context(), p, "FHIR:Read", "Subscription", id); err != nil {
		return err
	}
	if _, err := s.fhir.Read(r.Context(), p, "Subscription", id); err != nil {
		return err
	}
	n := 50
	if v := r.URL.Query().Get("_count"); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil || c < 1 || c > 1000 {
			return fault.Invalid("_count must be 1-1000")
		}
		n = c
	}
	counts, err := s.st.CountDeliveries(r.Context(), p.ProjectID, id)
	if err != nil {
		return err
	}
	ds, err := s.st.Deliveries(r.Context(), p.ProjectID, id, n)
	if err != nil {
		return err
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	attempts, err := s.st.Attempts(r.Context(), ids)
	if err != nil {
		return err
	}
	var countParts []param
	for _, st := range []string{"pending", "delivered", "failed", "skipped"} {
		countParts = append(countParts, param{Name: st, ValueInteger: ip(counts[st])})
	}
	out := []param{{Name: "counts", Part: countParts}}
	for _, d := range ds {
		part := []param{
			{Name: "id", ValueString: sp(strconv.FormatInt(d.ID, 10))},
			{Name: "eventSeq", ValueString: sp(strconv.FormatInt(d.EventSeq, 10))},
			{Name: "resource", ValueRef: &ref{Reference: d.Type + "/" + d.ResID + "/_history/" + strconv.FormatInt(d.VersionID, 10)}},
			{Name: "interaction", ValueCode: sp(d.Interaction)},
			{Name: "status", ValueCode: sp(d.Status)},
			{Name: "attempts", ValueInteger: ip(int64(d.Attempts))},
			{Name: "createdAt", ValueInstant: inst(d.CreatedAt)},
		}
		if d.Status == "pending" {
			part = append(part, param{Name: "nextAttemptAt", ValueInstant: inst(d.NextAttemptAt)})
		}
		if !d.DeliveredAt.IsZero() {
			part = append(part, param{Name: "deliveredAt", ValueInstant: inst(d.DeliveredAt)})
		}
		if d.LastError != "" {
			part = append(part, param{Name: "lastError", ValueString: sp(d.LastError)})
		}
		for _, a := range attempts[d.ID] {
			ap := []param{{Name: "at", ValueInstant: inst(a.At)}, {Name: "durationMs", ValueInteger: ip(a.Duration.Milliseconds())}}
			if a.StatusCode != 0 {
				ap = append(ap, param{Name: "httpStatus", ValueInteger: ip(int64(a.StatusCode))})
			}
			if a.Error != "" {
				ap = append(ap, param{Name: "error", ValueString: sp(a.Error)})
			}
			if a.Stale {
				// Sent by a replica that had lost the delivery (it stalled
				// past its lease): its result was not applied.
				stale := true
				ap = append(ap, param{Name: "stale", ValueBoolean: &stale})
			}
			part = append(part, param{Name: "attempt", Part: ap})
		}
		out = append(out, param{Name: "delivery", Part: part})
	}
	writeParams(w, out)
	return nil
}

func (s *Service) replay(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	if r.Method != http.MethodPost {
		return fault.Invalid("$replay changes state: use POST")
	}
	if err := s.fhir.Require(r.Context(), p, "FHIR:Update", "Subscription", id); err != nil {
		return err
	}
	if _, err := s.fhir.Read(r.Context(), p, "Subscription", id); err != nil {
		return err
	}
	var from int64
	if v := r.URL.Query().Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fault.Invalid("from must be an event sequence number (eventSeq in $events)")
		}
		from = n
	}
	n, err := s.st.Replay(r.Context(), p.ProjectID, id, from, s.now())
	if err != nil {
		return err
	}
	writeParams(w, []param{{Name: "requeued", ValueInteger: ip(n)}})
	return nil
}
