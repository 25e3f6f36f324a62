package runtime

import "testing"

// Each runtime says it ran out of memory in its own words; every one of
// them must mark the invocation, and ordinary lines must not.
func TestOOMMarkers(t *testing.T) {
	for _, tc := range []struct {
		stream int
		line   string
		oom    bool
	}{
		{1, "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", true},
		{1, "# Fatal process out of memory: Zone", true},
		{1, "fatal error: runtime: out of memory", true},
		{1, "fatal error: pageAlloc: out of memory", true},
		{1, "fatal error: out of memory allocating heap arena metadata", true},
		{1, "fatal error: runtime: cannot allocate memory", true},
		{1, "mmap: Cannot allocate memory", true},
		{1, "terminate called after throwing an instance of 'std::bad_alloc'", true},
		{1, "MemoryError", true},
		{1, "fatal error: concurrent map writes", false},
		{1, "panic: runtime error: index out of range [3] with length 2", false},
		{0, "fatal error: runtime: out of memory", false}, // stdout is the program's own text
	} {
		c := &capture{}
		c.add(tc.stream, []byte(tc.line))
		if c.oom != tc.oom {
			t.Errorf("%q on %s: oom = %v, want %v", tc.line, streamNames[tc.stream], c.oom, tc.oom)
		}
	}
}
