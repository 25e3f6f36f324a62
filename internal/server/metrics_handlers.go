package server

import (
	"net/http"
)

// metricsRoutes serve a project's last hour for the console's dashboard.
// Ward's own endpoint (Oystehr has none): it reuses Project:GetProjectInfo
// on Project:Settings, since the figures are counts about the project,
// never a resource's content.
func (s *Server) metricsRoutes() []route {
	if s.activity == nil {
		return nil
	}
	return []route{
		{method: "GET", path: "/v1/project/metrics", action: "Project:GetProjectInfo", resource: fixed("Project:Settings"), handle: s.projectMetrics},
	}
}

func (s *Server) projectMetrics(w http.ResponseWriter, r *http.Request, c call) error {
	rep := s.activity.Report(c.p.ProjectID)
	if s.deliveries != nil {
		mins, backlog, err := s.deliveries(r.Context(), c.p.ProjectID, rep.Totals.Start)
		if err != nil {
			return err
		}
		for _, m := range mins {
			rep.AddDeliveries(m.Start, m.Attempts, m.Failed)
		}
		rep.SubscriptionBacklog = backlog
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
