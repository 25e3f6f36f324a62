package payment

import (
	"net/url"

	"github.com/wardhealth/ward/internal/fhir/search"
)

type searchQuery = search.Query

func parseQuery(typ, q string) (*search.Query, error) {
	v, err := url.ParseQuery(q)
	if err != nil {
		return nil, err
	}
	return search.ParseQuery(typ, v, false)
}
