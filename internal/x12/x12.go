// Package x12 reads and writes ASC X12 5010 interchanges: the ISA/GS/ST
// envelope, delimiters taken from the ISA header, segment terminators and
// control numbers. It knows nothing of what a transaction means (837P,
// 270/271, 277CA live in internal/rcm); it gives segments and checks the
// envelope's counts and control numbers.
package x12

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrSyntax is what every parse error wraps.
var ErrSyntax = errors.New("x12: syntax")

// Delims are an interchange's separators. X12 has no escape character:
// a value may not contain any of them (the writer refuses it).
type Delims struct {
	Element, Component, Repetition, Segment byte
}

// Default is what Ward writes: the separators most trading partners use.
var Default = Delims{Element: '*', Component: ':', Repetition: '^', Segment: '~'}

// Segment is one segment: its id and its elements (Elements[0] is the
// segment's 01 element). Components stay inside the element's text.
type Segment struct {
	ID       string
	Elements []string
}

// E returns element n (1-based, as the implementation guides count),
// "" when absent.
func (s Segment) E(n int) string {
	if n < 1 || n > len(s.Elements) {
		return ""
	}
	return s.Elements[n-1]
}

// Interchange is a parsed interchange: its delimiters and every segment
// from ISA to IEA, in order.
type Interchange struct {
	Delims   Delims
	Segments []Segment
}

// isaLen is the ISA segment's fixed length, its terminator included.
const isaLen = 106

// Parse reads one interchange. The separators are the ISA's: the element
// separator is its 4th byte, the repetition separator ISA11, the component
// separator ISA16 and the segment terminator the byte after it. Line
// breaks after terminators are ignored. The envelope must be whole and
// consistent (see Check).
func Parse(data []byte) (*Interchange, error) {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) < isaLen || string(data[:3]) != "ISA" {
		return nil, fmt.Errorf("%w: an interchange starts with a %d-character ISA segment", ErrSyntax, isaLen)
	}
	d := Delims{Element: data[3], Repetition: data[82], Component: data[104], Segment: data[105]}
	if err := d.valid(); err != nil {
		return nil, err
	}
	if n := bytes.Count(data[:isaLen-1], []byte{d.Element}); n != 16 {
		return nil, fmt.Errorf("%w: ISA has %d element separators, not 16", ErrSyntax, n)
	}
	ix := &Interchange{Delims: d}
	for _, raw := range bytes.Split(data, []byte{d.Segment}) {
		raw = bytes.Trim(raw, "\r\n")
		if len(raw) == 0 {
			continue
		}
		parts := strings.Split(string(raw), string(d.Element))
		id := parts[0]
		if !validID(id) {
			return nil, fmt.Errorf("%w: segment %d: %q is not a segment id", ErrSyntax, len(ix.Segments)+1, clip(id))
		}
		ix.Segments = append(ix.Segments, Segment{ID: id, Elements: parts[1:]})
	}
	if err := ix.Check(); err != nil {
		return nil, err
	}
	return ix, nil
}

func (d Delims) valid() error {
	// Line breaks after terminators are ignored (and written), so neither
	// may separate elements, components or repetitions.
	for _, c := range []byte{d.Element, d.Component, d.Repetition} {
		if c == '\r' || c == '\n' {
			return fmt.Errorf("%w: a line break separates segments at most, not elements, components or repetitions", ErrSyntax)
		}
	}
	all := []byte{d.Element, d.Component, d.Repetition, d.Segment}
	for i, c := range all {
		if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == ' ' {
			return fmt.Errorf("%w: separator %q is a letter, digit or space", ErrSyntax, c)
		}
		for _, o := range all[i+1:] {
			if c == o {
				return fmt.Errorf("%w: separator %q is used twice", ErrSyntax, c)
			}
		}
	}
	return nil
}

