package server

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/wardhealth/ward/internal/store"
)

func (s *Server) listM2M(w http.ResponseWriter, r *http.Request, c call) error {
	// Execution-role clients (zambdas' hidden clients) show only when asked.
	hidden := r.URL.Query().Get("includeExecutionRoleClients") == "true"
	clients, err := s.iam.ListM2M(r.Context(), c.p.ProjectID, store.M2MFilter{IncludeHidden: hidden})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, clients)
	return nil
}

// listPage is the listV2 response shape.
type listPage[T any] struct {
	Data     []T `json:"data"`
	Metadata struct {
		NextCursor *string `json:"nextCursor"`
	} `json:"metadata"`
}

// query reads a query parameter; the SDK sends "undefined" for absent ones.
func query(r *http.Request, name string) string {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	if v == "undefined" || v == "null" {
		return ""
	}
	return v
}

func (s *Server) listM2MV2(w http.ResponseWriter, r *http.Request, c call) error {
	l, err := parseListV2(r, "id", "name", "createdAt")
	if err != nil {
		return err
	}
	f := store.M2MFilter{Name: query(r, "name"), ID: query(r, "id"), RoleID: query(r, "roleId"),
		SortByName: l.sort == "name", Descending: l.descending, Limit: l.limit, After: l.cursor}
	want := f.Limit
	f.Limit++ // one more tells whether there is a next page
	clients, err := s.iam.ListM2M(r.Context(), c.p.ProjectID, f)
	if err != nil {
		return err
	}
	var page listPage[map[string]string]
	page.Data = []map[string]string{}
	for i, m := range clients {
		if i == want {
			last := clients[i-1]
			key := last.ID
			if f.SortByName {
				key = last.Name
			}
			cur := base64.RawURLEncoding.EncodeToString([]byte(key + "\x00" + last.ID))
			page.Metadata.NextCursor = &cur
			break
		}
		item := map[string]string{"id": m.ID, "name": m.Name}
		if m.Description != "" {
			item["description"] = m.Description
		}
		page.Data = append(page.Data, item)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, c call) error {
	m, err := s.iam.Me(r.Context(), c.p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) listDevelopersV2(w http.ResponseWriter, r *http.Request, c call) error {
	ds, err := s.iam.ListDevelopers(r.Context(), c.p.ProjectID)
	if err != nil {
		return err
	}
	var page listPage[map[string]string]
	page.Data = []map[string]string{}
	email := strings.ToLower(query(r, "email"))
	for _, d := range ds {
		if email != "" && !strings.Contains(d.Email, email) {
			continue
		}
		page.Data = append(page.Data, map[string]string{"id": d.ID, "email": d.Email, "name": d.Name, "profile": d.Profile})
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
