package rcm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// obj is a FHIR resource or element as decoded JSON, with the path it
// sits at (for sources).
type obj struct {
	m    map[string]any
	path string
}

func (o obj) ok() bool { return o.m != nil }

// get returns the child object at key (an object, or an array's element
// i when key is "name[i]").
func (o obj) get(key string) obj {
	if o.m == nil {
		return obj{path: o.path + "." + key}
	}
	name, idx := key, -1
	if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
		name = key[:i]
		idx, _ = strconv.Atoi(key[i+1 : len(key)-1])
	}
	val := o.m[name]
	if idx >= 0 {
		arr, _ := val.([]any)
		if idx < len(arr) {
			val = arr[idx]
		} else {
			val = nil
		}
	}
	m, _ := val.(map[string]any)
	return obj{m: m, path: o.path + "." + key}
}

// at follows a dotted path of keys.
func (o obj) at(path string) obj {
	for _, k := range strings.Split(path, ".") {
		o = o.get(k)
	}
	return o
}

// str returns the primitive at a dotted path, as text, with its source.
func (o obj) str(path string) V {
	parent, key := o, path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, key = o.at(path[:i]), path[i+1:]
	}
	src := parent.path + "." + key
	if parent.m == nil {
		return V{Src: src}
	}
	name, idx := key, -1
	if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
		name = key[:i]
		idx, _ = strconv.Atoi(key[i+1 : len(key)-1])
	}
	val := parent.m[name]
	if idx >= 0 {
		arr, _ := val.([]any)
		val = nil
		if idx < len(arr) {
			val = arr[idx]
		}
	}
	switch x := val.(type) {
	case string:
		return V{Val: x, Src: src}
	case json.Number:
		return V{Val: x.String(), Src: src}
	case float64:
		return V{Val: strconv.FormatFloat(x, 'f', -1, 64), Src: src}
	case bool:
		return V{Val: strconv.FormatBool(x), Src: src}
	}
	return V{Src: src}
}

// list returns the array at key as objects.
func (o obj) list(key string) []obj {
	arr, _ := o.m[key].([]any)
	out := make([]obj, 0, len(arr))
	for i, a := range arr {
		m, _ := a.(map[string]any)
		out = append(out, obj{m: m, path: fmt.Sprintf("%s.%s[%d]", o.path, key, i)})
	}
	return out
}

// decode reads JSON keeping numbers as written (amounts stay exact).
func decode(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func ratOf(s string) (*big.Rat, bool) { return new(big.Rat).SetString(s) }

func ratInt(n int64) *big.Rat { return big.NewRat(n, 1) }
