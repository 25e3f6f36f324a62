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
	// Go's collector faulting at the limit (as seen in CI) is out of
	// memory; a fault elsewhere, or a collector frame without a fault, is not.
	for _, tc := range []struct {
		lines []string
		oom   bool
	}{
		{[]string{"SIGSEGV: segmentation violation", "PC=0x436efd m=3 sigcode=1 addr=0x0", "", "goroutine 0 gp=0x1af4864bf2c0 m=3 mp=0x1af4864f3008 [idle]:",
			"runtime.(*spanQueue).tryDrain(0x4700033300000400?, 0x470003332020020?, 0x33202002?)", "\truntime/mgcmark_greenteagc.go:520 +0x5d fp=0x1af48650bcc0"}, true},
		{[]string{"panic: runtime error: invalid memory address or nil pointer dereference", "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]",
			"goroutine 1 [running]:", "main.handle(...)", "\t/src/main.go:12 +0x1c"}, false},
		{[]string{"goroutine 7 [GC worker (idle)]:", "\truntime/mgc.go:1423 +0x105"}, false},
	} {
		c := &capture{}
		for _, l := range tc.lines {
			c.add(1, []byte(l))
		}
		if c.oom != tc.oom {
			t.Errorf("%q: oom = %v, want %v", tc.lines[0], c.oom, tc.oom)
		}
	}
}
