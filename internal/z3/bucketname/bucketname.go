// Package bucketname holds the rule for Z3 bucket names, shared by the Z3
// API (internal/z3) and access-policy resources (internal/policy), so the
// two never disagree. It is pure: no I/O, no dependencies.
//
// Oystehr publishes no rule beyond "bucket names must be unique", and its
// own buckets break S3's 3-63 lowercase rule: "<projectId>-TelemedRecordings"
// (capitals, 54 characters) and "<projectId>-invoiceable-patients-reports"
// (66 characters). Ward therefore takes the relaxed S3 rule that SDKs such
// as botocore still accept (^[a-zA-Z0-9._-]{1,255}$), minus what could name
// something else:
//
//   - "." and ".." and any "..": a bucket is one URL path segment, which
//     HTTP routers and clients clean; "a..b" is refused too, as S3 does.
//   - a leading "_": reserved for Ward's own buckets ("_zambda-code"), which
//     users must not be able to create or name in a policy.
//
// Names are case-sensitive: "X-Reports" and "x-reports" are two buckets.
// A name is only ever a database key; the bytes live under blob keys of
// the form "<projectID>/<uuid>", so no name, whatever its case or length,
// becomes a file name or an S3 key.
package bucketname

import "fmt"

// MaxLen is the longest bucket name, in bytes (every allowed byte is ASCII).
const MaxLen = 255

// Rule is the rule in words, for error messages.
const Rule = "bucket names are 1-255 characters: letters, digits, '.', '-' and '_', not starting with '_' and without '..'"

// Problem says what is wrong with name, or "" if it is a valid bucket name.
// The name is quoted and clipped in the answer, so hostile input (control
// characters, megabytes) stays readable in an error message.
func Problem(name string) string {
	switch {
	case name == "":
		return "the bucket name is empty: " + Rule
	case len(name) > MaxLen:
		return fmt.Sprintf("bucket %q is %d characters: %s", clip(name), len(name), Rule)
	case name[0] == '_':
		return fmt.Sprintf("bucket %q: names starting with '_' are reserved for Ward", clip(name))
	}
	for i := 0; i < len(name); i++ {
		if !allowed(name[i]) {
			return fmt.Sprintf("bucket %q has %q at byte %d: %s", clip(name), clip(name[i:i+1]), i, Rule)
		}
		if name[i] == '.' && i+1 < len(name) && name[i+1] == '.' {
			return fmt.Sprintf("bucket %q: two dots in a row are not allowed", clip(name))
		}
	}
	if name == "." {
		return `bucket ".": a bucket name cannot be "." or ".."`
	}
	return ""
}

func allowed(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
