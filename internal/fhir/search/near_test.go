package search

import (
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"
)

func TestParseNear(t *testing.T) {
	for _, tt := range []struct {
		raw     string
		box     Box
		wantErr string
	}{
		// 111.32 km is one degree of latitude; at 60° a longitude degree is half that.
		{raw: "60|10|111.32|km", box: bx(59, 61, 8, 12)},
		{raw: "60|10|111320|m", box: bx(59, 61, 8, 12)},
		{raw: "0|0", box: bx(-1/111.32, 1/111.32, -1/111.32, 1/111.32)}, // 1 km by default
		{raw: "0|0|69.17|[mi_i]", box: bx(-1, 1, -1, 1)},
		// Across the antimeridian the longitudes wrap.
		{raw: "0|179.5|111.32", box: bx(-1, 1, 178.5, -179.5)},
		// A pole inside the box: every longitude.
		{raw: "89.5|20|111.32|km", box: bx(88.5, 90, -180, 180)},
		{raw: "91|0", wantErr: "latitude must be within"},
		{raw: "0|-181", wantErr: "longitude within"},
		{raw: "0", wantErr: "want latitude|longitude"},
		{raw: "a|0", wantErr: `latitude "a" is not a number`},
		{raw: "0|0|-1|km", wantErr: "negative"},
		{raw: "0|0|1|parsec", wantErr: `unknown distance unit "parsec"`},
	} {
		c, err := parseNear(tt.raw)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseNear(%q) error = %v, want %q", tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseNear(%q): %v", tt.raw, err)
			continue
		}
		b := *c.Box
		for _, pair := range [][2]float64{{b.LatMin, tt.box.LatMin}, {b.LatMax, tt.box.LatMax}, {b.LonMin, tt.box.LonMin}, {b.LonMax, tt.box.LonMax}} {
			if math.Abs(pair[0]-pair[1]) > 1e-3 {
				t.Errorf("parseNear(%q) = %+v, want %+v", tt.raw, b, tt.box)
				break
			}
		}
	}
	// Through ParseQuery: Location only, and the value names the parameter on error.
	if _, err := ParseQuery("Location", url.Values{"near": {"42.2|-83.7|5|km"}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseQuery("Location", url.Values{"near": {"x|y"}}, false); err == nil || !strings.Contains(err.Error(), "near") {
		t.Fatalf("bad near: %v", err)
	}
}

func TestExtractNear(t *testing.T) {
	loc := map[string]any{"resourceType": "Location", "position": map[string]any{"latitude": jsonNum("42.25"), "longitude": jsonNum("-83.69")}}
	vals, err := IndexValues("Location", loc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vals {
		if v.Param == "near" {
			got = append(got, v.System)
			if v.System == "latitude" && v.Number != 42.25 || v.System == "longitude" && v.Number != -83.69 {
				t.Errorf("near value %+v", v)
			}
		}
	}
	if strings.Join(got, ",") != "latitude,longitude" {
		t.Fatalf("near values: %v", got)
	}
	// A position without a longitude gives nothing.
	loc["position"] = map[string]any{"latitude": jsonNum("42.25")}
	vals, _ = IndexValues("Location", loc)
	for _, v := range vals {
		if v.Param == "near" {
			t.Fatalf("half a position indexed: %+v", v)
		}
	}
}

func jsonNum(s string) json.Number { return json.Number(s) }

func bx(latMin, latMax, lonMin, lonMax float64) Box {
	return Box{LatMin: latMin, LatMax: latMax, LonMin: lonMin, LonMax: lonMax}
}

// TestHaversineBound checks the bound a store compares with against the
// haversine distance computed here, on points either side of the circle.
func TestHaversineBound(t *testing.T) {
	dist := func(lat1, lon1, lat2, lon2 float64) float64 {
		r := math.Pi / 180
		h := math.Pow(math.Sin((lat2-lat1)*r/2), 2) + math.Cos(lat1*r)*math.Cos(lat2*r)*math.Pow(math.Sin((lon2-lon1)*r/2), 2)
		return 2 * EarthKm * math.Asin(math.Sqrt(h))
	}
	c, err := parseNear("42.2808|-83.7430|10|km")
	if err != nil {
		t.Fatal(err)
	}
	b := c.Box
	if b.Lat != 42.2808 || b.Lon != -83.7430 || b.Km != 10 {
		t.Fatalf("circle %+v", b)
	}
	bound, ok := b.Haversine()
	if !ok {
		t.Fatal("a 10 km circle is not the globe")
	}
	r := math.Pi / 180
	for _, pt := range [][2]float64{{42.3508, -83.648}, {42.33, -83.70}, {42.2808, -83.62}, {42.2, -83.7430}} {
		h := math.Pow(math.Sin((pt[0]-b.Lat)*r/2), 2) + math.Cos(b.Lat*r)*math.Cos(pt[0]*r)*math.Pow(math.Sin((pt[1]-b.Lon)*r/2), 2)
		if inside, want := h <= bound, dist(b.Lat, b.Lon, pt[0], pt[1]) <= 10; inside != want {
			t.Errorf("%v: inside by the bound %v, by the distance (%.2f km) %v", pt, inside, dist(b.Lat, b.Lon, pt[0], pt[1]), want)
		}
	}
	if c, _ := parseNear("0|0|20100|km"); func() bool { _, ok := c.Box.Haversine(); return ok }() {
		t.Error("a 20,100 km circle holds the whole globe")
	}
}
