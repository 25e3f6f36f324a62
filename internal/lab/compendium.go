package lab

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// A compendium item is an ActivityDefinition the project loads with FHIR
// (docs/labs.md): identifier {system: LabSystem(labGuid), value: item
// code}, version = the compendium version, title = the item name,
// publisher = the lab's name, code.coding = the item code and its LOINC,
// CPT codes as CPTExtension extensions, and the AOE Questionnaire
// contained, named by an AOEExtension reference.
const (
	labSystemPrefix = "urn:ward:lab:"
	CPTExtension    = "urn:ward:lab:cpt"
	AOEExtension    = "urn:ward:lab:aoe"
	loincSystem     = "http://loinc.org"
)

// LabSystem is the identifier system of a lab's item codes.
func LabSystem(labGUID string) string { return labSystemPrefix + labGUID }

// maxScan bounds the items one search reads before filtering in memory
// (LOINC and CPT codes, the latest version): a compendium larger than
// this must be searched by lab, code or name.
const maxScan = 5000

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type activityDefinition struct {
	ID         string `json:"id"`
	Identifier []struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
	Version   string `json:"version"`
	Title     string `json:"title"`
	Name      string `json:"name"`
	Publisher string `json:"publisher"`
	Code      struct {
		Coding []coding `json:"coding"`
	} `json:"code"`
	Extension []struct {
		URL            string  `json:"url"`
		ValueCoding    *coding `json:"valueCoding"`
		ValueReference *struct {
			Reference string `json:"reference"`
		} `json:"valueReference"`
	} `json:"extension"`
	Contained []json.RawMessage `json:"contained"`
}

// Item is one orderable item in the SDK's shape.
type Item struct {
	Lab  ItemLab  `json:"lab"`
	Item ItemInfo `json:"item"`
}

// ItemLab is the SDK's orderable item lab.
type ItemLab struct {
	LabGUID           string `json:"labGuid"`
	LabName           string `json:"labName,omitempty"`
	CompendiumVersion string `json:"compendiumVersion"`
}

// ItemInfo is the SDK's orderable item item.
type ItemInfo struct {
	ItemCode   string          `json:"itemCode"`
	ItemLoinc  string          `json:"itemLoinc,omitempty"`
	ItemName   string          `json:"itemName"`
	UniqueName string          `json:"uniqueName"`
	CPTCodes   []CPT           `json:"cptCodes"`
	AOE        json.RawMessage `json:"aoe,omitempty"`
}

// CPT is one billing code of an item.
type CPT struct {
	CPTCode           string `json:"cptCode"`
	ServiceUnitsCount int    `json:"serviceUnitsCount"`
}

// ItemPage is orderableItemList's answer.
type ItemPage struct {
	OrderableItems []Item `json:"orderableItems"`
	Metadata       struct {
		NextCursor *string `json:"nextCursor"`
	} `json:"metadata"`
}

// item reads an ActivityDefinition; ok is false when it is not a lab item.
func item(content []byte) (Item, activityDefinition, bool) {
	var ad activityDefinition
	if err := json.Unmarshal(content, &ad); err != nil {
		return Item{}, ad, false
	}
	var it Item
	for _, id := range ad.Identifier {
		if g, ok := strings.CutPrefix(id.System, labSystemPrefix); ok && g != "" && id.Value != "" {
			it.Lab.LabGUID, it.Item.ItemCode = g, id.Value
			break
		}
	}
	if it.Lab.LabGUID == "" {
		return Item{}, ad, false
	}
	it.Lab.LabName, it.Lab.CompendiumVersion = ad.Publisher, ad.Version
	it.Item.ItemName = ad.Title
	if it.Item.ItemName == "" {
		it.Item.ItemName = ad.Name
	}
	it.Item.UniqueName = it.Item.ItemCode + " " + it.Item.ItemName
	for _, c := range ad.Code.Coding {
		if c.System == loincSystem && it.Item.ItemLoinc == "" {
			it.Item.ItemLoinc = c.Code
		}
	}
	it.Item.CPTCodes = []CPT{}
	for _, e := range ad.Extension {
		switch {
		case e.URL == CPTExtension && e.ValueCoding != nil:
			it.Item.CPTCodes = append(it.Item.CPTCodes, CPT{CPTCode: e.ValueCoding.Code, ServiceUnitsCount: 1})
		case e.URL == AOEExtension && e.ValueReference != nil:
			it.Item.AOE = contained(ad, e.ValueReference.Reference)
		}
	}
	return it, ad, true
}

