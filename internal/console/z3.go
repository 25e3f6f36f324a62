package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Z3: buckets (create, delete), a folder's objects and sub-folders, upload
// (the form's file, sent server-side through the SDK's presigned upload
// URL, like a zambda's zip), download (a redirect to a presigned download
// URL on Ward itself) and delete. Names and paths are the API's to check:
// the console escapes every segment it puts in a URL.

type bucketRow struct {
	Name    string
	Created string
}

type z3BucketsPage struct {
	base
	Buckets            []bucketRow
	CanCreate, CanDrop bool
	Name               string
	Done               string
	Error, ErrorIn     string // ErrorIn: "name", "delete"
}

func (c *Console) z3Buckets(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadBuckets(r, sess)
	if err != nil {
		return err
	}
	page.Done = r.URL.Query().Get("done")
	return c.render(w, http.StatusOK, "z3-buckets", page)
}

func (c *Console) loadBuckets(r *http.Request, sess session) (z3BucketsPage, error) {
	ctx := r.Context()
	var list []struct {
		Name         string    `json:"name"`
		CreationDate time.Time `json:"creationDate"`
	}
	if err := c.call(ctx, sess, http.MethodGet, "/v1/z3", nil, &list); err != nil {
		return z3BucketsPage{}, err
	}
	page := z3BucketsPage{base: c.base(sess, "Z3 storage", "z3"),
		CanCreate: c.can(ctx, sess, "Z3:CreateBucket", "Z3:*"), CanDrop: c.can(ctx, sess, "Z3:DeleteBucket", "Z3:*")}
	for _, b := range list {
		page.Buckets = append(page.Buckets, bucketRow{Name: b.Name, Created: b.CreationDate.UTC().Format("2006-01-02 15:04")})
	}
	sort.Slice(page.Buckets, func(i, j int) bool { return page.Buckets[i].Name < page.Buckets[j].Name })
	return page, nil
}

func (c *Console) z3CreateBucket(w http.ResponseWriter, r *http.Request, sess session) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	err := c.call(r.Context(), sess, http.MethodPut, "/v1/z3/"+url.PathEscape(name), nil, nil)
	return c.bucketAnswer(w, r, sess, err, "name", name, "Bucket "+name+" created.")
}

func (c *Console) z3DeleteBucket(w http.ResponseWriter, r *http.Request, sess session) error {
	name := r.PathValue("bucket")
	err := c.call(r.Context(), sess, http.MethodDelete, "/v1/z3/"+url.PathEscape(name), nil, nil)
	return c.bucketAnswer(w, r, sess, err, "delete", "", "Bucket "+name+" deleted.")
}

func (c *Console) bucketAnswer(w http.ResponseWriter, r *http.Request, sess session, err error, errorIn, name, done string) error {
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	if ae == nil {
		return seeOther(w, r, "/console/z3?"+url.Values{"done": {done}}.Encode())
	}
	page, lerr := c.loadBuckets(r, sess)
	if lerr != nil {
		return lerr
	}
	page.Name, page.Error, page.ErrorIn = name, sentence(ae.Message), errorIn
	if errorIn == "name" && !page.CanCreate || errorIn == "delete" && !page.CanDrop {
		page.ErrorIn = "top" // the control is not shown: the refusal is
	}
	return c.render(w, ae.Status, "z3-buckets", page)
}

type z3Entry struct {
	Name, Link, Path string
	DeleteAction     string // escaped here: a name may hold "?" or "#"
	Folder           bool
	Size             int64
	Modified         string
}

type z3FolderPage struct {
	base
	Bucket, Folder       string // Folder: "" or ending in "/"
	UploadAction         string
	PresignAction        string // z3drop.js asks it for each dropped file's upload URL
	Crumbs               []crumb
	Entries              []z3Entry
	CanUpload, CanDelete bool
	Done                 string
	Error, ErrorIn       string // ErrorIn: "upload", "delete", "top"
}

type crumb struct{ Name, Link string }

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func folderLink(bucket, folder string) string {
	return "/console/z3/" + url.PathEscape(bucket) + "/" + escapePath(folder)
}

func (c *Console) z3Folder(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadFolder(r, sess, r.PathValue("bucket"), r.PathValue("path"))
	if err != nil {
		return err
	}
	page.Done = r.URL.Query().Get("done")
	return c.render(w, http.StatusOK, "z3-folder", page)
}

