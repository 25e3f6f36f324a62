package hl7v2

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

const oru = "MSH|^~\\&|LAB|ACME|WARD|route-1|20261207101500||ORU^R01^ORU_R01|CTRL1|P|2.5.1\r" +
	"PID|1||p1^^^WARD||Doe^Jane||19800101|F\r" +
	"OBR|1|sr-1||2345-7^Glucose^LN|||20261207093000|||||||||||||||20261207101000|||F\r" +
	"OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F\r" +
	"OBX|2|ST|8251-1^Note^LN||A \\F\\ B \\S\\ C \\T\\ D \\R\\ E \\E\\ F \\.br\\ G||||||F\r"

func TestParse(t *testing.T) {
	m, err := Parse([]byte(oru))
	if err != nil {
		t.Fatal(err)
	}
	msh, _ := m.Segment("MSH")
	obr, _ := m.Segment("OBR")
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"MSH-1", msh.V(1), "|"},
		{"MSH-2", msh.V(2), "^~\\&"},
		{"MSH-6", msh.V(6), "route-1"},
		{"MSH-9.1", msh.C(9, 1), "ORU"},
		{"MSH-9.2", msh.C(9, 2), "R01"},
		{"MSH-10", msh.V(10), "CTRL1"},
		{"MSH-12", msh.V(12), "2.5.1"},
		{"OBR-2", obr.V(2), "sr-1"},
		{"OBR-4.3", obr.C(4, 3), "LN"},
		{"OBR-25", obr.V(25), "F"},
		{"OBX-5 escapes", m.Segments[4].V(5), "A | B ^ C & D ~ E \\ F \\.br\\ G"},
		{"absent field", obr.V(99), ""},
		{"absent component", obr.C(2, 5), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if len(m.Segments) != 5 {
		t.Fatalf("%d segments, want 5", len(m.Segments))
	}
}

func TestRepetitionsAndOtherDelimiters(t *testing.T) {
	// Delimiters are the message's own: here # for components, * for
	// repetitions, ! for escape, $ for subcomponents.
	raw := "MSH|#*!$|A|B\rPID|1||id1*id2#x$y||N!F!M\r"
	m, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	pid := m.Segments[1]
	if pid.Reps(3) != 2 || pid.Get(3, 2, 1, 1) != "id2" || pid.Get(3, 2, 2, 2) != "y" {
		t.Errorf("PID-3 = %#v", pid.Fields[2])
	}
	if pid.V(5) != "N|M" {
		t.Errorf("PID-5 = %q, want N|M", pid.V(5))
	}
	if got := string(m.Encode()); got != raw {
		t.Errorf("re-encoded\n%q\nwant\n%q", got, raw)
	}
}

func TestEncodeEscapes(t *testing.T) {
	m := NewMessage(Value("WARD"), Value("x"))
	m.Add("NTE", Value("1"), Value(""), Value("a|b^c&d~e\\f\r\ng"))
	got := string(m.Encode())
	want := "MSH|^~\\&|WARD|x\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\\\X0A\\g\r"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	back, err := Parse([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	// \X0D\ stays as written on parse (hex is not decoded): no CR can hide
	// in a value to forge a segment.
	if v := back.Segments[1].V(3); v != "a|b^c&d~e\\f\\X0D\\\\X0A\\g" {
		t.Errorf("parsed back %q", v)
	}
}

func TestParseErrors(t *testing.T) {
	for _, raw := range []string{
		"",
		"PID|1\r",
		"MSH|^~\\\r",
		"MSH|^^\\&|x\r",
		"MSH|^~\\&|x\rMSH|^~\\&|y\r",
		"MSH|^~\\&|x\rP!D|1\r",
		"MSH|^~\\&|x\rPIDX|1\r",
		"MSHa^~\\&|x\r",
		"MSH|^~\\&x|y\r",
	} {
		if _, err := Parse([]byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", raw, err)
		}
	}
}

// FuzzParse: whatever parses re-encodes to something that parses to the
// same message, and encoding is then stable.
func FuzzParse(f *testing.F) {
	f.Add([]byte(oru))
	f.Add([]byte("MSH|#*!$|A|B\rPID|1||id1*id2#x$y||N!F!M\r"))
	f.Add([]byte("MSH|^~\\&|\\X0D\\|\\E\\\\\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		once := m.Encode()
		m2, err := Parse(once)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v\n%q", err, once)
		}
		if twice := m2.Encode(); !bytes.Equal(once, twice) {
			t.Fatalf("encoding not stable:\n%q\n%q", once, twice)
		}
		if len(m2.Segments) != len(m.Segments) {
			t.Fatalf("%d segments became %d", len(m.Segments), len(m2.Segments))
		}
		for i := range m.Segments {
			for f := 3; f <= len(m.Segments[i].Fields); f++ {
				if a, b := m.Segments[i].V(f), m2.Segments[i].V(f); a != b {
					t.Fatalf("segment %d field %d: %q became %q", i, f, a, b)
				}
			}
		}
	})
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, msg := range []string{"MSH|a", "MSH|b"} {
		if err := WriteFrame(&buf, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReaderSize(&buf, 16)
	for _, want := range []string{"MSH|a", "MSH|b"} {
		got, err := ReadFrame(r, 100)
		if err != nil || string(got) != want {
			t.Fatalf("ReadFrame = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := ReadFrame(r, 100); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	big := "\x0b" + strings.Repeat("x", 5000) + "\x1c\r"
	tests := []struct {
		name, in string
		want     error
	}{
		{"garbage before the frame", "GET / HTTP/1.1\r\n", ErrFrame},
		{"truncated", "\x0bMSH|^~\\&|x", ErrFrame},
		{"end block without CR", "\x0bMSH\x1cX", ErrFrame},
		{"oversized", big, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReaderSize(strings.NewReader(tt.in), 16), 1000)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Exactly at the limit is accepted.
	msg := strings.Repeat("y", 1000)
	got, err := ReadFrame(bufio.NewReader(strings.NewReader("\x0b"+msg+"\x1c\r")), 1000)
	if err != nil || string(got) != msg {
		t.Fatalf("a frame of exactly the limit: %v", err)
	}
}

// A parse error is logged and sent back in the ACK: it never echoes a
// long piece of the input.
func TestParseErrorIsShort(t *testing.T) {
	_, err := Parse([]byte("MSH|^~\\&|x\r" + strings.Repeat("a", 100000) + "\r"))
	if err == nil || len(err.Error()) > 120 {
		t.Fatalf("error of %d bytes: %.200v", len(err.Error()), err)
	}
}
