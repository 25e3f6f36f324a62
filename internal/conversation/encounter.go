package conversation

import (
	"fmt"
	"slices"
	"strings"
)

// The extension Oystehr puts on a conversation's Encounter (the SDK's
// getConversationIdFromEncounter reads addressString from it).
const (
	ExtensionURL  = "https://extensions.fhir.zapehr.com/encounter-virtual-service-pre-release"
	channelSystem = "https://fhir.zapehr.com/virtual-service-type"
	// memberURL marks a chat member inside the extension: Ward keeps
	// membership in the record, not in a side table.
	memberURL = "chatParticipant"
)

// virtualService returns the conversation extension of an Encounter, nil
// if it has none.
func virtualService(enc map[string]any) map[string]any {
	exts, _ := enc["extension"].([]any)
	for _, e := range exts {
		if m, ok := e.(map[string]any); ok && m["url"] == ExtensionURL {
			return m
		}
	}
	return nil
}

// conversationID is the addressString of the extension, "" if absent.
func conversationID(enc map[string]any) string {
	vs := virtualService(enc)
	if vs == nil {
		return ""
	}
	subs, _ := vs["extension"].([]any)
	for _, s := range subs {
		if m, ok := s.(map[string]any); ok && m["url"] == "addressString" {
			v, _ := m["valueString"].(string)
			return v
		}
	}
	return ""
}

// members lists the chat members recorded in the extension.
func members(enc map[string]any) []string {
	vs := virtualService(enc)
	if vs == nil {
		return nil
	}
	var out []string
	subs, _ := vs["extension"].([]any)
	for _, s := range subs {
		m, ok := s.(map[string]any)
		if !ok || m["url"] != memberURL {
			continue
		}
		if ref, ok := m["valueReference"].(map[string]any); ok {
			if r, ok := ref["reference"].(string); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// setMembers replaces the recorded chat members.
func setMembers(enc map[string]any, list []string) {
	vs := virtualService(enc)
	subs, _ := vs["extension"].([]any)
	kept := subs[:0:0]
	for _, s := range subs {
		if m, ok := s.(map[string]any); ok && m["url"] == memberURL {
			continue
		}
		kept = append(kept, s)
	}
	for _, r := range list {
		kept = append(kept, map[string]any{"url": memberURL, "valueReference": map[string]any{"reference": r}})
	}
	vs["extension"] = kept
}

// addExtension records the conversation on a created Encounter.
func addExtension(enc map[string]any, kind, address string) {
	exts, _ := enc["extension"].([]any)
	exts = slices.DeleteFunc(exts, func(e any) bool {
		m, ok := e.(map[string]any)
		return ok && m["url"] == ExtensionURL
	})
	enc["extension"] = append(exts, map[string]any{"url": ExtensionURL, "extension": []any{
		map[string]any{"url": "channelType", "valueCoding": map[string]any{"system": channelSystem, "code": kind}},
		map[string]any{"url": "addressString", "valueString": address},
	}})
}

// participants lists the Encounter's participant individuals.
func participants(enc map[string]any) []string {
	var out []string
	ps, _ := enc["participant"].([]any)
	for _, p := range ps {
		m, _ := p.(map[string]any)
		ind, _ := m["individual"].(map[string]any)
		if r, ok := ind["reference"].(string); ok {
			out = append(out, r)
		}
	}
	return out
}

// checkProfileRef accepts "Patient/x", "Practitioner/x", "RelatedPerson/x".
func checkProfileRef(ref string) error {
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || id == "" || len(ref) > 100 || strings.ContainsAny(id, "/?#") ||
		(typ != "Patient" && typ != "Practitioner" && typ != "RelatedPerson") {
		return fmt.Errorf("participantReference %q must be Patient/<id>, Practitioner/<id> or RelatedPerson/<id>", ref)
	}
	return nil
}

// encounterID reads "Encounter/<id>".
func encounterID(ref string) (string, bool) {
	id, ok := strings.CutPrefix(ref, "Encounter/")
	return id, ok && id != "" && !strings.ContainsAny(id, "/?#")
}