func (c *Console) loadFolder(r *http.Request, sess session, bucket, folder string) (z3FolderPage, error) {
	ctx := r.Context()
	if folder != "" && !strings.HasSuffix(folder, "/") {
		folder += "/"
	}
	var list []struct {
		Key          string    `json:"key"`
		LastModified time.Time `json:"lastModified"`
		Size         int64     `json:"size"`
	}
	if err := c.call(ctx, sess, http.MethodGet, "/v1/z3/"+url.PathEscape(bucket)+"/"+escapePath(folder)+"?direct=true", nil, &list); err != nil {
		return z3FolderPage{}, err
	}
	page := z3FolderPage{base: c.base(sess, "Z3 "+bucket+"/"+folder, "z3"), Bucket: bucket, Folder: folder,
		CanUpload: c.can(ctx, sess, "Z3:PutObject", "Z3:"+bucket+"/"+folder+"*"),
		CanDelete: c.can(ctx, sess, "Z3:DeleteObject", "Z3:"+bucket+"/"+folder+"*")}
	page.UploadAction = "/console/z3-upload/" + url.PathEscape(bucket) + "/" + escapePath(folder)
	page.PresignAction = "/console/z3-presign/" + url.PathEscape(bucket) + "/" + escapePath(folder)
	page.Crumbs = append(page.Crumbs, crumb{bucket, folderLink(bucket, "")})
	acc := ""
	for _, seg := range strings.Split(strings.TrimSuffix(folder, "/"), "/") {
		if seg == "" {
			continue
		}
		acc += seg + "/"
		page.Crumbs = append(page.Crumbs, crumb{seg, folderLink(bucket, acc)})
	}
	for _, e := range list {
		p := strings.TrimPrefix(e.Key, bucket+"/")
		name := strings.TrimPrefix(p, folder)
		ent := z3Entry{Name: name, Path: p, Size: e.Size}
		if strings.HasSuffix(p, "/") {
			ent.Folder, ent.Link = true, folderLink(bucket, p)
		} else {
			ent.Link = "/console/z3-download/" + url.PathEscape(bucket) + "/" + escapePath(p)
			ent.DeleteAction = "/console/z3-delete/" + url.PathEscape(bucket) + "/" + escapePath(p)
			ent.Modified = e.LastModified.UTC().Format("2006-01-02 15:04:05")
		}
		page.Entries = append(page.Entries, ent)
	}
	return page, nil
}

// presign asks the API for a presigned URL of one object ("upload" or
// "download") and returns its path and query on Ward.
func (c *Console) presign(r *http.Request, sess session, bucket, path, action string) (string, error) {
	var out struct {
		SignedURL string `json:"signedUrl"`
	}
	if err := c.call(r.Context(), sess, http.MethodPost, "/v1/z3/"+url.PathEscape(bucket)+"/"+escapePath(path),
		map[string]string{"action": action}, &out); err != nil {
		return "", err
	}
	u, err := url.Parse(out.SignedURL)
	if err != nil {
		return "", fmt.Errorf("console: presigned URL: %w", err)
	}
	return u.RequestURI(), nil
}

// z3Download sends the browser to a presigned download URL (on Ward, so
// the CSP's same origin holds); the URL lives for the API's URL lifetime.
func (c *Console) z3Download(w http.ResponseWriter, r *http.Request, sess session) error {
	to, err := c.presign(r, sess, r.PathValue("bucket"), r.PathValue("path"), "download")
	if err != nil {
		return err
	}
	return seeOther(w, r, to)
}

func (c *Console) z3Upload(w http.ResponseWriter, r *http.Request, sess session) error {
	bucket, folder := r.PathValue("bucket"), r.PathValue("path")
	if folder != "" && !strings.HasSuffix(folder, "/") {
		folder += "/"
	}
	err := c.uploadObject(r, sess, bucket, folder)
	return c.folderAnswer(w, r, sess, err, bucket, folder, "upload", "Uploaded.")
}

func (c *Console) uploadObject(r *http.Request, sess session, bucket, folder string) error {
	if r.MultipartForm == nil || len(r.MultipartForm.File["file"]) != 1 {
		return &apiError{Status: http.StatusBadRequest, Message: "choose one file to upload"}
	}
	fh := r.MultipartForm.File["file"][0]
	name := fh.Filename
	if i := strings.LastIndexAny(name, `/\\`); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		return &apiError{Status: http.StatusBadRequest, Message: "the file has no name"}
	}
	to, err := c.presign(r, sess, bucket, folder+name, "upload")
	if err != nil {
		return err
	}
	f, err := fh.Open()
	if err != nil {
		return fmt.Errorf("console upload: %w", err)
	}
	defer f.Close()
	ct := fh.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	status, body, err := c.do(r.Context(), http.MethodPut, to, http.Header{"Content-Type": {ct}}, f)
	if err != nil {
		return err
	}
	if status >= 300 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &e) != nil || e.Message == "" {
			e.Message = http.StatusText(status)
		}
		return &apiError{Status: status, Message: e.Message}
	}
	return nil
}

func (c *Console) z3DeleteObject(w http.ResponseWriter, r *http.Request, sess session) error {
	bucket, path := r.PathValue("bucket"), r.PathValue("path")
	err := c.call(r.Context(), sess, http.MethodDelete, "/v1/z3/"+url.PathEscape(bucket)+"/"+escapePath(path), nil, nil)
	folder := ""
	if i := strings.LastIndex(strings.TrimSuffix(path, "/"), "/"); i >= 0 {
		folder = path[:i+1]
	}
	return c.folderAnswer(w, r, sess, err, bucket, folder, "delete", "Deleted "+path+".")
}

func (c *Console) folderAnswer(w http.ResponseWriter, r *http.Request, sess session, err error, bucket, folder, errorIn, done string) error {
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	if ae == nil {
		return seeOther(w, r, folderLink(bucket, folder)+"?"+url.Values{"done": {done}}.Encode())
	}
	page, lerr := c.loadFolder(r, sess, bucket, folder)
	if lerr != nil {
		return lerr
	}
	page.Error, page.ErrorIn = sentence(ae.Message), errorIn
	if errorIn == "upload" && !page.CanUpload || errorIn == "delete" && !page.CanDelete {
		page.ErrorIn = "top"
	}
	return c.render(w, ae.Status, "z3-folder", page)
}
