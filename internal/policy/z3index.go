package policy

import "strings"

// z3Index answers one Z3 action. Bucket-level answers are precomputed; object
// paths are matched against the glob patterns of their bucket and of "*",
// so the work grows with the patterns of one bucket, not of the whole Set.
type z3Index struct {
	root      verdict                   // "Z3:*" requests; merged into every bucket
	buckets   map[string]*z3BucketIndex // buckets named by some rule
	anyBucket globSet                   // "Z3:*/path" patterns
}

type z3BucketIndex struct {
	level verdict // "Z3:b" and "Z3:b/": bucket patterns plus the root
	globs globSet
}

// globSet holds glob patterns; when there are many, those whose first path
// segment is a literal are filed under it, so a lookup scans only the
// patterns that can match its first segment.
type globSet struct {
	byFirst map[string][]z3Glob
	other   []z3Glob
}

// globIndexMin is the size from which a globSet files patterns by their
// first segment: below it, one scan is cheaper than a map lookup.
const globIndexMin = 8

func newGlobSet(globs []z3Glob) globSet {
	if len(globs) < globIndexMin {
		return globSet{other: globs}
	}
	gs := globSet{byFirst: map[string][]z3Glob{}}
	for _, g := range globs {
		if first := g.segs[0]; !strings.Contains(first, "*") && len(g.segs) > 1 {
			gs.byFirst[first] = append(gs.byFirst[first], g)
		} else {
			gs.other = append(gs.other, g)
		}
	}
	return gs
}

func (gs *globSet) scan(v *verdict, path string) {
	if gs.byFirst != nil {
		first := path
		if i := indexByte(path, '/'); i >= 0 {
			first = path[:i]
		}
		scanGlobs(v, gs.byFirst[first], path)
	}
	scanGlobs(v, gs.other, path)
}

type z3Glob struct {
	segs []string
	ref  *ruleRef
	deny bool
}

type z3Build struct {
	root      []entry
	buckets   map[string]*z3BucketBuild
	anyBucket []z3Glob
}

type z3BucketBuild struct {
	level []entry
	globs []z3Glob
}

func (b *z3Build) bucket(name string) *z3BucketBuild {
	bb := b.buckets[name]
	if bb == nil {
		bb = &z3BucketBuild{}
		b.buckets[name] = bb
	}
	return bb
}

func (b *z3Build) add(p pattern, e entry) {
	switch {
	case p.service == "" || p.z3.kind == z3Root:
		b.root = append(b.root, e)
	case p.z3.kind == z3Bucket:
		bb := b.bucket(p.z3.bucket)
		bb.level = append(bb.level, e)
	case p.z3.bucket == "*":
		b.anyBucket = append(b.anyBucket, z3Glob{segs: p.z3.segs, ref: e.ref, deny: e.deny})
	default:
		bb := b.bucket(p.z3.bucket)
		bb.globs = append(bb.globs, z3Glob{segs: p.z3.segs, ref: e.ref, deny: e.deny})
	}
}

func (b *z3Build) finish() *z3Index {
	x := &z3Index{root: summarize(b.root), buckets: make(map[string]*z3BucketIndex, len(b.buckets)), anyBucket: newGlobSet(b.anyBucket)}
	for name, bb := range b.buckets {
		x.buckets[name] = &z3BucketIndex{level: summarize(bb.level, b.root), globs: newGlobSet(bb.globs)}
	}
	return x
}

// lookup answers a Z3 request: "Z3:*" (or "Z3"), "Z3:b", "Z3:b/" or
// "Z3:b/path". rest is what follows "Z3:".
func (x *z3Index) lookup(rest string) verdict {
	if rest == "" || rest == "*" {
		return x.root
	}
	bucket, path, hasPath := rest, "", false
	if i := indexByte(rest, '/'); i >= 0 {
		bucket, path, hasPath = rest[:i], rest[i+1:], true
	}
	v := x.root
	bi := x.buckets[bucket]
	if bi != nil && (!hasPath || path == "") {
		v = bi.level
	}
	if !hasPath {
		return v
	}
	if bi != nil {
		bi.globs.scan(&v, path)
	}
	x.anyBucket.scan(&v, path)
	return v
}

// scanGlobs folds the matching globs into v, keeping the first Deny and the
// first Allow (Z3 rules cannot be conditional).
func scanGlobs(v *verdict, globs []z3Glob, path string) {
	for i := range globs {
		g := &globs[i]
		if g.deny {
			if (v.deny == nil || g.ref.order < v.deny.order) && globMatch(g.segs, path) {
				v.deny = g.ref
			}
		} else if (v.allow == nil || g.ref.order < v.allow.order) && globMatch(g.segs, path) {
			v.allow = g.ref
		}
	}
}
