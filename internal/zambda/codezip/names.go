package codezip

import (
	"strings"
	"unicode/utf8"
)

// cleanName checks an entry name and returns it relative to the root,
// without "." segments, empty segments or a trailing slash; dir reports a
// trailing slash; "" is the root ("./"). It refuses anything that could point outside the root
// or that a file system would read differently.
func cleanName(name string) (clean string, dir bool, err error) {
	shown := clip(name)
	switch {
	case name == "":
		return "", false, bad(name, nil, "the zip has an entry with an empty name")
	case len(name) > maxName:
		return "", false, bad(name, nil, "%q is longer than %d bytes", shown, maxName)
	case !utf8.ValidString(name):
		return "", false, bad(name, nil, "%q is not valid UTF-8; make the zip with a tool that stores UTF-8 names", shown)
	}
	for _, r := range name {
		switch {
		case r == '\\':
			return "", false, bad(name, nil, "%q has a backslash; zip paths use /", shown)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return "", false, bad(name, nil, "%q has a control character in its name", shown)
		}
	}
	if strings.HasPrefix(name, "/") || len(name) >= 2 && name[1] == ':' && (name[0]|0x20 >= 'a' && name[0]|0x20 <= 'z') {
		return "", false, bad(name, nil, "%q is an absolute path; zip entries must be relative", shown)
	}
	dir = strings.HasSuffix(name, "/")
	var segs []string
	for _, seg := range strings.Split(name, "/") {
		switch {
		case seg == "..":
			return "", false, bad(name, nil, "%q climbs out of the folder with \"..\"", shown)
		case seg == "" || seg == ".":
			continue // "a//b", "./a": tools write these; they mean "a/b", "a"
		case len(seg) > 255:
			return "", false, bad(name, nil, "%q has a name part longer than 255 bytes", shown)
		}
		segs = append(segs, seg)
	}
	return strings.Join(segs, "/"), dir, nil
}

// maxName bounds an entry's path: far beyond real code, and it bounds the
// folder depth (and so the work per file).
const maxName = 1024
