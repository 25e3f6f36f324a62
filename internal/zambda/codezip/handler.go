package codezip

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
)

// nodeExts are the files Lambda's Node runtime loads a handler module from.
var nodeExts = [...]string{".js", ".mjs", ".cjs"}

// CheckHandler checks that the code unpacked in dir has what the runtime
// starts: for nodejs*, the handler's module file (handler "index.index"
// needs index.js, index.mjs or index.cjs; "" means "index.index"); for
// provided*, an executable regular file named bootstrap at the root. The
// *Error says what is missing and, when it can, where the file is instead.
func CheckHandler(dir, runtime, handler string) error {
	m, err := scan(dir)
	if err != nil {
		return err
	}
	return m.CheckHandler(runtime, handler)
}

// CheckHandler is CheckHandler on what Unpack wrote, without reading the
// disk again.
func (m Manifest) CheckHandler(runtime, handler string) error {
	files := map[string]Entry{}
	for _, e := range m.Entries {
		files[e.Name] = e
	}
	switch {
	case strings.HasPrefix(runtime, "nodejs"):
		return m.checkNode(files, handler)
	case runtime == "provided" || strings.HasPrefix(runtime, "provided."):
		e, ok := files["bootstrap"]
		switch {
		case !ok:
			return bad("bootstrap", nil, "the zip has no bootstrap file at its root; a %s function is an executable named bootstrap%s", runtime, m.hint("bootstrap"))
		case e.Dir:
			return bad("bootstrap", nil, "bootstrap is a folder in the zip; it must be the executable file itself")
		case !e.Exec:
			return bad("bootstrap", nil, "bootstrap is not executable: set its executable bit before zipping (chmod +x bootstrap); zips made on Windows drop it")
		}
		return nil
	}
	return bad("", nil, "runtime %q has no code check; use nodejs20.x, nodejs22.x, provided.al2023 or provided", runtime)
}

func (m Manifest) checkNode(files map[string]Entry, handler string) error {
	if handler == "" {
		handler = "index.index"
	}
	// As Lambda reads it: the module is up to the first dot after the last
	// slash ("src/app.handlers.get" is module src/app, function handlers.get).
	slash := strings.LastIndexByte(handler, '/')
	dot := strings.IndexByte(handler[slash+1:], '.')
	if dot <= 0 || strings.HasSuffix(handler, ".") {
		return bad("", nil, "the handler %q must be file.function, e.g. index.index", clip(handler))
	}
	mod := handler[:slash+1+dot]
	if !fs.ValidPath(mod) {
		return bad("", nil, "the handler %q must name a file inside the zip", clip(handler))
	}
	for _, ext := range nodeExts {
		if e, ok := files[mod+ext]; ok && !e.Dir {
			return nil
		}
	}
	where := ""
	if !strings.Contains(mod, "/") {
		where = " at its root"
	}
	return bad(mod+".js", nil, "the zip has no %s.js (nor .mjs or .cjs)%s, which the handler %s needs%s", mod, where, clip(handler), m.hint(path.Base(mod)+".js", path.Base(mod)+".mjs", path.Base(mod)+".cjs"))
}

// hint says where a file of one of those names sits instead (the shallowest
// one), or what else may be wrong, for the end of a message.
func (m Manifest) hint(names ...string) string {
	best := ""
	for _, e := range m.Entries {
		for _, n := range names {
			if !e.Dir && path.Base(e.Name) == n && (best == "" || strings.Count(e.Name, "/") < strings.Count(best, "/")) {
				best = e.Name
			}
		}
	}
	top := map[string]bool{}
	for _, e := range m.Entries {
		first, _, nested := strings.Cut(e.Name, "/")
		top[first] = top[first] || nested || e.Dir
	}
	var folder string
	if len(top) == 1 {
		for name, isDir := range top {
			if isDir {
				folder = name
			}
		}
	}
	switch {
	case best != "" && folder != "":
		return fmt.Sprintf("; found: %s. Zip the contents of the %s folder, not the folder itself", best, folder)
	case best != "":
		return "; found: " + best
	case folder != "":
		return fmt.Sprintf("; the zip holds only the folder %s: zip its contents, not the folder itself", folder)
	case len(m.Entries) == 0:
		return "; the zip is empty"
	}
	return ""
}

// maxScan bounds the walk of a directory CheckHandler did not unpack.
const maxScan = 100000

var errStop = errors.New("stop")

// scan lists dir as Unpack's manifest would: regular files and folders.
func scan(dir string) (Manifest, error) {
	var m Manifest
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if len(m.Entries) >= maxScan {
			return errStop
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		e := Entry{Name: filepath.ToSlash(rel), Dir: d.IsDir()}
		if !d.IsDir() {
			if !d.Type().IsRegular() {
				return nil // not from Unpack: ignore
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			e.Exec, e.Size = fi.Mode().Perm()&0o111 != 0, fi.Size()
			m.Files++
			m.UnpackedBytes += e.Size
		}
		m.Entries = append(m.Entries, e)
		return nil
	})
	if err != nil && err != errStop {
		return m, fmt.Errorf("codezip: %w", err)
	}
	return m, nil
}
