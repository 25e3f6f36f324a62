package fhir

import (
	"context"
	"net/url"

	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// SystemSearch runs a search of typ with params in projectID as Ward itself,
// without a caller's policy, and returns at most limit matches in the
// query's order. It is for reference data another action has already
// authorized (eRx's drug and pharmacy directories: eRx:SearchMedication,
// eRx:SearchPharmacy), never for a caller's own FHIR request. Errors:
// Invalid for a query the search engine refuses.
func (s *Service) SystemSearch(ctx context.Context, projectID, typ string, params url.Values, limit int) ([]Resource, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	q, err := search.ParseQuery(typ, params, false)
	if err != nil {
		return nil, searchErr(err)
	}
	if err := s.supported(ctx, q); err != nil {
		return nil, err
	}
	rows, _, err := s.store.Search(ctx, store.SearchRequest{ProjectID: projectID, Query: q, Count: limit, Now: s.now()})
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(rows))
	for i, r := range rows {
		out[i] = fromStore(r)
	}
	return out, nil
}
