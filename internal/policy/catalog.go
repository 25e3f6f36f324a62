package policy

import (
	"sort"
	"strings"
)

// Scope is an action's minimum scope: the narrowest resource pattern a rule
// may grant it on.
type Scope string

const (
	// ScopeAny: the action may name one resource ("FHIR:Patient:123").
	ScopeAny Scope = ""
	// ScopeWildcard: the id segment must be "*" or omitted ("App:User:*").
	ScopeWildcard Scope = "*"
	// ScopeServiceRoot: only the whole service ("Z3:*", "Z3" or "*").
	ScopeServiceRoot Scope = "service-root"
	// ScopeSubfolder: a Z3 bucket or folder, never one object (see z3.go).
	ScopeSubfolder Scope = "subfolder"
)

// Action is one row of the action library.
type Action struct {
	Service      string
	Name         string
	ResourceType string // a type of Service, or "{FhirResource}" for any FHIR type
	Description  string
	MinScope     Scope
	DependsOn    string // "Service:Action" that must be granted too, or ""
	// Source is where the row comes from: SeedSource, or for an extension
	// "sdk <version> <class>.<method>[, ...]", "docs <URL>" or "ottehr <path>"
	// (catalog/extensions.txt explains each).
	Source string
}

// SeedSource is the Source of the rows of Oystehr's published action table.
const SeedSource = "seed 002"

// FullName is the action as policies write it, "Service:Name".
func (a Action) FullName() string { return a.Service + ":" + a.Name }

// actionAliases are names the SDK's doc comments use for seed actions. They
// are synonyms, normalised to the seed name, not second permissions: a rule
// granting App:CreateM2MClient grants exactly IAM:CreateM2MClient.
var actionAliases = map[string]string{
	"App:ListAllM2MClients":     "IAM:ListAllM2MClients",
	"App:CreateM2MClient":       "IAM:CreateM2MClient",
	"App:GetM2MClient":          "IAM:GetM2MClient",
	"App:UpdateM2MClient":       "IAM:UpdateM2MClient",
	"App:DeleteM2MClient":       "IAM:DeleteM2MClient",
	"App:RotateM2MClientSecret": "IAM:RotateM2MClientSecret",
}

// extraTypes lists documented exceptions where an action applies to a second
// resource type. The seed's prose says App:CreateUser applies to
// App:Application while its table says User, and the product spec requires
// "App:CreateUser on App:Application:* accepted": so both types are accepted,
// and a grant on either matches a request on either.
var extraTypes = map[string]string{
	"App:CreateUser": "Application",
}

// Tables built once from the catalogs and never changed afterwards.
var (
	allActions   []Action            // seed rows, then extensions (catalog_gen.go); the index is the action id
	actionIDs    map[string]int      // canonical names and aliases -> action id
	serviceActs  map[string][]int    // service -> its action ids
	serviceTypes map[string][]string // service -> its resource types, sorted
)

func init() {
	allActions = append(append([]Action(nil), seedCatalog[:]...), extensionCatalog[:]...)
	actionIDs = make(map[string]int, len(allActions)+len(actionAliases))
	serviceActs = map[string][]int{}
	types := map[string]map[string]bool{}
	for id, a := range allActions {
		actionIDs[a.FullName()] = id
		serviceActs[a.Service] = append(serviceActs[a.Service], id)
		if types[a.Service] == nil {
			types[a.Service] = map[string]bool{}
		}
		if a.ResourceType == fhirResourcePlaceholder {
			for _, t := range FHIRResourceTypes {
				types[a.Service][t] = true
			}
		} else {
			types[a.Service][a.ResourceType] = true
		}
		if t, ok := extraTypes[a.FullName()]; ok {
			types[a.Service][t] = true
		}
	}
	for alias, canon := range actionAliases {
		actionIDs[alias] = actionIDs[canon]
	}
	serviceTypes = map[string][]string{}
	for svc, set := range types {
		for t := range set {
			serviceTypes[svc] = append(serviceTypes[svc], t)
		}
		sort.Strings(serviceTypes[svc])
	}
}

// Catalog returns the seed's action library, row for row (a copy).
func Catalog() []Action { return append([]Action(nil), seedCatalog[:]...) }

// Extensions returns the actions Ward accepts beyond the seed, because
// Oystehr does (SDK, docs or Ottehr: see Source), as a copy.
func Extensions() []Action { return append([]Action(nil), extensionCatalog[:]...) }

// Aliases returns the accepted synonyms and the seed action each stands for.
func Aliases() map[string]string {
	m := make(map[string]string, len(actionAliases))
	for k, v := range actionAliases {
		m[k] = v
	}
	return m
}

// LookupAction finds an action by its "Service:Name", accepting aliases: the
// result is always the canonical action.
func LookupAction(name string) (Action, bool) {
	id, ok := actionIDs[name]
	if !ok {
		return Action{}, false
	}
	return allActions[id], true
}

// appliesTo reports whether action a may act on resources of type typ.
func appliesTo(a Action, typ string) bool {
	if a.ResourceType == typ || extraTypes[a.FullName()] == typ {
		return true
	}
	return a.ResourceType == fhirResourcePlaceholder && fhirTypeSet[typ]
}

// typesOf lists the types action a applies to, for messages and indexing.
func typesOf(a Action) []string {
	if a.ResourceType == fhirResourcePlaceholder {
		return serviceTypes[a.Service]
	}
	if t, ok := extraTypes[a.FullName()]; ok {
		return []string{a.ResourceType, t}
	}
	return []string{a.ResourceType}
}

// knownService finds svc, or a case-insensitive match to suggest.
func knownService(svc string) (ok bool, suggestion string) {
	if _, ok := serviceActs[svc]; ok {
		return true, ""
	}
	for s := range serviceActs {
		if strings.EqualFold(s, svc) {
			return false, s
		}
	}
	return false, ""
}

// serviceNames lists the known services, sorted, for messages.
func serviceNames() []string {
	var names []string
	for s := range serviceActs {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

// Origin says, for people, where a name not in the seed comes from ("" for a
// seed action): "@oystehr/sdk 4.2.6 lab.routeCreate", a docs URL, or Ottehr.
func (a Action) Origin() string {
	if a.Source == SeedSource {
		return ""
	}
	kind, rest, _ := strings.Cut(a.Source, " ")
	switch kind {
	case "sdk":
		return "@oystehr/sdk " + rest
	case "docs":
		return "Oystehr's documentation, " + rest
	case "ottehr":
		return "the access policies Ottehr deploys to Oystehr (masslight/ottehr " + rest + ")"
	}
	return a.Source
}