func validID(id string) bool {
	if len(id) < 2 || len(id) > 3 {
		return false
	}
	for _, c := range id {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Check verifies the envelope: ISA first, IEA last, each GS closed by a GE
// and each ST by an SE, with matching control numbers and counts.
func (ix *Interchange) Check() error {
	segs := ix.Segments
	if len(segs) < 2 || segs[0].ID != "ISA" || segs[len(segs)-1].ID != "IEA" {
		return fmt.Errorf("%w: an interchange is ISA ... IEA", ErrSyntax)
	}
	if len(segs[0].Elements) != 16 {
		return fmt.Errorf("%w: ISA has %d elements, not 16", ErrSyntax, len(segs[0].Elements))
	}
	groups, inGroup, inSet := 0, false, false
	var gs, st Segment
	sets, stAt := 0, 0
	for i, s := range segs[1 : len(segs)-1] {
		i++
		switch s.ID {
		case "ISA", "IEA":
			return fmt.Errorf("%w: segment %d: %s inside the interchange", ErrSyntax, i+1, s.ID)
		case "GS":
			if inGroup {
				return fmt.Errorf("%w: segment %d: GS before the previous GE", ErrSyntax, i+1)
			}
			inGroup, gs, sets = true, s, 0
		case "GE":
			if !inGroup || inSet {
				return fmt.Errorf("%w: segment %d: GE without its GS, or inside a transaction set", ErrSyntax, i+1)
			}
			if s.E(2) != gs.E(6) {
				return fmt.Errorf("%w: GE02 %q does not match GS06 %q", ErrSyntax, clip(s.E(2)), clip(gs.E(6)))
			}
			if s.E(1) != strconv.Itoa(sets) {
				return fmt.Errorf("%w: GE01 says %q transaction sets; the group has %d", ErrSyntax, clip(s.E(1)), sets)
			}
			inGroup = false
			groups++
		case "ST":
			if !inGroup || inSet {
				return fmt.Errorf("%w: segment %d: ST outside a group or inside another set", ErrSyntax, i+1)
			}
			inSet, st, stAt = true, s, i
		case "SE":
			if !inSet {
				return fmt.Errorf("%w: segment %d: SE without its ST", ErrSyntax, i+1)
			}
			if s.E(2) != st.E(2) {
				return fmt.Errorf("%w: SE02 %q does not match ST02 %q", ErrSyntax, clip(s.E(2)), clip(st.E(2)))
			}
			if s.E(1) != strconv.Itoa(i-stAt+1) {
				return fmt.Errorf("%w: SE01 says %q segments; the set has %d", ErrSyntax, clip(s.E(1)), i-stAt+1)
			}
			inSet = false
			sets++
		default:
			if !inSet {
				return fmt.Errorf("%w: segment %d: %s outside a transaction set", ErrSyntax, i+1, s.ID)
			}
		}
	}
	if inGroup || inSet {
		return fmt.Errorf("%w: a group or transaction set is not closed", ErrSyntax)
	}
	iea := segs[len(segs)-1]
	if iea.E(2) != segs[0].E(13) {
		return fmt.Errorf("%w: IEA02 %q does not match ISA13 %q", ErrSyntax, clip(iea.E(2)), clip(segs[0].E(13)))
	}
	if iea.E(1) != strconv.Itoa(groups) {
		return fmt.Errorf("%w: IEA01 says %q groups; the interchange has %d", ErrSyntax, clip(iea.E(1)), groups)
	}
	return nil
}

// Sets returns the segments of each transaction set (ST to SE included)
// with the GS that opened its group.
func (ix *Interchange) Sets() []Set {
	var out []Set
	var gs Segment
	start := -1
	for i, s := range ix.Segments {
		switch s.ID {
		case "GS":
			gs = s
		case "ST":
			start = i
		case "SE":
			if start >= 0 {
				out = append(out, Set{GS: gs, Segments: ix.Segments[start : i+1]})
				start = -1
			}
		}
	}
	return out
}

// Set is one transaction set, ST to SE, and its group's GS.
type Set struct {
	GS       Segment
	Segments []Segment
}

// Bytes writes the interchange with its delimiters, one segment per line.
// It fails when a value holds the element separator or the segment
// terminator (X12 cannot escape them). A value's components and
// repetitions are its own structure, written as they are (what Parse
// read, e.g. a 271's repeated EB03, writes back); text from elsewhere that
// must not carry them is refused before it gets here (rcm's validator).
func (ix *Interchange) Bytes() ([]byte, error) {
	var b bytes.Buffer
	d := ix.Delims
	for i, s := range ix.Segments {
		b.WriteString(s.ID)
		for j, e := range s.Elements {
			if s.ID != "ISA" || (j != 10 && j != 15) { // ISA11 and ISA16 are separators themselves
				// Bytes, not runes: a separator may be any byte, and
				// strings.IndexAny would match every invalid UTF-8 byte
				// to one that is not valid UTF-8 either.
				for _, sep := range []byte{d.Element, d.Segment} {
					if strings.IndexByte(e, sep) >= 0 {
						return nil, fmt.Errorf("x12: segment %d %s%02d holds the separator %q", i+1, s.ID, j+1, sep)
					}
				}
			}
			b.WriteByte(d.Element)
			b.WriteString(e)
		}
		b.WriteByte(d.Segment)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// Envelope is what the ISA and GS headers say about an interchange.
type Envelope struct {
	SenderQual, SenderID     string // ISA05/06 (GS02 gets SenderID)
	ReceiverQual, ReceiverID string // ISA07/08 (GS03 gets ReceiverID)
	Control                  int    // ISA13, GS06 and ST02 (1..999999999)
	Time                     time.Time
	Test                     bool   // ISA15 T, else P
	FunctionalID             string // GS01: HC (837), HS (270), HB (271), HN (277)
	Version                  string // GS08 and ST03, e.g. 005010X222A1
}

// Wrap builds a whole interchange around one transaction set: body is the
// set's segments between ST and SE.
func Wrap(env Envelope, setID string, body []Segment) *Interchange {
	ctl := fmt.Sprintf("%09d", env.Control%1000000000)
	stCtl := fmt.Sprintf("%04d", env.Control%10000)
	usage := "P"
	if env.Test {
		usage = "T"
	}
	t := env.Time.UTC()
	d := Default
	segs := make([]Segment, 0, len(body)+6)
	segs = append(segs,
		Segment{ID: "ISA", Elements: []string{"00", pad("", 10), "00", pad("", 10), env.SenderQual, pad(env.SenderID, 15),
			env.ReceiverQual, pad(env.ReceiverID, 15), t.Format("060102"), t.Format("1504"), string(d.Repetition), "00501", ctl, "0", usage, string(d.Component)}},
		Segment{ID: "GS", Elements: []string{env.FunctionalID, env.SenderID, env.ReceiverID, t.Format("20060102"), t.Format("1504"), strconv.Itoa(env.Control % 1000000000), "X", env.Version}},
		Segment{ID: "ST", Elements: []string{setID, stCtl, env.Version}},
	)
	segs = append(segs, body...)
	segs = append(segs,
		Segment{ID: "SE", Elements: []string{strconv.Itoa(len(body) + 2), stCtl}},
		Segment{ID: "GE", Elements: []string{"1", strconv.Itoa(env.Control % 1000000000)}},
		Segment{ID: "IEA", Elements: []string{"1", ctl}},
	)
	return &Interchange{Delims: d, Segments: segs}
}

// pad left-justifies s in a fixed-width ISA field, cutting what is longer.
func pad(s string, n int) string {
	if len(s) >= n {
		return s[:n]
	}
	return s + strings.Repeat(" ", n-len(s))
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
