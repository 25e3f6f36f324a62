package server

import (
	"net/http"
	"strconv"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/terminology"
)

// The SDK's terminology service (terminologyApiUrl: Ward serves it under /v1, so the SDK's
// terminologyApiUrl is the projectApiUrl). Each search reads the project's own CodeSystem with
// the code set's canonical url (docs/terminology.md).
var codeSets = map[string]string{
	"cpt":    "http://www.ama-assn.org/go/cpt",
	"hcpcs":  "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
	"icd-10": "http://hl7.org/fhir/sid/icd-10-cm",
}

// codeSearchLimit is the page size when the caller names none, and maxCodeSearchLimit the
// largest it may ask.
const (
	codeSearchLimit    = 20
	maxCodeSearchLimit = 100
)

type codeSearchAnswer struct {
	Codes    []codeSearchHit `json:"codes"`
	Metadata struct {
		NextCursor *string `json:"nextCursor"`
	} `json:"metadata"`
}

type codeSearchHit struct {
	Code    string `json:"code"`
	Display string `json:"display"`
}

// searchCodes is GET /v1/{set}/search?query=&searchType=&limit=&cursor=&strictMatch=.
func (s *Server) searchCodes(set string) func(w http.ResponseWriter, r *http.Request, c call) error {
	system := codeSets[set]
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		q := terminology.CodeQuery{Text: query(r, "query"), SearchType: query(r, "searchType")}
		if q.Text == "" {
			return fault.Invalid("query is required")
		}
		if len(q.Text) > 256 {
			return fault.Invalid("query is longer than 256 characters")
		}
		switch q.SearchType {
		case "", "all", "code", "description":
		default:
			return fault.Invalid("searchType must be code, description or all")
		}
		switch query(r, "strictMatch") {
		case "", "false":
		case "true":
			q.Strict = true
		default:
			return fault.Invalid("strictMatch must be true or false")
		}
		limit, offset := codeSearchLimit, 0
		if v := query(r, "limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxCodeSearchLimit {
				return fault.Invalid("limit must be an integer from 1 to %d", maxCodeSearchLimit)
			}
			limit = n
		}
		if v := query(r, "cursor"); v != "" {
			// The cursor is the offset of the next page, as a previous answer gave it.
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fault.Invalid("cursor is not one this server gave")
			}
			offset = n
		}
		codes, next, err := s.fhir.Service().SearchCodes(r.Context(), c.p.ProjectID, system, q, offset, limit)
		if err != nil {
			return err
		}
		out := codeSearchAnswer{Codes: make([]codeSearchHit, len(codes))}
		for i, k := range codes {
			out.Codes[i] = codeSearchHit{Code: k.Code, Display: k.Display}
		}
		if next >= 0 {
			cur := strconv.Itoa(next)
			out.Metadata.NextCursor = &cur
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}
