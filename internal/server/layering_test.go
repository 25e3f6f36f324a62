package server

import (
	"bytes"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The layering DESIGN.md asks for, kept true by scripts/test.sh (which
// .ci/run runs): nothing in internal/ imports server, and server reaches
// the database only through the domain packages.

const (
	modulePath  = "github.com/wardhealth/ward"
	serverPath  = modulePath + "/internal/server"
	storePath   = modulePath + "/internal/store"
	internalAll = modulePath + "/internal/..."
)

// goList runs the go command's list with args and returns its output.
func goList(t *testing.T, args ...string) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(goCmd, append([]string{"list"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestNothingImportsServer: server is the HTTP edge; a package below it
// that imported it would loop back (tests included).
func TestNothingImportsServer(t *testing.T) {
	out := goList(t, "-f", "{{.ImportPath}}\t{{join .Imports \" \"}} {{join .TestImports \" \"}} {{join .XTestImports \" \"}}", internalAll)
	var found []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		pkg, imports, _ := strings.Cut(line, "\t")
		if pkg == serverPath {
			continue // its own external tests
		}
		if slices.Contains(strings.Fields(imports), serverPath) {
			found = append(found, pkg)
		}
	}
	if len(found) > 0 {
		t.Errorf("these packages import %s: %s", serverPath, strings.Join(found, ", "))
	}
}

// TestServerHoldsNoStore: server may use store's data types (audit events,
// filters, errors) but never a *store.Store or *store.Tx: it calls the
// database only through iam, oauth, fhir, zambda, z3. Checked on types, not
// names, so no alias, field or value returned from elsewhere gets past it:
// every expression and declared object of server's non-test code is
// type-checked (against the export data go list builds) and none may be
// a store handle.
func TestServerHoldsNoStore(t *testing.T) {
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(goList(t, "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", serverPath)), "\n") {
		path, file, _ := strings.Cut(line, "\t")
		exports[path] = file
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range strings.Fields(goList(t, "-f", "{{join .GoFiles \" \"}}", serverPath)) {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, os.ErrNotExist
		}
		return os.Open(file)
	})
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{}}
	if _, err := (&types.Config{Importer: imp}).Check(serverPath, fset, files, info); err != nil {
		t.Fatalf("type-check %s: %v", serverPath, err)
	}
	var found []string
	report := func(pos token.Pos, typ types.Type) {
		if storeHandle(typ) {
			found = append(found, fset.Position(pos).String()+": "+typ.String())
		}
	}
	for expr, tv := range info.Types {
		report(expr.Pos(), tv.Type)
	}
	for id, obj := range info.Defs {
		if obj != nil {
			report(id.Pos(), obj.Type())
		}
	}
	if len(found) > 0 {
		slices.Sort(found)
		t.Errorf("server holds or calls the store directly (go through a domain package):\n%s", strings.Join(found, "\n"))
	}
}

// storeHandle reports whether t is store.Store or store.Tx, or a pointer to one.
func storeHandle(t types.Type) bool {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := t.(*types.Named)
	if !ok || n.Obj().Pkg() == nil || n.Obj().Pkg().Path() != storePath {
		return false
	}
	return n.Obj().Name() == "Store" || n.Obj().Name() == "Tx"
}
