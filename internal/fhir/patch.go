package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
)

// patchOp is one RFC 6902 JSON Patch operation.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from"`
	Value json.RawMessage `json:"value"`
}

// Patch applies a JSON Patch to the current version and stores the result
// as a new version (validated like an update). ifMatch as in Update.
func (s *Service) Patch(ctx context.Context, p auth.Principal, typ, id string, ops []byte, ifMatch string) (Resource, error) {
	if err := checkType(typ); err != nil {
		return Resource{}, err
	}
	// Patch needs FHIR:Update only (SMART's u covers it; write access does
	// not imply read access), so the current version is read unchecked.
	a, err := s.decide(ctx, p, "FHIR:Update", typ, id)
	if err != nil {
		return Resource{}, err
	}
	if ok, err := s.covers(ctx, p.ProjectID, typ, id, a); err != nil || !ok {
		if err == nil {
			err = fault.Forbidden("access denied: FHIR:Update on %s is allowed only for resources matching the policy's conditions", resourceName(typ, id))
		}
		return Resource{}, err
	}
	expect, err := parseIfMatch(ifMatch)
	if err != nil {
		return Resource{}, err
	}
	if err := checkJSONText(ops); err != nil {
		return Resource{}, err
	}
	var list []patchOp
	dec := json.NewDecoder(bytes.NewReader(ops))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return Resource{}, fault.Invalid("the patch must be a JSON Patch array of operations: %s", jsonErr(err))
	}
	if expect != 0 {
		return s.patchOnce(ctx, p, typ, id, list, expect, a)
	}
	// Without If-Match, concurrent patches take turns like plain updates:
	// each applies to the version it read and, when another write got in
	// first, reads again and reapplies (a test op then sees the new state).
	for attempt := 1; ; attempt++ {
		r, err := s.patchOnce(ctx, p, typ, id, list, 0, a)
		if err == nil || !errors.Is(err, fault.ErrPrecondition) || attempt == patchAttempts {
			return r, err
		}
	}
}

// patchAttempts bounds the rereads of a patch without If-Match that keeps
// losing to concurrent writers; the last loser gets the 412.
const patchAttempts = 8

// patchOnce applies list to the current version (or to version expect,
// when given) and writes the result only if nothing was written since.
func (s *Service) patchOnce(ctx context.Context, p auth.Principal, typ, id string, list []patchOp, expect int64, a access) (Resource, error) {
	cur, err := s.current(ctx, p.ProjectID, typ, id)
	if err != nil {
		return Resource{}, err
	}
	if expect == 0 {
		expect = cur.VersionID // patch what was read: a concurrent write becomes a conflict
	}
	doc, err := decode(cur.Content)
	if err != nil {
		return Resource{}, err
	}
	var root any = doc
	for i, op := range list {
		if root, err = applyOp(root, op); err != nil {
			return Resource{}, &unprocessable{msg: "patch operation " + strconv.Itoa(i) + " (" + op.Op + " " + op.Path + "): " + err.Error()}
		}
	}
	body, err := json.Marshal(root)
	if err != nil {
		return Resource{}, err
	}
	m, err := validate(body, typ)
	if err != nil {
		return Resource{}, err
	}
	if typ == "Binary" {
		// validate dropped the blob extension (only Ward names blobs): a
		// large Binary's bytes stay where they are unless the patch gave
		// new data.
		if _, _, key, _, err := binaryParts(cur.Content); err == nil && key != "" && m["data"] == nil {
			setBinaryBlob(m, key)
		}
	}
	if m["id"] != id {
		return Resource{}, &unprocessable{msg: "a patch may not change the resource's id"}
	}
	return s.write(ctx, p, typ, id, m, "PATCH", expect, false, a)
}

// unprocessable is a 422: the request is well formed but cannot be applied.
type unprocessable struct{ msg string }

func (e *unprocessable) Error() string { return e.msg }
func (e *unprocessable) Unwrap() error { return fault.ErrInvalid }

type patchErr string

func (e patchErr) Error() string { return string(e) }

