package server

import (
	"net/http"
)

// consoleRoutes serve the web console. They are public here because the
// console's session cookie is their credential (and its forms carry a
// CSRF token): every action a console page takes is a request to the
// routes above, through this gate, with the developer's own token.
func (s *Server) consoleRoutes() []route {
	if s.console == nil {
		return nil
	}
	return []route{
		{method: "GET", path: "/console", public: true, handle: s.consolePage},
		{method: "GET", path: "/console/", public: true, handle: s.consolePage},
		{method: "POST", path: "/console/", public: true, handle: s.consolePage},
	}
}

func (s *Server) consolePage(w http.ResponseWriter, r *http.Request, _ call) error {
	s.console.Handler().ServeHTTP(w, r)
	return nil
}

// ConsoleURL is where a developer opens the console ("" when there is none).
func (s *Server) ConsoleURL() string {
	if s.console == nil {
		return ""
	}
	return s.console.URL()
}
