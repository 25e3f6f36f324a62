package lab

import (
	"testing"
	"time"
)

func TestFHIRTime(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2026", "2026"},
		{"202612", "2026-12"},
		{"20261207", "2026-12-07"},
		{"202612071015", "2026-12-07T10:15:00Z"},
		{"20261207101530", "2026-12-07T10:15:30Z"},
		{"20261207101530.25-0500", "2026-12-07T10:15:30.25-05:00"},
		{"20261207101530+0000", "2026-12-07T10:15:30Z"},
		{"20261307", ""},
		{"2026120", ""},
		{"20261207x", ""},
		{"20261207+05", ""},
		{"0000010100+2700", ""},
		{"202612071015+1460", ""},
		{"202612071015-1400", "2026-12-07T10:15:00-14:00"},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := fhirTime(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("fhirTime(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

// FuzzFHIRTime: what is accepted is a FHIR date or dateTime Go can read.
func FuzzFHIRTime(f *testing.F) {
	for _, s := range []string{"20261207101530.25-0500", "2026", "202612071015"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := fhirTime(in)
		if !ok {
			return
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02", "2006-01", "2006"} {
			if _, err := time.Parse(layout, out); err == nil {
				return
			}
		}
		t.Fatalf("fhirTime(%q) = %q, not a FHIR dateTime", in, out)
	})
}
