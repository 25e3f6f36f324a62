package search

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/wardhealth/ward/internal/fhir/fhirpath"
)

// Location?near=[latitude]|[longitude]|[distance]|[units] is R4's one
// special parameter. The index keeps Location.position as two number rows
// of "near" (System "latitude" and "longitude"); a search is a box around
// the point, which an index range finds, and within it the circle: the
// great-circle distance (haversine) from the point at most the distance.

// NearDefaultKm is the distance when the query gives none (the spec leaves
// it to the server).
const NearDefaultKm = 1.0

// Box is a search area in degrees. LonMin > LonMax when it crosses the
// antimeridian (then longitudes >= LonMin or <= LonMax are inside). Lat,
// Lon and Km are the circle inside it: its centre and radius.
type Box struct {
	LatMin, LatMax, LonMin, LonMax float64
	Lat, Lon, Km                   float64
}

// EarthKm is the mean radius of the Earth (IUGG).
const EarthKm = 6371.0088

// Haversine bounds the circle for a store: a point (lat, lon) in degrees
// is inside when
//
//	sin²(radians(lat-Lat)/2) + cos(radians(Lat))·cos(radians(lat))·sin²(radians(lon-Lon)/2) <= H
//
// which is the haversine distance <= Km without an arcsine. ok is false when
// the circle holds the whole globe.
func (b *Box) Haversine() (h float64, ok bool) {
	half := b.Km / (2 * EarthKm)
	if half >= math.Pi/2 {
		return 0, false
	}
	s := math.Sin(half)
	return s * s, true
}

// kmPer is the length of each accepted distance unit (UCUM codes, plus
// "mi") in kilometres.
var kmPer = map[string]float64{"km": 1, "m": 0.001, "[mi_i]": 1.609344, "mi": 1.609344, "[nmi_i]": 1.852}

// IsNear reports whether p is a special parameter the index answers
// (Location near).
func (p *Param) IsNear() bool {
	return p != nil && p.Type == "special" && p.Name == "near" && p.Base == "Location"
}

// parseNear reads "lat|lon[|distance[|units]]".
func parseNear(raw string) (*Cond, error) {
	parts := strings.Split(raw, "|")
	if len(parts) < 2 || len(parts) > 4 {
		return nil, fmt.Errorf("near %q: want latitude|longitude|distance|units", raw)
	}
	num := func(what, s string) (float64, error) {
		n, err := parseDecimal(strings.TrimSpace(s))
		if err != nil {
			return 0, fmt.Errorf("near %q: %s %q is not a number", raw, what, s)
		}
		return n, nil
	}
	lat, err := num("latitude", parts[0])
	if err != nil {
		return nil, err
	}
	lon, err := num("longitude", parts[1])
	if err != nil {
		return nil, err
	}
	if lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return nil, fmt.Errorf("near %q: latitude must be within -90..90 and longitude within -180..180", raw)
	}
	km := NearDefaultKm
	if len(parts) > 2 && strings.TrimSpace(parts[2]) != "" {
		d, err := num("distance", parts[2])
		if err != nil {
			return nil, err
		}
		unit := "km"
		if len(parts) > 3 && strings.TrimSpace(parts[3]) != "" {
			unit = strings.TrimSpace(parts[3])
		}
		f, ok := kmPer[unit]
		if !ok {
			return nil, fmt.Errorf("near %q: unknown distance unit %q (use km, m or [mi_i])", raw, unit)
		}
		if d < 0 {
			return nil, fmt.Errorf("near %q: the distance is negative", raw)
		}
		km = d * f
	}
	return &Cond{Text: raw, Box: boxAround(lat, lon, km)}, nil
}

// boxAround is the box of half-side km around (lat, lon).
func boxAround(lat, lon, km float64) *Box {
	const kmPerDegree = 111.32 // at the equator; latitude degrees are all about this
	dLat := km / kmPerDegree
	b := &Box{LatMin: max(lat-dLat, -90), LatMax: min(lat+dLat, 90), LonMin: -180, LonMax: 180, Lat: lat, Lon: lon, Km: km}
	cos := math.Cos(lat * math.Pi / 180)
	if b.LatMin == -90 || b.LatMax == 90 || cos < 1e-9 {
		return b // a pole is inside: every longitude
	}
	dLon := km / (kmPerDegree * cos)
	if dLon >= 180 {
		return b
	}
	b.LonMin, b.LonMax = lon-dLon, lon+dLon
	if b.LonMin < -180 {
		b.LonMin += 360
	}
	if b.LonMax > 180 {
		b.LonMax -= 360
	}
	return b
}

// appendNear adds the latitude and longitude of each position item.
func appendNear(out []Value, p *Param, items []fhirpath.Item) []Value {
	for _, it := range items {
		m, _ := it.Value.(map[string]any)
		lat, okLat := decimal(m["latitude"])
		lon, okLon := decimal(m["longitude"])
		if !okLat || !okLon || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
			continue
		}
		out = append(out, Value{Param: p.Name, Type: "number", Number: lat, System: "latitude"},
			Value{Param: p.Name, Type: "number", Number: lon, System: "longitude"})
	}
	return out
}

// decimal is a JSON number as a float64.
func decimal(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	}
	return 0, false
}
