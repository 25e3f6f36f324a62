package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/z3"
)

// z3Routes are the Project API's /z3 endpoints and the presigned object URLs.
func (s *Server) z3Routes() []route {
	if s.z3 == nil {
		return nil
	}
	return []route{
		{method: "GET", path: "/v1/z3", action: "Z3:ListBuckets", resource: fixed("Z3:*"), handle: s.listBuckets},
		{method: "PUT", path: "/v1/z3/{bucket}", action: "Z3:CreateBucket", resource: fixed("Z3:*"), handle: s.createBucket},
		{method: "DELETE", path: "/v1/z3/{bucket}", authz: z3BucketAuthz("Z3:DeleteBucket"), handle: s.deleteBucket},
		{method: "GET", path: "/v1/z3/{bucket}/{path...}", authz: z3ListAuthz, handle: s.listObjects},
		{method: "POST", path: "/v1/z3/{bucket}/{path...}", authz: z3PresignAuthz, handle: s.presign},
		{method: "DELETE", path: "/v1/z3/{bucket}/{path...}", authz: z3DeleteAuthz, handle: s.deleteObject},
		// The presigned URL's signature is the credential (checked in the handler).
		{method: "PUT", path: z3.SignedPrefix + "{project}/{bucket}/{path...}", public: true, handle: s.signedPut},
		{method: "GET", path: z3.SignedPrefix + "{project}/{bucket}/{path...}", public: true, handle: s.signedGet},
		{method: "HEAD", path: z3.SignedPrefix + "{project}/{bucket}/{path...}", public: true, handle: s.signedGet},
	}
}

// z3Target reads and checks the bucket and path of a /v1/z3 request. Ward's
// internal buckets ("_...") fail the name check, so no request reaches them.
func z3Target(r *http.Request) (bucket, path string, folder bool, err error) {
	bucket = r.PathValue("bucket")
	if err := z3.ValidBucket(bucket); err != nil {
		return "", "", false, err
	}
	path, folder, err = z3.CleanPath(r.PathValue("path"))
	return bucket, path, folder, err
}

func z3BucketAuthz(action string) func(r *http.Request) (string, string, error) {
	return func(r *http.Request) (string, string, error) {
		b := r.PathValue("bucket")
		if err := z3.ValidBucket(b); err != nil {
			return "", "", err
		}
		return action, "Z3:" + b, nil
	}
}

// z3ListAuthz: listing names a folder, "Z3:b/" for the top level.
func z3ListAuthz(r *http.Request) (string, string, error) {
	b, p, folder, err := z3Target(r)
	if err != nil {
		return "", "", err
	}
	if p != "" && !folder {
		p += "/"
	}
	return "Z3:ListObjects", "Z3:" + b + "/" + p, nil
}

type presignInput struct {
	Action   string `json:"action"`
	IsFolder bool   `json:"isFolder"`
}

// peekJSON decodes the body into v and puts the bytes back for the handler.
func peekJSON(r *http.Request, v any) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fault.Invalid("request body: %s", fault.JSONProblem(err))
	}
	return nil
}

// z3PresignAuthz: the action in the body picks Z3:PutObject or Z3:GetObject
// on exactly that object.
func z3PresignAuthz(r *http.Request) (string, string, error) {
	b, p, folder, err := z3Target(r)
	if err != nil {
		return "", "", err
	}
	var in presignInput
	if err := peekJSON(r, &in); err != nil {
		return "", "", err
	}
	if p == "" || folder {
		return "", "", fault.Invalid("a presigned URL names one object, not a folder: add a file name to %q", b+"/"+p)
	}
	switch z3.Action(in.Action) {
	case z3.Upload:
		return "Z3:PutObject", "Z3:" + b + "/" + p, nil
	case z3.Download:
		return "Z3:GetObject", "Z3:" + b + "/" + p, nil
	}
	return "", "", fault.Invalid(`"action" must be "upload" or "download"`)
}

type deleteInput struct {
	Children *[]string `json:"children"`
}

// z3DeleteAuthz: a file needs Z3:DeleteObject on it; a folder (a "children"
// array in the body, or a path ending in "/") on the folder, and the
// handler then checks every object in it.
func z3DeleteAuthz(r *http.Request) (string, string, error) {
	b, p, folder, err := z3Target(r)
	if err != nil {
		return "", "", err
	}
	var in deleteInput
	if err := peekJSON(r, &in); err != nil {
		return "", "", err
	}
	if (in.Children != nil || folder) && p != "" && !folder {
		p += "/"
	}
	return "Z3:DeleteObject", "Z3:" + b + "/" + p, nil
}

