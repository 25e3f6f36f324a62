// Package hl7v2 reads and writes HL7 version 2 messages (ER7, the
// pipe-and-hat encoding) and frames them for MLLP. It knows the encoding,
// not the message types: delimiters come from MSH-1 and MSH-2, values are
// unescaped on parse and escaped on write, and a field holds repetitions of
// components of subcomponents. Package lab gives the segments meaning.
package hl7v2

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("hl7v2: malformed message")

// Delimiters are a message's separators (MSH-1, then MSH-2 in order).
type Delimiters struct {
	Field, Component, Repetition, Escape, Subcomponent byte
}

// Standard is |^~\& (what Ward writes).
var Standard = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// Field is one field: its repetitions, each a list of components, each a
// list of subcomponents. Values are unescaped.
type Field [][][]string

// Segment is one segment: its name and fields, Fields[i] being field i+1
// (for MSH, Fields[0] is MSH-1, the field separator itself).
type Segment struct {
	Name   string
	Fields []Field
}

// Message is a parsed message.
type Message struct {
	Delims   Delimiters
	Segments []Segment
}

// Value is a field with a single value (one repetition, one component).
func Value(s string) Field { return Field{{{s}}} }

// Components is a field of one repetition with these components.
func Components(cs ...string) Field {
	rep := make([][]string, len(cs))
	for i, c := range cs {
		rep[i] = []string{c}
	}
	return Field{rep}
}

// Get returns field f (1-based), repetition r, component c and
// subcomponent s (all 1-based), or "" when absent.
func (sg Segment) Get(f, r, c, s int) string {
	if f < 1 || f > len(sg.Fields) || r < 1 || c < 1 || s < 1 {
		return ""
	}
	fl := sg.Fields[f-1]
	if r > len(fl) || c > len(fl[r-1]) || s > len(fl[r-1][c-1]) {
		return ""
	}
	return fl[r-1][c-1][s-1]
}

// C is component c of field f's first repetition (first subcomponent).
func (sg Segment) C(f, c int) string { return sg.Get(f, 1, c, 1) }

// V is field f's first value.
func (sg Segment) V(f int) string { return sg.Get(f, 1, 1, 1) }

// Reps is how many repetitions field f has.
func (sg Segment) Reps(f int) int {
	if f < 1 || f > len(sg.Fields) {
		return 0
	}
	return len(sg.Fields[f-1])
}

// Segment returns the first segment named name.
func (m *Message) Segment(name string) (Segment, bool) {
	for _, s := range m.Segments {
		if s.Name == name {
			return s, true
		}
	}
	return Segment{}, false
}

// MaxSegments bounds a parsed message, so a hostile one costs bounded work
// beyond its size (which the MLLP reader bounds).
const MaxSegments = 10000

// Parse reads an ER7 message. Segments end with CR (LF and CRLF are
// accepted too); the first must be MSH, whose fourth to eighth bytes are
// the delimiters.
func Parse(data []byte) (*Message, error) {
	s := string(data)
	if len(s) < 8 || !strings.HasPrefix(s, "MSH") {
		return nil, fmt.Errorf("%w: it does not start with an MSH segment", ErrMalformed)
	}
	d := Delimiters{Field: s[3], Component: s[4], Repetition: s[5], Escape: s[6], Subcomponent: s[7]}
	if err := d.check(); err != nil {
		return nil, err
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' })
	if len(lines) > MaxSegments {
		return nil, fmt.Errorf("%w: more than %d segments", ErrMalformed, MaxSegments)
	}
	m := &Message{Delims: d}
	for i, line := range lines {
		seg, err := d.parseSegment(line, i == 0)
		if err != nil {
			return nil, fmt.Errorf("%w: segment %d: %v", ErrMalformed, i+1, err)
		}
		m.Segments = append(m.Segments, seg)
	}
	return m, nil
}

func (d Delimiters) check() error {
	bs := []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent}
	for i, b := range bs {
		if b == '\r' || b == '\n' || b < 0x20 || b >= 0x7f || isAlnum(b) {
			return fmt.Errorf("%w: delimiter %q is not allowed", ErrMalformed, b)
		}
		for _, o := range bs[:i] {
			if o == b {
				return fmt.Errorf("%w: delimiter %q is used twice", ErrMalformed, b)
			}
		}
	}
	return nil
}

