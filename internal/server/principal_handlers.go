package server

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
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
	f := store.M2MFilter{Name: query(r, "name"), ID: query(r, "id"), RoleID: query(r, "roleId"), Limit: 20}
	switch query(r, "sort") {
	case "", "id", "createdAt":
	case "name":
		f.SortByName = true
	default:
		return fault.Invalid("sort must be id or name for M2M clients")
	}
	switch strings.ToLower(query(r, "sortOrder")) {
	case "", "asc":
	case "desc":
		f.Descending = true
	default:
		return fault.Invalid("sortOrder must be asc or desc")
	}
	if v := query(r, "limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return fault.Invalid("limit must be a whole number from 1 to 100")
		}
		f.Limit = n
	}
	if v := query(r, "cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return fault.Invalid("cursor is not one this server issued")
		}
		f.After = string(b)
	}
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

func (s *Server) createM2M(w http.ResponseWriter, r *http.Request, c call) error {
	var in iam.M2MInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	m, err := s.iam.CreateM2M(r.Context(), c.p.ProjectID, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
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

func (s *Server) getM2M(w http.ResponseWriter, r *http.Request, c call) error {
	m, err := s.iam.GetM2M(r.Context(), c.p.ProjectID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) updateM2M(w http.ResponseWriter, r *http.Request, c call) error {
	var in iam.M2MInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	m, err := s.iam.UpdateM2M(r.Context(), c.p.ProjectID, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) deleteM2M(w http.ResponseWriter, r *http.Request, c call) error {
	if err := s.iam.DeleteM2M(r.Context(), c.p.ProjectID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateM2M(w http.ResponseWriter, r *http.Request, c call) error {
	secret, err := s.iam.RotateM2MSecret(r.Context(), c.p.ProjectID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"secret": secret})
	return nil
}

func (s *Server) listDevelopers(w http.ResponseWriter, r *http.Request, c call) error {
	ds, err := s.iam.ListDevelopers(r.Context(), c.p.ProjectID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ds)
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

func (s *Server) inviteDeveloper(w http.ResponseWriter, r *http.Request, c call) error {
	var in iam.DeveloperInvite
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	inv, err := s.iam.InviteDeveloper(r.Context(), c.p.ProjectID, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inv)
	return nil
}

func (s *Server) getDeveloper(w http.ResponseWriter, r *http.Request, c call) error {
	d, err := s.iam.GetDeveloper(r.Context(), c.p.ProjectID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) updateDeveloper(w http.ResponseWriter, r *http.Request, c call) error {
	var in iam.DeveloperUpdate
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	d, err := s.iam.UpdateDeveloper(r.Context(), c.p.ProjectID, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) removeDeveloper(w http.ResponseWriter, r *http.Request, c call) error {
	if err := s.iam.RemoveDeveloper(r.Context(), c.p.ProjectID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