// contained returns the contained resource ref ("#id") names, as stored.
func contained(ad activityDefinition, ref string) json.RawMessage {
	id, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil
	}
	for _, c := range ad.Contained {
		var head struct {
			ResourceType, ID string
		}
		if json.Unmarshal(c, &head) == nil && head.ResourceType == "Questionnaire" && head.ID == id {
			return c
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// OrderableItems searches the project's compendia (their latest versions)
// with the SDK's parameters: labIds, itemCodes, itemNames (contains),
// itemLoincs, itemCptCodes (each a comma-separated list, any matching),
// sort, sortOrder, limit (default 25, at most 100) and cursor.
func (s *Service) OrderableItems(ctx context.Context, projectID string, params url.Values) (ItemPage, error) {
	limit := 25
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return ItemPage{}, fault.Invalid("limit must be a positive number, not %q", v)
		}
		limit = min(n, 100)
	}
	offset := 0
	if v := params.Get("cursor"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return ItemPage{}, fault.Invalid("cursor %q is not one this server gave", v)
		}
		offset = n
	}
	labs, codes, names := splitList(params.Get("labIds")), splitList(params.Get("itemCodes")), splitList(params.Get("itemNames"))
	loincs, cpts := splitList(params.Get("itemLoincs")), splitList(params.Get("itemCptCodes"))
	q := url.Values{"status": {"active"}}
	// The index narrows by lab and code (identifier) or by name; the
	// rest is filtered here.
	var ids []string
	for _, l := range labs {
		if len(codes) == 0 {
			ids = append(ids, LabSystem(l)+"|")
		}
		for _, c := range codes {
			ids = append(ids, LabSystem(l)+"|"+c)
		}
	}
	if len(labs) == 0 {
		ids = codes
	}
	if len(ids) > 0 {
		q.Set("identifier", strings.Join(escapeAll(ids), ","))
	}
	if len(names) > 0 {
		q.Set("title:contains", strings.Join(escapeAll(names), ","))
	}
	sq, err := search.ParseQuery("ActivityDefinition", q, false)
	if err != nil {
		return ItemPage{}, fault.Invalid("orderable item search: %v", err)
	}
	rows, _, err := s.store.Search(ctx, store.SearchRequest{ProjectID: projectID, Query: sq, Count: maxScan, Now: s.now()})
	if err != nil {
		return ItemPage{}, err
	}
	var all []Item
	for _, r := range rows {
		it, _, ok := item(r.Content)
		if !ok || !anyOf(loincs, it.Item.ItemLoinc) || !anyCPT(cpts, it.Item.CPTCodes) || len(labs) > 0 && !contains(labs, it.Lab.LabGUID) {
			continue
		}
		all = append(all, it)
	}
	all = latest(all)
	sortItems(all, params.Get("sort"), params.Get("sortOrder") == "desc")
	page := ItemPage{OrderableItems: []Item{}}
	if offset < len(all) {
		page.OrderableItems = all[offset:min(offset+limit, len(all))]
	}
	if offset+limit < len(all) {
		next := strconv.Itoa(offset + limit)
		page.Metadata.NextCursor = &next
	}
	return page, nil
}

// escapeAll escapes search values (a comma in a name is not a list).
func escapeAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `$`, `\$`).Replace(v)
	}
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func anyOf(want []string, v string) bool { return len(want) == 0 || contains(want, v) }

func anyCPT(want []string, have []CPT) bool {
	if len(want) == 0 {
		return true
	}
	for _, c := range have {
		if contains(want, c.CPTCode) {
			return true
		}
	}
	return false
}

// latest keeps each lab's newest compendium version (numbers compared as
// numbers, else as text).
func latest(items []Item) []Item {
	newest := map[string]string{}
	for _, it := range items {
		if v, ok := newest[it.Lab.LabGUID]; !ok || versionLess(v, it.Lab.CompendiumVersion) {
			newest[it.Lab.LabGUID] = it.Lab.CompendiumVersion
		}
	}
	out := items[:0]
	for _, it := range items {
		if it.Lab.CompendiumVersion == newest[it.Lab.LabGUID] {
			out = append(out, it)
		}
	}
	return out
}

func versionLess(a, b string) bool {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

func sortItems(items []Item, by string, desc bool) {
	key := func(it Item) string {
		switch by {
		case "itemCodes":
			return it.Item.ItemCode
		case "itemLoincs":
			return it.Item.ItemLoinc
		case "labIds":
			return it.Lab.LabGUID
		}
		return strings.ToLower(it.Item.ItemName)
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := key(items[i]), key(items[j])
		if a == b {
			a, b = items[i].Lab.LabGUID+"|"+items[i].Item.ItemCode, items[j].Lab.LabGUID+"|"+items[j].Item.ItemCode
		}
		if desc {
			return a > b
		}
		return a < b
	})
}

// Questionnaire returns the AOE Questionnaire of the lab's item in that
// compendium version; an item without one, or no such item, is a 404.
func (s *Service) Questionnaire(ctx context.Context, projectID, labGUID, version, code string) (json.RawMessage, error) {
	it, _, err := s.findItem(ctx, projectID, labGUID, version, code)
	if err != nil {
		return nil, err
	}
	if it.Item.AOE == nil {
		return nil, fault.NotFound("item %s of lab %s (compendium %s) has no questionnaire", code, labGUID, version)
	}
	return it.Item.AOE, nil
}

// findItem reads one compendium item; version "" is any version (the
// newest).
func (s *Service) findItem(ctx context.Context, projectID, labGUID, version, code string) (Item, activityDefinition, error) {
	q := url.Values{"identifier": {escapeAll([]string{LabSystem(labGUID) + "|" + code})[0]}}
	sq, err := search.ParseQuery("ActivityDefinition", q, false)
	if err != nil {
		return Item{}, activityDefinition{}, fault.Invalid("item search: %v", err)
	}
	rows, _, err := s.store.Search(ctx, store.SearchRequest{ProjectID: projectID, Query: sq, Count: 100, Now: s.now()})
	if err != nil {
		return Item{}, activityDefinition{}, err
	}
	var best Item
	var bestAD activityDefinition
	found := false
	for _, r := range rows {
		it, ad, ok := item(r.Content)
		if !ok || it.Lab.LabGUID != labGUID || it.Item.ItemCode != code || version != "" && it.Lab.CompendiumVersion != version {
			continue
		}
		if !found || versionLess(best.Lab.CompendiumVersion, it.Lab.CompendiumVersion) {
			best, bestAD, found = it, ad, true
		}
	}
	if !found {
		return Item{}, activityDefinition{}, fault.NotFound("no item %s of lab %s in compendium %q", code, labGUID, version)
	}
	return best, bestAD, nil
}
