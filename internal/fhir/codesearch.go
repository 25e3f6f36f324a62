package fhir

import (
	"context"
	"errors"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/terminology"
)

// SearchCodes searches the project's CodeSystem with canonical url system (a CPT, HCPCS or
// ICD-10-CM extract the project loaded) for the SDK's terminology.searchCpt and searchHcpcs.
// The caller has been allowed Terminology:SearchCodes, which is what reading the project's
// code system takes here. It returns the page from offset and the offset of the next page,
// or -1 when there is none.
func (s *Service) SearchCodes(ctx context.Context, projectID, system string, q terminology.CodeQuery, offset, limit int) ([]terminology.Coding, int, error) {
	row, err := s.findTerm(ctx, projectID, "CodeSystem", system, nil)
	if errors.Is(err, terminology.ErrNotFound) {
		return nil, -1, fault.NotFound("this project holds no CodeSystem with url %s: load the code set as one (docs/terminology.md)", system)
	}
	if err != nil {
		return nil, -1, err
	}
	cs, err := cachedParse(s.termCache, projectID, row, terminology.ParseCodeSystem)
	if err != nil {
		return nil, -1, err
	}
	all := terminology.SearchCodes(cs, q)
	if offset >= len(all) {
		return []terminology.Coding{}, -1, nil
	}
	end, next := offset+limit, offset+limit
	if end >= len(all) {
		end, next = len(all), -1
	}
	return all[offset:end], next, nil
}
