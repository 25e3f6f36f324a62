package schema

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// sortDocumentOrder puts issues in the order their properties appear in the document. The walk
// ranges over decoded maps, whose order Go randomizes, so the positions come from a second,
// token-level pass over the input. That pass runs only when there are issues to order, which
// keeps it off the path of valid resources.
//
// An issue about a property sorts at the property's start; an issue about something absent (a
// missing required element) sorts at the end of the object that lacks it.
func sortDocumentOrder(data []byte, fs []found) {
	// Only the paths of issues and their ancestors need a position. Restricting the scan to
	// them keeps its cost linear in the input: path strings are built only along those paths.
	wanted := map[string]bool{"": true}
	for _, f := range fs {
		for rel := f.rel; rel != "" && !wanted[rel]; rel = parentPath(rel) {
			wanted[rel] = true
		}
	}
	spans := map[string]span{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := scanSpans(dec, "", wanted, spans); err != nil {
		return // cannot happen: Validate decoded the same bytes; keep the walk's order
	}
	keys := make([]int64, len(fs))
	for i, f := range fs {
		keys[i] = position(f.rel, spans)
	}
	idx := make([]int, len(fs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	sorted := make([]found, len(fs))
	for i, j := range idx {
		sorted[i] = fs[j]
	}
	copy(fs, sorted)
}

type span struct{ start, end int64 }

// position maps an issue path to a sort key: twice the byte offset, plus one for "at the end",
// so an absent element sorts after everything inside its parent object.
func position(rel string, spans map[string]span) int64 {
	if s, ok := spans[rel]; ok {
		return 2 * s.start
	}
	for rel != "" {
		rel = parentPath(rel)
		if s, ok := spans[rel]; ok {
			return 2*s.end + 1
		}
	}
	return 2*spans[""].end + 1
}

// parentPath drops the last step of a path: ".a.b[2]" -> ".a.b" -> ".a" -> "".
func parentPath(rel string) string {
	if i := strings.LastIndexAny(rel, ".["); i >= 0 {
		return rel[:i]
	}
	return ""
}

// scanSpans records the byte span of the value at path and of every wanted value below it,
// keyed like seg.rel. Values on no wanted path are read as tokens and not recorded.
func scanSpans(dec *json.Decoder, path string, wanted map[string]bool, spans map[string]span) error {
	start := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string)
			if err := scanChild(dec, path+"."+key, wanted, spans); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := scanChild(dec, path+"["+strconv.Itoa(i)+"]", wanted, spans); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
	}
	if _, dup := spans[path]; !dup {
		spans[path] = span{start: start, end: dec.InputOffset()}
	}
	return nil
}

func scanChild(dec *json.Decoder, path string, wanted map[string]bool, spans map[string]span) error {
	if wanted[path] {
		return scanSpans(dec, path, wanted, spans)
	}
	return skipValue(dec)
}

// skipValue reads one value without recursion or allocation per level.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
