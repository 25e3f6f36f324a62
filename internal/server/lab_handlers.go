package server

import (
	"net/http"

	"github.com/wardhealth/ward/internal/fault"
)

// labRoutes are the SDK's lab service (labApiUrl = <public>/lab/v1): routes,
// the compendium and order submission. Results arrive over MLLP, not HTTP.
func (s *Server) labRoutes() []route {
	if s.lab == nil {
		return nil
	}
	const base = "/lab/v1"
	items := fixed("Lab:OrderableItem:*")
	return []route{
		{method: "GET", path: base + "/route", action: "Lab:GetRoutes", resource: fixed("Lab:Route:*"), handle: s.listLabRoutes},
		{method: "POST", path: base + "/route", action: "Lab:CreateRoute", resource: fixed("Lab:Route:*"), handle: s.createLabRoute},
		{method: "GET", path: base + "/route/{id}", action: "Lab:GetSingleRoute", resource: withID("Lab:Route:"), handle: s.getLabRoute},
		{method: "DELETE", path: base + "/route/{id}", action: "Lab:DeleteRoute", resource: withID("Lab:Route:"), handle: s.deleteLabRoute},
		{method: "GET", path: base + "/orderableItem", action: "Lab:SearchOrderableItems", resource: items, handle: s.listOrderableItems},
		{method: "GET", path: base + "/canonical-questionnaire/lab/{lab}/compendium/{version}/item/{code}/questionnaire",
			action: "Lab:SearchOrderableItems", resource: items, handle: s.getLabQuestionnaire},
		{method: "POST", path: base + "/submit", action: "Lab:SubmitOrder", resource: fixed("Lab:Order:*"), handle: s.submitLabOrder},
	}
}

func (s *Server) listLabRoutes(w http.ResponseWriter, r *http.Request, c call) error {
	routes, err := s.lab.ListRoutes(r.Context(), c.p.ProjectID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, routes)
	return nil
}

func (s *Server) createLabRoute(w http.ResponseWriter, r *http.Request, c call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	created, err := s.lab.CreateRoute(r.Context(), c.p.ProjectID, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, created)
	return nil
}

func (s *Server) getLabRoute(w http.ResponseWriter, r *http.Request, c call) error {
	rt, err := s.lab.GetRoute(r.Context(), c.p.ProjectID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rt)
	return nil
}

func (s *Server) deleteLabRoute(w http.ResponseWriter, r *http.Request, c call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	if err := s.lab.DeleteRoute(r.Context(), c.p.ProjectID, r.PathValue("id"), body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listOrderableItems(w http.ResponseWriter, r *http.Request, c call) error {
	page, err := s.lab.OrderableItems(r.Context(), c.p.ProjectID, r.URL.Query())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) getLabQuestionnaire(w http.ResponseWriter, r *http.Request, c call) error {
	q, err := s.lab.Questionnaire(r.Context(), c.p.ProjectID, r.PathValue("lab"), r.PathValue("version"), r.PathValue("code"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (s *Server) submitLabOrder(w http.ResponseWriter, r *http.Request, c call) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	out, err := s.lab.Submit(r.Context(), c.p, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
