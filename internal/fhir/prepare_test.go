package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// prepareBoth prepares m with PrepareSystemResource and its encoding with
// PrepareSystemPut, at one instant, and fails t unless they agree: both
// refuse it with the same error, or both give the same stored JSON and
// index rows.
func prepareBoth(t *testing.T, f fixture, m map[string]any) {
	t.Helper()
	at := time.Date(2026, 12, 7, 23, 0, 0, 123e6, time.UTC)
	f.svc.now = func() time.Time { return at }
	typ, _ := m["resourceType"].(string)
	body, err := json.Marshal(m)
	if err != nil {
		// Not JSON (a json.Number that is no number): refused.
		if _, _, err := f.svc.PrepareSystemResource(f.admin.ProjectID, "Observation", "x1", m, 0); !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("unencodable: %v, want Invalid", err)
		}
		return
	}
	if typ == "" || !reflect.DeepEqual(m, mustDecode(body)) {
		typ = "Observation"
	}
	wantR, wantRows, wantErr := f.svc.PrepareSystemPut(f.admin.ProjectID, SystemPut{Type: typ, ID: "x1", Body: body})
	gotR, gotRows, gotErr := f.svc.PrepareSystemResource(f.admin.ProjectID, typ, "x1", m, 0)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("errors: got %v, want %v (%s)", gotErr, wantErr, body)
	}
	if gotErr != nil {
		return
	}
	if !bytes.Equal(gotR.Content, wantR.Content) {
		t.Fatalf("content:\n got %s\nwant %s", gotR.Content, wantR.Content)
	}
	gotR.Content, wantR.Content = nil, nil
	if !reflect.DeepEqual(gotR, wantR) {
		t.Fatalf("resource: got %+v, want %+v", gotR, wantR)
	}
	if !reflect.DeepEqual(gotRows, wantRows) {
		t.Fatalf("index rows:\n got %+v\nwant %+v", gotRows, wantRows)
	}
}

func mustDecode(body []byte) map[string]any {
	m, err := decode(body)
	if err != nil {
		return nil
	}
	return m
}

// TestPrepareSystemResource: a resource handed over decoded is stored and
// indexed exactly as its JSON would be, and refused with the same error;
// values the round trip changes or refuses take the JSON path.
func TestPrepareSystemResource(t *testing.T) {
	f := newFixture(t, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	obs := func(extra map[string]any) map[string]any {
		m := map[string]any{
			"resourceType": "Observation", "id": "x1", "status": "final",
			"code":     map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose <b> & \u2028"}}, "text": "Glucose"},
			"subject":  map[string]any{"reference": "Patient/p1"},
			"basedOn":  []any{map[string]any{"reference": "ServiceRequest/s1"}},
			"issued":   "2026-12-07T10:15:00Z",
			"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}}}},
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		m    map[string]any
	}{
		{"quantity", obs(map[string]any{"valueQuantity": map[string]any{"value": json.Number("95.50"), "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}})},
		{"text with tab and newline", obs(map[string]any{"valueString": "a\tb\r\nc ü"})},
		{"control character", obs(map[string]any{"valueString": "a\x01b"})},
		{"invalid UTF-8", obs(map[string]any{"valueString": "a\xffb\xc3"})},
		{"float64", obs(map[string]any{"valueQuantity": map[string]any{"value": 1.5}})},
		{"bad number", obs(map[string]any{"valueQuantity": map[string]any{"value": json.Number("1e")}})},
		{"empty array dropped", obs(map[string]any{"note": []any{}})},
		{"invalid: unknown element", obs(map[string]any{"colour": "red"})},
		{"invalid: two errors", obs(map[string]any{"status": "nope", "issued": "yesterday"})},
		{"invalid: wrong type", obs(map[string]any{"resourceType": "Patient"})},
		{"typed map", obs(map[string]any{"subject": map[string]string{"reference": "Patient/p1"}})},
		{"report", map[string]any{
			"resourceType": "DiagnosticReport", "id": "x1", "status": "final",
			"code":       map[string]any{"text": "Glucose"},
			"identifier": []any{map[string]any{"system": "urn:ward:hl7v2:r", "value": "C1/1"}},
			"result":     []any{map[string]any{"reference": "Observation/o1"}, map[string]any{"reference": "Observation/o2"}},
			"meta":       map[string]any{"tag": []any{map[string]any{"code": "t"}}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { prepareBoth(t, f, c.m) })
	}
	t.Run("hooked", func(t *testing.T) {
		if _, _, err := f.svc.PrepareSystemResource(f.admin.ProjectID, "Binary", "b", map[string]any{"resourceType": "Binary"}, 0); !errors.Is(err, ErrHooked) {
			t.Fatalf("Binary: %v, want ErrHooked", err)
		}
	})
}

// FuzzPrepareSystemResource: for any JSON object, decoded and then edited
// as a builder might (a string with any bytes put into it), the decoded
// path and the JSON path agree.
func FuzzPrepareSystemResource(f *testing.F) {
	fx := newFixture(f, storetest.Backend{Name: "sqlite", DSN: storetest.SQLiteDSN}, Config{})
	f.Add([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.0}}`), "note")
	f.Add([]byte(`{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"result":[]}`), "a\x00b")
	f.Add([]byte(`{"resourceType":"Patient","name":[{"family":"D","given":["J"]}],"birthDate":"1980"}`), "\xff")
	f.Fuzz(func(t *testing.T, body []byte, s string) {
		m, err := decode(body)
		if err != nil {
			return
		}
		m["text"] = map[string]any{"status": "generated", "div": s}
		prepareBoth(t, fx, m)
	})
}
