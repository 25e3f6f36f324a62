package z3

import (
	"strings"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/fault"
)

// MaxKeyBytes bounds an object path, as S3 does (1,024 bytes of UTF-8).
const MaxKeyBytes = 1024

// ValidBucket checks a user-chosen bucket name. The rule is S3's: 3-63
// characters, lowercase letters, digits, hyphens and dots, starting and
// ending with a letter or digit. Names are unique within a project.
func ValidBucket(name string) error {
	const rule = "bucket names are 3-63 characters: lowercase letters, digits, hyphens and dots, starting and ending with a letter or digit"
	if len(name) < 3 || len(name) > 63 {
		return fault.Invalid("bucket %q: %s", clip(name), rule)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '-' && c != '.' || !alnum && (i == 0 || i == len(name)-1) {
			return fault.Invalid("bucket %q: %s", clip(name), rule)
		}
	}
	if strings.Contains(name, "..") {
		return fault.Invalid("bucket %q: two dots in a row are not allowed", name)
	}
	return nil
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