func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func (d Delimiters) parseSegment(line string, msh bool) (Segment, error) {
	parts := strings.Split(line, string(d.Field))
	name := parts[0]
	if len(name) != 3 || !isAlnum(name[0]) || !isAlnum(name[1]) || !isAlnum(name[2]) {
		if len(name) > 8 {
			name = name[:8] + "..." // the error is logged and sent back: keep it short
		}
		return Segment{}, fmt.Errorf("segment name %q is not three letters or digits", name)
	}
	if msh != (name == "MSH") {
		return Segment{}, fmt.Errorf("MSH must be the first segment, and only the first")
	}
	seg := Segment{Name: name}
	rest := parts[1:]
	if msh {
		// MSH-1 is the field separator and MSH-2 the encoding characters,
		// both taken as they stand.
		if len(rest) == 0 || len(rest[0]) != 4 {
			return Segment{}, fmt.Errorf("MSH-2 must be the four encoding characters")
		}
		seg.Fields = append(seg.Fields, Value(string(d.Field)), Value(rest[0]))
		rest = rest[1:]
	}
	for _, f := range rest {
		seg.Fields = append(seg.Fields, d.parseField(f))
	}
	return seg, nil
}

func (d Delimiters) parseField(f string) Field {
	reps := strings.Split(f, string(d.Repetition))
	out := make(Field, len(reps))
	for i, r := range reps {
		comps := strings.Split(r, string(d.Component))
		out[i] = make([][]string, len(comps))
		for j, c := range comps {
			subs := strings.Split(c, string(d.Subcomponent))
			for k := range subs {
				subs[k] = d.unescape(subs[k])
			}
			out[i][j] = subs
		}
	}
	return out
}

// unescape replaces \F\ \S\ \T\ \R\ \E\ with the delimiters they stand for
// (written with the message's escape character). Other sequences
// (formatting such as \.br\, hex \X..\) are kept as they stand.
func (d Delimiters) unescape(s string) string {
	e := string(d.Escape)
	if !strings.Contains(s, e) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, d.Escape)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i:]
		if len(s) >= 3 && s[2] == d.Escape {
			if r, ok := d.escaped(s[1]); ok {
				b.WriteByte(r)
				s = s[3:]
				continue
			}
		}
		// A lone escape character or an unknown sequence: literal.
		b.WriteByte(s[0])
		s = s[1:]
	}
}

func (d Delimiters) escaped(c byte) (byte, bool) {
	switch c {
	case 'F':
		return d.Field, true
	case 'S':
		return d.Component, true
	case 'T':
		return d.Subcomponent, true
	case 'R':
		return d.Repetition, true
	case 'E':
		return d.Escape, true
	}
	return 0, false
}

// escape is unescape's inverse. A CR or LF inside a value cannot be
// written in ER7 (it ends the segment), so it becomes \X0D\ / \X0A\.
func (d Delimiters) escape(s string) string {
	need := false
	for i := 0; i < len(s); i++ {
		if d.special(s[i]) {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		var code string
		switch c {
		case d.Field:
			code = "F"
		case d.Component:
			code = "S"
		case d.Subcomponent:
			code = "T"
		case d.Repetition:
			code = "R"
		case d.Escape:
			code = "E"
		case '\r':
			code = "X0D"
		case '\n':
			code = "X0A"
		default:
			b.WriteByte(c)
			continue
		}
		b.WriteByte(d.Escape)
		b.WriteString(code)
		b.WriteByte(d.Escape)
	}
	return b.String()
}

func (d Delimiters) special(c byte) bool {
	return c == d.Field || c == d.Component || c == d.Subcomponent || c == d.Repetition || c == d.Escape || c == '\r' || c == '\n'
}

// Encode writes m in ER7, segments ended by CR.
func (m *Message) Encode() []byte {
	d := m.Delims
	var b strings.Builder
	for _, seg := range m.Segments {
		b.WriteString(seg.Name)
		fields := seg.Fields
		if seg.Name == "MSH" {
			b.WriteByte(d.Field)
			b.Write([]byte{d.Component, d.Repetition, d.Escape, d.Subcomponent})
			if len(fields) >= 2 {
				fields = fields[2:]
			} else {
				fields = nil
			}
		}
		for _, f := range fields {
			b.WriteByte(d.Field)
			for i, rep := range f {
				if i > 0 {
					b.WriteByte(d.Repetition)
				}
				for j, comp := range rep {
					if j > 0 {
						b.WriteByte(d.Component)
					}
					for k, sub := range comp {
						if k > 0 {
							b.WriteByte(d.Subcomponent)
						}
						b.WriteString(d.escape(sub))
					}
				}
			}
		}
		b.WriteByte('\r')
	}
	return []byte(b.String())
}

// NewMessage starts a message with Standard delimiters and an MSH whose
// fields from MSH-3 on are given.
func NewMessage(msh ...Field) *Message {
	d := Standard
	fields := append([]Field{Value(string(d.Field)), Value("^~\\&")}, msh...)
	return &Message{Delims: d, Segments: []Segment{{Name: "MSH", Fields: fields}}}
}

// Add appends a segment with these fields (field 1 first).
func (m *Message) Add(name string, fields ...Field) {
	m.Segments = append(m.Segments, Segment{Name: name, Fields: fields})
}