func (s *Server) listBuckets(w http.ResponseWriter, r *http.Request, c call) error {
	bs, err := s.z3.ListBuckets(r.Context(), c.p.ProjectID)
	if err != nil {
		return err
	}
	type out struct {
		ID           string    `json:"id"`
		Name         string    `json:"name"`
		CreationDate time.Time `json:"creationDate"`
	}
	list := make([]out, 0, len(bs))
	for _, b := range bs {
		if z3.Internal(b.Name) {
			continue
		}
		list = append(list, out{ID: b.ID, Name: b.Name, CreationDate: b.CreatedAt})
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) createBucket(w http.ResponseWriter, r *http.Request, c call) error {
	b, err := s.z3.CreateBucket(r.Context(), c.p.ProjectID, r.PathValue("bucket"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": b.ID, "name": b.Name})
	return nil
}

func (s *Server) deleteBucket(w http.ResponseWriter, r *http.Request, c call) error {
	if err := s.z3.DeleteBucket(r.Context(), c.p.ProjectID, r.PathValue("bucket")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, c call) error {
	b, p, folder, err := z3Target(r)
	if err != nil {
		return err
	}
	if p != "" && !folder {
		p += "/"
	}
	direct := false
	if v := r.URL.Query().Get("direct"); v != "" {
		if direct, err = strconv.ParseBool(v); err != nil {
			return fault.Invalid("direct must be true or false, not %q", v)
		}
	}
	list, err := s.z3.List(r.Context(), c.p.ProjectID, b, p, direct)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) presign(w http.ResponseWriter, r *http.Request, c call) error {
	b, p, _, err := z3Target(r)
	if err != nil {
		return err
	}
	var in presignInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	u, exp, err := s.z3.Presign(r.Context(), c.p.ProjectID, b, p, z3.Action(in.Action))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"signedUrl": u, "expiresAt": exp.UTC().Format(time.RFC3339)})
	return nil
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, c call) error {
	b, p, folder, err := z3Target(r)
	if err != nil {
		return err
	}
	var in deleteInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Children == nil && !folder && p != "" {
		if err := s.z3.Delete(r.Context(), c.p.ProjectID, b, p); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if p != "" && !folder {
		p += "/"
	}
	for _, k := range *orEmpty(in.Children) {
		if !strings.HasPrefix(k, b+"/"+p) && !strings.HasPrefix(k, p) {
			return fault.Invalid("child %q is not inside the folder %q", clipKey(k), b+"/"+p)
		}
	}
	// Every object in the folder needs its own Z3:DeleteObject.
	_, err = s.z3.DeleteFolder(r.Context(), c.p.ProjectID, b, p, func(path string) error {
		_, err := s.iam.Authorize(r.Context(), c.p, "Z3:DeleteObject", "Z3:"+b+"/"+path)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func orEmpty(p *[]string) *[]string {
	if p == nil {
		return &[]string{}
	}
	return p
}

func clipKey(k string) string {
	if len(k) > 80 {
		return k[:80] + "..."
	}
	return k
}

// signedTarget checks a presigned request's URL for want.
func (s *Server) signedTarget(r *http.Request, want z3.Action) (z3.Target, error) {
	path, _, err := z3.CleanPath(r.PathValue("path"))
	if err != nil {
		return z3.Target{}, err
	}
	return s.z3.Verify(r.PathValue("project"), r.PathValue("bucket"), path, r.URL.Query(), want)
}

// signedPut stores the request body as the object (any content type).
func (s *Server) signedPut(w http.ResponseWriter, r *http.Request, _ call) error {
	t, err := s.signedTarget(r, z3.Upload)
	if err != nil {
		return err
	}
	o, err := s.z3.Put(r.Context(), t.ProjectID, t.Bucket, t.Path, r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"`+o.SHA256+`"`)
	w.WriteHeader(http.StatusOK)
	return nil
}

// signedGet streams the object back, with Range and conditional requests.
func (s *Server) signedGet(w http.ResponseWriter, r *http.Request, _ call) error {
	t, err := s.signedTarget(r, z3.Download)
	if err != nil {
		return err
	}
	o, err := s.z3.Get(r.Context(), t.ProjectID, t.Bucket, t.Path)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", o.ContentType)
	w.Header().Set("ETag", `"`+o.SHA256+`"`)
	w.Header().Set("x-amz-checksum-sha256-hex", o.SHA256)
	rd := &objectReader{ctx: r.Context(), o: o}
	defer rd.Seek(0, io.SeekStart) // closes the blob reader a range left open
	http.ServeContent(w, r, "", o.UpdatedAt, rd)
	return nil
}

// objectReader is the io.ReadSeeker http.ServeContent needs, reading the
// blob lazily from the current offset.
type objectReader struct {
	ctx context.Context
	o   z3.Object
	off int64
	rc  io.ReadCloser
}

func (or *objectReader) Read(p []byte) (int, error) {
	if or.off >= or.o.Size {
		return 0, io.EOF
	}
	if or.rc == nil {
		rc, err := or.o.Read(or.ctx, or.off, -1)
		if err != nil {
			return 0, err
		}
		or.rc = rc
	}
	n, err := or.rc.Read(p)
	or.off += int64(n)
	if err == io.EOF && or.off < or.o.Size {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.EOF) || or.off >= or.o.Size {
		_ = or.rc.Close()
		or.rc = nil
	}
	return n, err
}

func (or *objectReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += or.off
	case io.SeekEnd:
		offset += or.o.Size
	}
	if offset < 0 {
		return 0, errors.New("z3: negative seek")
	}
	if offset != or.off && or.rc != nil {
		_ = or.rc.Close()
		or.rc = nil
	}
	or.off = offset
	return offset, nil
}
