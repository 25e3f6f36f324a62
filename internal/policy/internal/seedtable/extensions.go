package seedtable

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
)

// ExtRow is one row of the extension table (catalog/extensions.txt): an
// action Oystehr accepts that its published table (seed 002) lacks, with
// where we learnt of it.
type ExtRow struct {
	Row
	Source string // "sdk <version> <class>.<method>[, ...]", "docs <URL>" or "ottehr <path>"
	Note   string // why the resource type or scope is what it is, when that was our choice
}

// ExtHeader starts the extension table.
const ExtHeader = "Service | Action | Resource Type | Description | Minimum Scope | Dependency | Source | Note |"

var (
	sdkSource    = regexp.MustCompile(`^sdk [0-9]+\.[0-9]+\.[0-9]+ [A-Za-z0-9]+\.[A-Za-z0-9]+(, [A-Za-z0-9]+\.[A-Za-z0-9]+)*$`)
	docsSource   = regexp.MustCompile(`^docs https://[^\s|]+$`)
	ottehrSource = regexp.MustCompile(`^ottehr [^\s|]+$`)
	nameCell     = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// ParseExtensions reads the extension table. Unlike the seed its cells are
// positional: Minimum Scope holds only "", "*", "service-root" or
// "subfolder", Dependency only "Service:Action", and every row names its
// source in one of the three forms above. Lines before the header starting
// with "#" are comments.
func ParseExtensions(text string) ([]ExtRow, error) {
	var rows []ExtRow
	inTable := false
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if !inTable {
			switch {
			case s == ExtHeader:
				inTable = true
			case s != "" && !strings.HasPrefix(s, "#"):
				return nil, fmt.Errorf("line %d: expected a comment or the header %q", line, ExtHeader)
			}
			continue
		}
		if strings.HasPrefix(s, "---") {
			continue
		}
		if s == "" {
			break
		}
		cells := splitCells(s)
		if len(cells) != 8 {
			return nil, fmt.Errorf("line %d: %d cells, want 8: %q", line, len(cells), s)
		}
		r := ExtRow{Row: Row{Service: cells[0], Action: cells[1], ResourceType: cells[2], Description: unquote(cells[3]),
			MinScope: cells[4], DependsOn: cells[5]}, Source: cells[6], Note: cells[7]}
		switch {
		case !nameCell.MatchString(r.Service) || !nameCell.MatchString(r.Action) || !nameCell.MatchString(r.ResourceType):
			return nil, fmt.Errorf("line %d: service, action and resource type must be plain names: %q", line, s)
		case r.MinScope != "" && !scopes[r.MinScope]:
			return nil, fmt.Errorf("line %d: minimum scope %q is not *, service-root or subfolder", line, r.MinScope)
		case r.DependsOn != "" && !dependencyCell.MatchString(r.DependsOn):
			return nil, fmt.Errorf("line %d: dependency %q is not Service:Action", line, r.DependsOn)
		case !sdkSource.MatchString(r.Source) && !docsSource.MatchString(r.Source) && !ottehrSource.MatchString(r.Source):
			return nil, fmt.Errorf(`line %d: source %q is not "sdk <version> <class>.<method>", "docs <URL>" or "ottehr <path>"`, line, r.Source)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !inTable {
		return nil, fmt.Errorf("no extension table header found")
	}
	return rows, nil
}

// SDKMethods lists the "<class>.<method>" names of an sdk source, and its
// version; ok is false for other sources.
func SDKMethods(source string) (version string, methods []string, ok bool) {
	if !sdkSource.MatchString(source) {
		return "", nil, false
	}
	rest := strings.TrimPrefix(source, "sdk ")
	version, list, _ := strings.Cut(rest, " ")
	return version, strings.Split(list, ", "), true
}
