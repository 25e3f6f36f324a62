package z3

import (
	"strings"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/z3/bucketname"
)

// MaxKeyBytes bounds an object path, as S3 does (1,024 bytes of UTF-8).
const MaxKeyBytes = 1024

// ValidBucket checks a user-chosen bucket name against Oystehr's rule
// (package bucketname): 1-255 letters, digits, '.', '-' and '_', case
// sensitive, no "..", no leading '_' (Ward's own buckets). Names are unique
// within a project.
func ValidBucket(name string) error {
	if msg := bucketname.Problem(name); msg != "" {
		return fault.Invalid("%s", msg)
	}
	return nil
}

// ValidSignedBucket checks the bucket of a presigned URL: a user's bucket,
// or one of Ward's own ("_" and a valid name, as "_zambda-code"), to which
// Ward presigns uploads itself.
func ValidSignedBucket(name string) error {
	if Internal(name) {
		if bucketname.Problem(name[1:]) != "" {
			return fault.Invalid("bucket %q is not one of Ward's own", clip(name))
		}
		return nil
	}
	return ValidBucket(name)
}

// CleanPath normalises an object path: a leading "/" is dropped; the path
// must be valid UTF-8 of at most MaxKeyBytes, with no control characters,
// no backslashes, no "." or ".." segment and no empty segment ("a//b").
// folder reports a trailing "/" (the path names a folder, not an object).
func CleanPath(p string) (clean string, folder bool, err error) {
	p = strings.TrimPrefix(p, "/")
	if len(p) > MaxKeyBytes {
		return "", false, fault.Invalid("object path is %d bytes; the limit is %d", len(p), MaxKeyBytes)
	}
	if !utf8.ValidString(p) {
		return "", false, fault.Invalid("object path is not valid UTF-8")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return "", false, fault.Invalid("object path contains a control character (U+%04X)", r)
		}
		if r == '\\' {
			return "", false, fault.Invalid(`object path contains "\": use "/" between folders`)
		}
	}
	folder = strings.HasSuffix(p, "/")
	body := strings.TrimSuffix(p, "/")
	if body == "" {
		return "", folder || p == "", nil
	}
	for _, seg := range strings.Split(body, "/") {
		switch seg {
		case "":
			return "", false, fault.Invalid(`object path %q has an empty segment ("//")`, clip(p))
		case ".", "..":
			return "", false, fault.Invalid("object path %q has a %q segment; paths are absolute within the bucket", clip(p), seg)
		}
	}
	return p, folder, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
