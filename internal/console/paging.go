package console

import (
	"net/url"
	"strconv"
	"strings"
)

// listPage is one page of a list the API returns whole (developers,
// applications): the console filters and pages it, as the roles list does.
type listPage[T any] struct {
	Filter     string
	Items      []T // this page's
	Total      int // all items
	Matching   int // items the filter matches
	From       int // 1-based index of this page's first item
	Prev, Next string
}

// perPage is how many rows a page of a list shows.
const perPage = 50

// pageList filters items with match (the query's q, lower-cased) and cuts
// the page the query's page names; out-of-range pages show the nearest.
func pageList[T any](items []T, q url.Values, path string, match func(T, string) bool) listPage[T] {
	p := listPage[T]{Filter: strings.TrimSpace(q.Get("q")), Total: len(items)}
	f := strings.ToLower(p.Filter)
	var kept []T
	for _, it := range items {
		if f == "" || match(it, f) {
			kept = append(kept, it)
		}
	}
	p.Matching = len(kept)
	n, _ := strconv.Atoi(q.Get("page"))
	n = max(1, min(n, (len(kept)+perPage-1)/perPage))
	start := (n - 1) * perPage
	p.Items = kept[start:min(start+perPage, len(kept))]
	p.From = start + 1
	link := func(page int) string {
		v := url.Values{"page": {strconv.Itoa(page)}}
		if p.Filter != "" {
			v.Set("q", p.Filter)
		}
		return path + "?" + v.Encode()
	}
	if n > 1 {
		p.Prev = link(n - 1)
	}
	if start+perPage < len(kept) {
		p.Next = link(n + 1)
	}
	return p
}

// has reports whether any of fields holds f (already lower-case).
func has(f string, fields ...string) bool {
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}

// lines splits a textarea into its non-empty trimmed lines.
func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
