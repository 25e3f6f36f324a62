package x12

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample(t testing.TB) []byte {
	t.Helper()
	ix := Wrap(Envelope{SenderQual: "ZZ", SenderID: "WARD", ReceiverQual: "ZZ", ReceiverID: "PAYER", Control: 42,
		Time: time.Date(2026, 12, 7, 16, 30, 0, 0, time.UTC), Test: true, FunctionalID: "HS", Version: "005010X279A1"},
		"270", []Segment{{ID: "BHT", Elements: []string{"0022", "13", "REF1", "20261207", "1630"}}, {ID: "HL", Elements: []string{"1", "", "20", "1"}}})
	b, err := ix.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	b := sample(t)
	ix, err := Parse(b)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	if got := ix.Segments[0].E(13); got != "000000042" {
		t.Errorf("ISA13 = %q", got)
	}
	sets := ix.Sets()
	if len(sets) != 1 || sets[0].Segments[0].E(1) != "270" || sets[0].GS.E(8) != "005010X279A1" {
		t.Fatalf("sets = %+v", sets)
	}
	b2, err := ix.Bytes()
	if err != nil || string(b2) != string(b) {
		t.Errorf("rewrite differs: %v\n%s\n%s", err, b, b2)
	}
}

// Other trading partners' separators are read from the ISA.
func TestDelimitersFromISA(t *testing.T) {
	b := string(sample(t))
	b = strings.NewReplacer("*", "|", "~\n", "\r\n", ":", ">").Replace(b)
	// The segment terminator is the byte after ISA16: here \r.
	ix, err := Parse([]byte(b))
	if err != nil {
		t.Fatalf("parse: %v\n%q", err, b)
	}
	if ix.Delims != (Delims{Element: '|', Component: '>', Repetition: '^', Segment: '\r'}) {
		t.Errorf("delims = %+v", ix.Delims)
	}
	if ix.Segments[3].ID != "BHT" || ix.Segments[3].E(3) != "REF1" {
		t.Errorf("BHT = %+v", ix.Segments[3])
	}
}

func TestParseErrors(t *testing.T) {
	good := string(sample(t))
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "ISA segment"},
		{"short ISA", "ISA*00*~", "ISA segment"},
		{"SE count", strings.Replace(good, "SE*4*", "SE*5*", 1), "SE01"},
		{"SE control", strings.Replace(good, "SE*4*0042", "SE*4*0043", 1), "SE02"},
		{"GE control", strings.Replace(good, "GE*1*42", "GE*1*41", 1), "GE02"},
		{"IEA control", strings.Replace(good, "IEA*1*000000042", "IEA*1*000000041", 1), "IEA02"},
		{"no IEA", good[:strings.Index(good, "IEA")], "ISA ... IEA"},
		{"bad id", strings.Replace(good, "BHT*", "bh t*", 1), "not a segment id"},
		{"outside set", strings.Replace(good, "ST*270", "XX*270", 1), "outside a transaction set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestWriterRefusesSeparators(t *testing.T) {
	ix := Wrap(Envelope{Control: 1, FunctionalID: "HC", Version: "005010X222A1"}, "837",
		[]Segment{{ID: "NM1", Elements: []string{"IL", "1", "DOE*JANE~"}}})
	if _, err := ix.Bytes(); err == nil || !strings.Contains(err.Error(), "NM103") {
		t.Errorf("err = %v, want one naming NM103", err)
	}
}

// FuzzParse: whatever parses writes back to bytes that parse to the same
// segments (or is refused for a separator inside a value, which Parse
// cannot produce).
func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte("ISA*00*          *00*          *ZZ*A              *ZZ*B              *261207*1630*^*00501*000000001*0*T*:~IEA*0*000000001~"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := Parse(data)
		if err != nil {
			return
		}
		b, err := ix.Bytes()
		if err != nil {
			t.Fatalf("a parsed interchange does not write: %v", err)
		}
		ix2, err := Parse(b)
		if err != nil {
			t.Fatalf("rewritten interchange does not parse: %v\n%q", err, b)
		}
		if !reflect.DeepEqual(ix.Segments, ix2.Segments) || ix.Delims != ix2.Delims {
			t.Fatalf("round trip differs:\n%+v\n%+v", ix.Segments, ix2.Segments)
		}
	})
}
