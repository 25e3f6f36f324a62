package z3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/fault"
)

// Action is what a presigned URL allows: exactly one of them.
type Action string

const (
	Upload   Action = "upload"   // PUT the bytes
	Download Action = "download" // GET (or HEAD) the bytes
)

// SignedPrefix is the path under Ward's public URL where presigned URLs
// point: /z3/objects/{project}/{bucket}/{path}.
const SignedPrefix = "/z3/objects/"

// Target is what a verified presigned URL names.
type Target struct {
	ProjectID, Bucket, Path string
	Action                  Action
	Expires                 time.Time
}

// signer makes and checks presigned URLs. The signature is an HMAC-SHA256
// over the action, project, bucket, path and expiry; the content type is not
// signed, because the SDK's uploadFile sends whatever type the Blob has.
type signer struct {
	key  []byte
	base string // public URL, no trailing slash
}

func (s signer) mac(t Target) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(string(t.Action) + "\n" + t.ProjectID + "\n" + t.Bucket + "\n" + t.Path + "\n" + strconv.FormatInt(t.Expires.Unix(), 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// url returns the absolute presigned URL for t.
func (s signer) url(t Target) string {
	segs := strings.Split(t.Path, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	q := url.Values{}
	q.Set("action", string(t.Action))
	q.Set("expires", strconv.FormatInt(t.Expires.Unix(), 10))
	q.Set("signature", s.mac(t))
	return s.base + SignedPrefix + url.PathEscape(t.ProjectID) + "/" + url.PathEscape(t.Bucket) + "/" + strings.Join(segs, "/") + "?" + q.Encode()
}

// verify checks a presigned request: project, bucket and path come from the
// (decoded) URL path, the rest from the query. want is the action the HTTP
// method implies. Every failure is a 403 that says what is wrong.
func (s signer) verify(projectID, bucket, path string, q url.Values, want Action, now time.Time) (Target, error) {
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || q.Get("signature") == "" || q.Get("action") == "" {
		return Target{}, fault.Forbidden("this is not a valid presigned Z3 URL (expires, action or signature missing): ask Ward for a new one")
	}
	t := Target{ProjectID: projectID, Bucket: bucket, Path: path, Action: Action(q.Get("action")), Expires: time.Unix(exp, 0)}
	if !hmac.Equal([]byte(s.mac(t)), []byte(q.Get("signature"))) {
		return Target{}, fault.Forbidden("the presigned URL's signature does not match: it was altered or made for another object")
	}
	if !now.Before(t.Expires) {
		return Target{}, fault.Forbidden("the presigned URL expired at %s: ask Ward for a new one", t.Expires.UTC().Format(time.RFC3339))
	}
	if t.Action != want {
		verb := map[Action]string{Upload: "uploading (PUT)", Download: "downloading (GET)"}
		return Target{}, fault.Forbidden("this presigned URL is for %s only, not %s", verb[t.Action], verb[want])
	}
	return t, nil
}
