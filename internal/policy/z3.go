package policy

import (
	"fmt"
	"strings"

	"github.com/wardhealth/ward/internal/z3/bucketname"
)

// Z3 resources are paths, not Service:Type:id (contract section 6):
//
//	Z3:*  Z3  *          the service root: every bucket and object, and the
//	                     root requests of CreateBucket and ListBuckets ("Z3:*")
//	Z3:<bucket>          the bucket itself (DeleteBucket) and its top-level
//	                     listing ("Z3:<bucket>/"), not the objects in it
//	Z3:<bucket>/<path>   objects: path segments split on "/", "*" inside a
//	                     segment matches any run of characters but "/", a "**"
//	                     segment matches any number of segments (zero too),
//	                     and a trailing "/" names a folder ("Z3:b/dir/")
//	Z3:*/<path>          the same path in every bucket
//
// Bucket names follow Z3's rule (package bucketname): 1-255 letters, digits,
// '.', '-' and '_', case sensitive, as in "<projectId>-TelemedRecordings".
//
// The colon form "Z3:bucket:path" (used by the SDK's comments) is accepted
// and normalised to "Z3:bucket/path", with a warning naming the canonical
// form; the slash form is the one Ward writes.
//
// Minimum scope "subfolder" (ListObjects): the pattern must name a folder or
// more, never one object. Accepted: the root, a bucket, or a path whose last
// segment is empty ("dir/"), "*" or "**". Rejected: "Z3:b/dir/file.csv" and
// "Z3:b/dir/*.csv". ListObjects requests name the folder with a trailing
// slash: "Z3:b/dir/" (and "Z3:b/" for the top level).

type z3Kind uint8

const (
	z3Root   z3Kind = iota // everything in Z3
	z3Bucket               // one bucket (bucket never "*" here: "Z3:*" is the root)
	z3Path                 // objects under bucket ("*" = any bucket) matching segs
)

type z3Pattern struct {
	kind   z3Kind
	bucket string
	segs   []string
}

// maxDoubleStars bounds the backtracking of "**" matching.
const maxDoubleStars = 3

func parseZ3(rest string, hasRest bool) (p z3Pattern, problem, warning string) {
	full := "Z3:" + rest
	if !hasRest || rest == "*" {
		return z3Pattern{kind: z3Root}, "", ""
	}
	if rest == "" {
		return p, `"Z3:" has an empty bucket: write "Z3:*" for all of Z3 or "Z3:<bucket>"`, ""
	}
	if b, path, ok := strings.Cut(rest, ":"); ok {
		if strings.Contains(b, "/") || strings.Contains(path, ":") {
			return p, fmt.Sprintf("%q mixes separators: write \"Z3:<bucket>/<path>\"", full), ""
		}
		rest = b + "/" + path
		warning = fmt.Sprintf("%q is the colon form; Ward reads it as %q, the canonical form", full, "Z3:"+rest)
	}
	bucket, path, hasPath := strings.Cut(rest, "/")
	if bucket != "*" {
		if msg := bucketProblem(bucket); msg != "" {
			return p, fmt.Sprintf("%q: %s", full, msg), warning
		}
	}
	if !hasPath {
		return z3Pattern{kind: z3Bucket, bucket: bucket}, "", warning
	}
	p = z3Pattern{kind: z3Path, bucket: bucket, segs: strings.Split(path, "/")}
	stars := 0
	for i, seg := range p.segs {
		switch {
		case seg == "" && i < len(p.segs)-1:
			return p, fmt.Sprintf("%q has an empty path segment (\"//\"): write one \"/\" between folders", full), warning
		case seg == "**":
			stars++
		case strings.Contains(seg, "**"):
			return p, fmt.Sprintf("%q: ** must be a whole path segment, as in \"a/**/b\"", full), warning
		}
	}
	if stars > maxDoubleStars {
		return p, fmt.Sprintf("%q has more than %d ** segments", full, maxDoubleStars), warning
	}
	return p, "", warning
}

// bucketProblem says what is wrong with a bucket name, or "".
func bucketProblem(b string) string {
	if strings.Contains(b, "*") {
		return "a bucket is a name or *, not a pattern such as " + fmt.Sprintf("%q", b)
	}
	return bucketname.Problem(b)
}

func (p z3Pattern) String() string {
	switch p.kind {
	case z3Root:
		return "*"
	case z3Bucket:
		return p.bucket
	}
	return p.bucket + "/" + strings.Join(p.segs, "/")
}

// isFolder reports whether p names a folder or more (minimum scope subfolder).
func (p z3Pattern) isFolder() bool {
	if p.kind != z3Path {
		return true
	}
	last := p.segs[len(p.segs)-1]
	return last == "" || last == "*" || last == "**"
}

// globMatch matches a request path (after "bucket/") against pattern
// segments without allocating. A "**" segment matches zero or more whole
// segments; the number of "**" is bounded by maxDoubleStars at validation.
func globMatch(segs []string, path string) bool {
	for i, seg := range segs {
		if seg == "**" {
			rest := segs[i+1:]
			if len(rest) == 0 {
				return true
			}
			for {
				if globMatch(rest, path) {
					return true
				}
				j := strings.IndexByte(path, '/')
				if j < 0 {
					return false
				}
				path = path[j+1:]
			}
		}
		j := strings.IndexByte(path, '/')
		cur := path
		if j >= 0 {
			cur = path[:j]
		}
		if !segMatch(seg, cur) {
			return false
		}
		if i == len(segs)-1 {
			return j < 0 // the pattern ends: the path must end too
		}
		if j < 0 {
			return false // the path ends before the pattern
		}
		path = path[j+1:]
	}
	return false
}

// segMatch matches one segment against a pattern where "*" is any run of
// characters (the usual linear backtracking wildcard match).
func segMatch(pat, s string) bool {
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pat) && pat[p] == '*':
			star, mark = p, i
			p++
		case p < len(pat) && pat[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}
