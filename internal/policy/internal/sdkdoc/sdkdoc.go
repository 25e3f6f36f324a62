// Package sdkdoc extracts the access policy requirements that @oystehr/sdk
// documents on each method ("Access Policy Action: `Lab:SubmitOrder`" then
// "Access Policy Resource: `Lab:Order`") and reads and writes the committed
// list of them (catalog/sdk_actions.txt). It reads no files itself: the
// policy tests hand it the SDK's sources.
package sdkdoc

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
)

// Row is one action a method's comment names, with the resources named for it.
type Row struct {
	Method    string   // "<class>.<method>", the class as the Oystehr client names it (oystehr.lab)
	Action    string   // "Lab:SubmitOrder"
	Resources []string // as written, e.g. "Lab:Order", "FHIR:ChargeItem:*", "Z3:BucketName:ObjectPath"; may be empty
}

var (
	// The comments write "Access Policy Action:", "Action:", "Actions:" and
	// "Access Policy Actions:"; likewise for resources.
	actionLine   = regexp.MustCompile(`^\*\s*(?:Access Policy )?Actions?:(.*)$`)
	resourceLine = regexp.MustCompile(`^\*\s*(?:Access Policy )?Resources?:(.*)$`)
	actionName   = regexp.MustCompile(`[A-Za-z0-9]+:[A-Za-z0-9]+`)
	// Resources are backquoted, sometimes several in one pair of quotes or
	// with a stray quote ("`FHIR:ChargeItem:*,`FHIR:PaymentReconciliation:*`").
	resourceName = regexp.MustCompile(`[A-Za-z0-9*]+(?::[A-Za-z0-9*]+)+`)
	methodLine   = regexp.MustCompile(`^(?:async\s+)?([A-Za-z_$][A-Za-z0-9_$]*)\s*\(`)
)

// Extract lists, in source order, the actions named in the doc comments of
// one class file (dist/esm/resources/classes/<class>.js). An action line
// takes the next resource line of the same comment; one with none before the
// next action line keeps no resources.
func Extract(class, js string) []Row {
	var rows []Row
	var block []string
	inComment, pending := false, false
	sc := bufio.NewScanner(strings.NewReader(js))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		switch {
		case inComment:
			if strings.HasPrefix(s, "*/") {
				inComment, pending = false, true
				continue
			}
			block = append(block, s)
		case strings.HasPrefix(s, "/**"):
			inComment, block = true, block[:0]
		case pending && s != "":
			pending = false
			if m := methodLine.FindStringSubmatch(s); m != nil {
				rows = append(rows, fromComment(class+"."+m[1], block)...)
			}
		}
	}
	return rows
}

func fromComment(method string, lines []string) []Row {
	var rows []Row
	var actions []string
	flush := func(resources []string) {
		for _, a := range actions {
			rows = append(rows, Row{Method: method, Action: a, Resources: resources})
		}
		actions = nil
	}
	for _, s := range lines {
		if m := actionLine.FindStringSubmatch(s); m != nil {
			flush(nil)
			actions = actionName.FindAllString(m[1], -1)
		} else if m := resourceLine.FindStringSubmatch(s); m != nil && actions != nil {
			flush(resourceName.FindAllString(m[1], -1))
		}
	}
	flush(nil)
	return rows
}

// Format writes the list committed as catalog/sdk_actions.txt.
func Format(version string, rows []Row) string {
	var b strings.Builder
	b.WriteString("# The access policy action and resources that each method's doc comment names in\n")
	b.WriteString("# @oystehr/sdk (dist/esm/resources/classes/<class>.js), one line per action:\n")
	b.WriteString("# <class>.<method> TAB <action> TAB <resources, comma-separated>.\n")
	b.WriteString("# Written by `go test ./internal/policy -run TestSDKActionList -update` (after\n")
	b.WriteString("# `cd e2e && npm ci`); the test fails while this list differs from the SDK. Do not edit.\n")
	fmt.Fprintf(&b, "sdk %s\n", version)
	for _, r := range rows {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", r.Method, r.Action, strings.Join(r.Resources, ", "))
	}
	return b.String()
}

// Parse reads what Format wrote.
func Parse(text string) (version string, rows []Row, err error) {
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "sdk "):
			version = strings.TrimPrefix(line, "sdk ")
		default:
			f := strings.Split(line, "\t")
			if len(f) != 3 || version == "" {
				return "", nil, fmt.Errorf("line %d: want <class>.<method> TAB <action> TAB <resources> after the sdk line: %q", n+1, line)
			}
			r := Row{Method: f[0], Action: f[1]}
			if f[2] != "" {
				r.Resources = strings.Split(f[2], ", ")
			}
			rows = append(rows, r)
		}
	}
	if version == "" {
		return "", nil, fmt.Errorf("no sdk version line")
	}
	return version, rows, nil
}