// pointer splits an RFC 6901 JSON Pointer.
func pointer(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	if !strings.HasPrefix(path, "/") {
		return nil, patchErr("the path must start with /")
	}
	parts := strings.Split(path[1:], "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func applyOp(root any, op patchOp) (any, error) {
	path, err := pointer(op.Path)
	if err != nil {
		return nil, err
	}
	var value any
	if op.Op == "add" || op.Op == "replace" || op.Op == "test" {
		if op.Value == nil {
			return nil, patchErr("a value is required")
		}
		dec := json.NewDecoder(bytes.NewReader(op.Value))
		dec.UseNumber()
		if err := dec.Decode(&value); err != nil {
			return nil, patchErr("the value is not valid JSON")
		}
	}
	switch op.Op {
	case "add":
		return set(root, path, value, true)
	case "replace":
		if _, err := get(root, path); err != nil {
			return nil, err
		}
		return set(root, path, value, false)
	case "remove":
		return remove(root, path)
	case "test":
		got, err := get(root, path)
		if err != nil {
			return nil, err
		}
		if !reflect.DeepEqual(normalize(got), normalize(value)) {
			return nil, patchErr("test failed: the value differs")
		}
		return root, nil
	case "move", "copy":
		from, err := pointer(op.From)
		if err != nil {
			return nil, err
		}
		v, err := get(root, from)
		if err != nil {
			return nil, err
		}
		if op.Op == "move" {
			if strings.HasPrefix(op.Path+"/", op.From+"/") && op.Path != op.From {
				return nil, patchErr("cannot move a value into itself")
			}
			if root, err = remove(root, from); err != nil {
				return nil, err
			}
		} else {
			v = deepCopy(v)
		}
		return set(root, path, v, true)
	}
	return nil, patchErr("unknown op " + strconv.Quote(op.Op))
}

func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func deepCopy(v any) any {
	b, _ := json.Marshal(v)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	_ = dec.Decode(&out)
	return out
}

func arrayIndex(arr []any, tok string, forAdd bool) (int, error) {
	if forAdd && tok == "-" {
		return len(arr), nil
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 || (tok != "0" && strings.HasPrefix(tok, "0")) {
		return 0, patchErr("bad array index " + strconv.Quote(tok))
	}
	limit := len(arr)
	if !forAdd {
		limit--
	}
	if i > limit {
		return 0, patchErr("array index " + tok + " is out of range")
	}
	return i, nil
}

func get(root any, path []string) (any, error) {
	cur := root
	for _, tok := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, patchErr("no value at " + strconv.Quote(tok))
			}
			cur = v
		case []any:
			i, err := arrayIndex(c, tok, false)
			if err != nil {
				return nil, err
			}
			cur = c[i]
		default:
			return nil, patchErr("cannot descend into a primitive at " + strconv.Quote(tok))
		}
	}
	return cur, nil
}

// set adds (insert into arrays) or replaces the value at path.
func set(root any, path []string, v any, insert bool) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch c := parent.(type) {
	case map[string]any:
		c[last] = v
		return root, nil
	case []any:
		i, err := arrayIndex(c, last, insert)
		if err != nil {
			return nil, err
		}
		var next []any
		if insert {
			next = append(append(append([]any{}, c[:i]...), v), c[i:]...)
		} else {
			next = append([]any{}, c...)
			next[i] = v
		}
		return set(root, path[:len(path)-1], next, false)
	}
	return nil, patchErr("the parent of the path is not an object or array")
}

func remove(root any, path []string) (any, error) {
	if len(path) == 0 {
		return nil, patchErr("cannot remove the whole resource")
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch c := parent.(type) {
	case map[string]any:
		if _, ok := c[last]; !ok {
			return nil, patchErr("no value at " + strconv.Quote(last))
		}
		delete(c, last)
		return root, nil
	case []any:
		i, err := arrayIndex(c, last, false)
		if err != nil {
			return nil, err
		}
		next := append(append([]any{}, c[:i]...), c[i+1:]...)
		return set(root, path[:len(path)-1], next, false)
	}
	return nil, patchErr("the parent of the path is not an object or array")
}
