package fhir

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// Binary (R4 binary.html, http.html#binary): a create or update whose
// Content-Type is not FHIR's stores the body itself as the Binary's
// content, and a read whose Accept is not FHIR's returns it as it was
// sent. Small contents live in the resource (data, base64); larger ones
// are streamed into a blob (BinaryStore, Z3 in Ward) that the stored
// resource names in a meta extension, and streamed back on reads, so a
// 100 MiB body is never held in memory.

// BinaryStore keeps the bytes of large Binary resources: Z3's internal
// bucket in Ward. Keys are chosen by the store and unique per put; a
// stored blob is never changed (each version of a Binary has its own).
type BinaryStore interface {
	// PutBinary streams r into a new blob of the project and returns its
	// key. A body over the store's limit is an error matching
	// fault.ErrTooLarge.
	PutBinary(ctx context.Context, projectID, contentType string, r io.Reader) (key string, err error)
	// OpenBinary returns the blob's bytes and size. Errors: fault.ErrNotFound.
	OpenBinary(ctx context.Context, projectID, key string) (io.ReadCloser, int64, error)
}

// DefaultInlineBinaryBytes is the largest Binary content kept in the
// resource itself when Config.InlineBinaryBytes is 0.
const DefaultInlineBinaryBytes = 256 << 10

// binaryBlobURL is the meta extension that names a Binary's blob. Ward
// sets it; one sent by a client is dropped (it would name another
// Binary's bytes).
const binaryBlobURL = "https://wardhealth.dev/fhir/StructureDefinition/binary-blob"

// fhirBody reports whether a Content-Type names a FHIR resource body
// (JSON; "" and application/json as the SDK sends them).
func fhirBody(contentType string) bool {
	t := mediaType(contentType)
	return t == "" || jsonFormats[t]
}

// BinaryUpload is a Binary's content as sent natively.
type BinaryUpload struct {
	ContentType     string
	SecurityContext string // X-Security-Context: a reference, "" for none
	Body            io.Reader
	IfMatch         string // update only
}

// PutBinary creates (id "") or updates the Binary from a native body. It
// checks the caller's access before reading the body, stores up to
// InlineBinaryBytes in the resource and streams the rest into the
// BinaryStore. created reports a new resource.
func (s *Service) PutBinary(ctx context.Context, p auth.Principal, id string, up BinaryUpload) (Resource, bool, error) {
	method, expect, exists := "POST", int64(0), false
	var a access
	if id == "" {
		var err error
		if a, err = s.decide(ctx, p, "FHIR:Create", "Binary", ""); err != nil {
			return Resource{}, false, err
		}
		id = newID()
	} else {
		if err := checkID(id); err != nil {
			return Resource{}, false, err
		}
		var err error
		if expect, err = parseIfMatch(up.IfMatch); err != nil {
			return Resource{}, false, err
		}
		cur, err := s.store.GetResource(ctx, p.ProjectID, "Binary", id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Resource{}, false, err
		}
		exists, method = err == nil && !cur.Deleted, "PUT"
		if exists {
			if err := s.requireCovered(ctx, p, "FHIR:Update", "Binary", id); err != nil {
				return Resource{}, false, err
			}
			a, err = s.decide(ctx, p, "FHIR:Update", "Binary", id)
		} else {
			a, err = s.decide(ctx, p, "FHIR:Create", "Binary", "")
		}
		if err != nil {
			return Resource{}, false, err
		}
	}
	ct := up.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	m := map[string]any{"resourceType": "Binary", "id": id, "contentType": ct}
	if up.SecurityContext != "" {
		m["securityContext"] = map[string]any{"reference": up.SecurityContext}
	}
	// The context is checked before the body is read: a refused upload
	// costs nothing.
	if err := s.binaryContextAllowed(ctx, p, m); err != nil {
		return Resource{}, false, err
	}
	inline := s.cfg.InlineBinaryBytes
	head, err := io.ReadAll(io.LimitReader(up.Body, int64(inline)+1))
	if err != nil {
		return Resource{}, false, bodyErr(err)
	}
	var key string
	if len(head) <= inline {
		m["data"] = base64.StdEncoding.EncodeToString(head)
	} else {
		if s.cfg.Binaries == nil {
			return Resource{}, false, fault.TooLarge("a Binary's content may be at most %d bytes here (no blob store)", inline)
		}
		if key, err = s.cfg.Binaries.PutBinary(ctx, p.ProjectID, ct, io.MultiReader(bytes.NewReader(head), up.Body)); err != nil {
			return Resource{}, false, bodyErr(err)
		}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return Resource{}, false, err
	}
	if m, err = validate(body, "Binary"); err != nil {
		return Resource{}, false, err
	}
	if key != "" {
		m["meta"] = map[string]any{"extension": []any{map[string]any{"url": binaryBlobURL, "valueString": key}}}
	}
	r, err := s.write(ctx, p, "Binary", id, m, method, expect, true, a)
	return r, err == nil && !exists, err
}

