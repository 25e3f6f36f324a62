package policy

import (
	"fmt"
	"strings"
)

// actionPattern is a parsed rule action: "*", "Service:*" or "Service:Name".
type actionPattern struct {
	all     bool
	service string // for "Service:*" and concrete actions
	id      int    // the concrete action (aliases normalised), or -1
}

// parseAction parses one rule action; warning notes an alias.
func parseAction(s string) (a actionPattern, problem, warning string) {
	a.id = -1
	if s == "*" {
		a.all = true
		return a, "", ""
	}
	svc, name, ok := strings.Cut(s, ":")
	if !ok || svc == "" || name == "" {
		return a, fmt.Sprintf("%q is not an action: write \"Service:Action\" (e.g. \"FHIR:Read\"), \"Service:*\" or \"*\"", s), ""
	}
	if known, sugg := knownService(svc); !known {
		if sugg != "" {
			return a, fmt.Sprintf("unknown service %q in action %q: did you mean \"%s:%s\"?", svc, s, sugg, name), ""
		}
		return a, fmt.Sprintf("unknown service %q in action %q: services are %s", svc, s, strings.Join(serviceNames(), ", ")), ""
	}
	a.service = svc
	if name == "*" {
		return a, "", ""
	}
	if strings.Contains(name, "*") {
		return a, fmt.Sprintf("%q: * must stand for the whole action name; write \"%s:*\" or name the action", s, svc), ""
	}
	id, ok := actionIDs[s]
	if !ok {
		return a, unknownActionMessage(svc, s), ""
	}
	a.id = id
	canon := allActions[id]
	a.service = canon.Service
	if canon.FullName() != s {
		warning = fmt.Sprintf("%q is an alias of %q; Ward grants and enforces %q", s, canon.FullName(), canon.FullName())
	}
	return a, "", warning
}

func unknownActionMessage(svc, s string) string {
	var names []string
	for _, id := range serviceActs[svc] {
		n := allActions[id].FullName()
		if strings.EqualFold(n, s) {
			return fmt.Sprintf("unknown action %q: did you mean %q?", s, n)
		}
		names = append(names, allActions[id].Name)
	}
	for alias := range actionAliases {
		if strings.EqualFold(alias, s) {
			return fmt.Sprintf("unknown action %q: did you mean %q?", s, alias)
		}
	}
	return fmt.Sprintf("unknown action %q: %s actions are %s", s, svc, strings.Join(names, ", "))
}

// expand lists the concrete action ids the pattern stands for.
func (a actionPattern) expand() []int {
	switch {
	case a.all:
		ids := make([]int, len(allActions))
		for i := range ids {
			ids[i] = i
		}
		return ids
	case a.id >= 0:
		return []int{a.id}
	}
	return serviceActs[a.service]
}

// covers reports whether the pattern includes the concrete action id.
func (a actionPattern) covers(id int) bool {
	return a.all || a.id == id || (a.id < 0 && a.service == allActions[id].Service)
}

// matches reports whether concrete action act may apply to resources of
// pattern p: same service (or p is "*") and, when p names a type, a type the
// action acts on. Minimum scope is checked separately, by Validate.
func matches(act Action, p pattern) bool {
	if p.service == "" {
		return true
	}
	if p.service != act.Service {
		return false
	}
	return p.typ == "" || appliesTo(act, p.typ)
}
