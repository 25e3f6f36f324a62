package codezip

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestCheckHandler(t *testing.T) {
	for _, tc := range []struct {
		name, runtime, handler string
		zip                    []entry
		msg                    string // "" for success
	}{
		{"index.js", "nodejs20.x", "index.index", []entry{{name: "index.js", data: "x"}}, ""},
		{"index.mjs", "nodejs22.x", "index.index", []entry{{name: "index.mjs", data: "x"}}, ""},
		{"index.cjs", "nodejs22.x", "index.index", []entry{{name: "index.cjs", data: "x"}}, ""},
		{"default handler", "nodejs20.x", "", []entry{{name: "index.js", data: "x"}}, ""},
		{"nested module", "nodejs20.x", "src/app.handlers.get", []entry{{name: "src/app.js", data: "x"}}, ""},
		{"in a subfolder", "nodejs20.x", "index.index", []entry{{name: "src/index.js", data: "x"}, {name: "package.json", data: "{}"}},
			"the zip has no index.js (nor .mjs or .cjs) at its root, which the handler index.index needs; found: src/index.js"},
		{"zipped the folder", "nodejs20.x", "index.index", []entry{{name: "dist/index.mjs", data: "x"}, {name: "dist/lib/index.js", data: "x"}},
			"found: dist/index.mjs. Zip the contents of the dist folder, not the folder itself"},
		{"only a folder", "nodejs20.x", "index.index", []entry{{name: "build/main.js", data: "x"}},
			"the zip holds only the folder build: zip its contents, not the folder itself"},
		{"empty", "nodejs20.x", "index.index", nil, "the zip is empty"},
		{"folder named index.js", "nodejs20.x", "index.index", []entry{{name: "index.js/", mode: fs.ModeDir | 0o755}}, "no index.js"},
		{"nested missing", "nodejs20.x", "src/app.get", []entry{{name: "app.js", data: "x"}}, "the zip has no src/app.js (nor .mjs or .cjs), which the handler src/app.get needs; found: app.js"},
		{"bad handler", "nodejs20.x", "index", []entry{{name: "index.js", data: "x"}}, `the handler "index" must be file.function`},
		{"handler outside", "nodejs20.x", "../x.y", []entry{{name: "index.js", data: "x"}}, "must name a file inside the zip"},

		{"bootstrap", "provided.al2023", "", []entry{{name: "bootstrap", data: "x", mode: 0o755}}, ""},
		{"bootstrap provided", "provided", "index.index", []entry{{name: "bootstrap", data: "x", mode: 0o700}}, ""},
		{"bootstrap not executable", "provided.al2023", "", []entry{{name: "bootstrap", data: "x", mode: 0o644}}, "bootstrap is not executable: set its executable bit"},
		{"bootstrap from Windows", "provided.al2023", "", []entry{{name: "bootstrap", data: "x"}}, "not executable"},
		{"bootstrap elsewhere", "provided.al2023", "", []entry{{name: "target/bootstrap", data: "x", mode: 0o755}},
			"the zip has no bootstrap file at its root; a provided.al2023 function is an executable named bootstrap; found: target/bootstrap. Zip the contents of the target folder"},
		{"bootstrap folder", "provided", "", []entry{{name: "bootstrap/main", data: "x", mode: 0o755}}, "bootstrap is a folder"},

		{"unknown runtime", "python3.13", "index.index", []entry{{name: "index.py", data: "x"}}, `runtime "python3.13" has no code check`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, m, err := unpack(t, makeZip(t, tc.zip...), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			fromDisk := CheckHandler(dir, tc.runtime, tc.handler)
			fromManifest := m.CheckHandler(tc.runtime, tc.handler)
			for _, err := range []error{fromDisk, fromManifest} {
				if tc.msg == "" {
					if err != nil {
						t.Errorf("got %v", err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.msg) || !errors.Is(err, ErrInvalid) {
					t.Errorf("got %v, want %q", err, tc.msg)
				}
			}
		})
	}
	if err := CheckHandler("/nonexistent/ward", "nodejs20.x", ""); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("missing dir: %v, want a server error", err)
	}
}