// bodyErr maps a failure reading a request body.
func bodyErr(err error) error {
	if errors.Is(err, fault.ErrTooLarge) {
		return err
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return fault.TooLarge("the request body is larger than the limit")
	}
	return fmt.Errorf("read the Binary body: %w", err)
}

// bundled is a resource's JSON as a search or history bundle carries it: a
// Binary whose bytes are in the blob store comes without its internal blob
// name and without data (R4 allows a Binary without data; a read of it, or
// of that version, returns the bytes).
func bundled(res Resource) []byte {
	if res.Type != "Binary" || !bytes.Contains(res.Content, []byte(binaryBlobURL)) {
		return res.Content
	}
	_, _, _, public, err := binaryParts(res.Content)
	if err != nil {
		return res.Content
	}
	b, err := json.Marshal(public)
	if err != nil {
		return res.Content
	}
	return b
}

// setBinaryBlob names key as the Binary's blob, keeping its other meta.
func setBinaryBlob(m map[string]any, key string) {
	meta, _ := m["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["meta"] = meta
	}
	exts, _ := meta["extension"].([]any)
	meta["extension"] = append(exts, map[string]any{"url": binaryBlobURL, "valueString": key})
}

// stripBinaryBlob drops a client's blob extension from a Binary (only
// Ward names blobs).
func stripBinaryBlob(m map[string]any) {
	meta, _ := m["meta"].(map[string]any)
	exts, _ := meta["extension"].([]any)
	if len(exts) == 0 {
		return
	}
	exts = slices.DeleteFunc(exts, func(e any) bool {
		em, _ := e.(map[string]any)
		return em["url"] == binaryBlobURL
	})
	if len(exts) == 0 {
		delete(meta, "extension")
	} else {
		meta["extension"] = exts
	}
	if len(meta) == 0 {
		delete(m, "meta")
	}
}

// BinaryContent is a Binary's content: its type and bytes.
type BinaryContent struct {
	ContentType string
	Size        int64 // -1 when not known
	Body        io.ReadCloser
}

// binaryParts reads a stored Binary: its content type, its inline data
// (base64) or blob key, and its JSON without the blob extension.
func binaryParts(content []byte) (contentType, data, key string, public map[string]any, err error) {
	m, err := decode(content)
	if err != nil {
		return "", "", "", nil, err
	}
	contentType, _ = m["contentType"].(string)
	data, _ = m["data"].(string)
	if meta, ok := m["meta"].(map[string]any); ok {
		exts, _ := meta["extension"].([]any)
		for _, e := range exts {
			if em, _ := e.(map[string]any); em["url"] == binaryBlobURL {
				key, _ = em["valueString"].(string)
			}
		}
	}
	stripBinaryBlob(m)
	return contentType, data, key, m, nil
}

// OpenBinary returns the content of a Binary version read with Read or
// VRead (access checked there).
func (s *Service) OpenBinary(ctx context.Context, projectID string, res Resource) (BinaryContent, error) {
	ct, data, key, _, err := binaryParts(res.Content)
	if err != nil {
		return BinaryContent{}, err
	}
	if key == "" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return BinaryContent{}, fmt.Errorf("Binary/%s: stored data is not base64: %w", res.ID, err)
		}
		return BinaryContent{ContentType: ct, Size: int64(len(b)), Body: io.NopCloser(bytes.NewReader(b))}, nil
	}
	if s.cfg.Binaries == nil {
		return BinaryContent{}, fault.Unavailable("the content of Binary/%s is in a blob store this server does not have", res.ID)
	}
	rc, size, err := s.cfg.Binaries.OpenBinary(ctx, projectID, key)
	if err != nil {
		return BinaryContent{}, fmt.Errorf("Binary/%s: %w", res.ID, err)
	}
	return BinaryContent{ContentType: ct, Size: size, Body: rc}, nil
}

// binaryContextAllowed checks a Binary's securityContext (R4: the resource
// whose access governs the Binary's): when it names a resource here
// ("Type/id"), the caller must be able to read that resource too.
func (s *Service) binaryContextAllowed(ctx context.Context, p auth.Principal, m map[string]any) error {
	if p.Kind == KindSystem {
		return nil
	}
	sc, _ := m["securityContext"].(map[string]any)
	ref, _ := sc["reference"].(string)
	if ref == "" {
		return nil
	}
	typ, id, ok := strings.Cut(ref, "/")
	id, _, _ = strings.Cut(id, "/_history/") // a version's access is its resource's
	if !ok || strings.Contains(id, "/") || checkType(typ) != nil || checkID(id) != nil {
		return nil // an absolute or contained reference: nothing here to check
	}
	if err := s.requireCovered(ctx, p, "FHIR:Read", typ, id); err != nil {
		return fmt.Errorf("the Binary's securityContext is %s: %w", ref, err)
	}
	return nil
}

// binaryReadable checks the securityContext of a stored Binary version.
func (s *Service) binaryReadable(ctx context.Context, p auth.Principal, res Resource) error {
	if res.Type != "Binary" || res.Deleted {
		return nil
	}
	m, err := decode(res.Content)
	if err != nil {
		return err
	}
	return s.binaryContextAllowed(ctx, p, m)
}

// binaryContexts is what p may see of typ's resources by their
// securityContext when typ is Binary (store.ContextAccess: the search's SQL
// leaves the others out, so totals and pages are exact); nil for other
// types, for the system principal, and until Binaries written before the
// index are indexed (readableBinaries still filters each page then).
func (s *Service) binaryContexts(ctx context.Context, p auth.Principal, typ string) (*store.ContextAccess, error) {
	if typ != "Binary" || p.Kind == KindSystem {
		return nil, nil
	}
	if err := s.backfilled(ctx, binaryContextJob); errors.Is(err, fault.ErrUnavailable) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	set, err := s.authz.PolicySet(ctx, p)
	if err != nil {
		return nil, err
	}
	ca := &store.ContextAccess{Param: search.SecurityContextParam, Types: map[string]store.Restriction{}}
	for _, t := range search.ResourceTypes() {
		a, err := s.decide(ctx, p, "FHIR:Read", t, "")
		if errors.Is(err, fault.ErrForbidden) {
			continue // no Binary of this context shows
		}
		if err != nil {
			return nil, err
		}
		hidden := set.DeniedIDs("FHIR:Read", "FHIR:"+t)
		if a.allowed == nil && len(hidden) == 0 {
			ca.Open = append(ca.Open, t)
		} else {
			ca.Types[t] = store.Restriction{Allowed: a.allowed, Hidden: hidden}
		}
	}
	if len(ca.Types) > maxContextTypes {
		// A token limited to one patient makes every compartment type
		// conditional: keep the SQL to the types Binaries name here.
		named, err := s.store.ReferenceTargetTypes(ctx, p.ProjectID, "Binary", search.SecurityContextParam)
		if err != nil {
			return nil, err
		}
		for t := range ca.Types {
			if !slices.Contains(named, t) {
				delete(ca.Types, t)
			}
		}
	}
	return ca, nil
}

// maxContextTypes is how many conditionally readable types binaryContexts
// puts in a search's SQL before it narrows them to those in use.
const maxContextTypes = 8

// readableBinaries drops, from results, the Binaries whose securityContext
// the caller may not read: a second check of what binaryContexts left out
// of the search (and the only one for history and includes).
func (s *Service) readableBinaries(ctx context.Context, p auth.Principal, rs []Resource) ([]Resource, error) {
	out := rs[:0]
	for _, r := range rs {
		err := s.binaryReadable(ctx, p, r)
		switch {
		case err == nil:
			out = append(out, r)
		case errors.Is(err, fault.ErrForbidden):
		default:
			return nil, err
		}
	}
	return out, nil
}
