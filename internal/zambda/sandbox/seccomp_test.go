package sandbox

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestSeccompProgram runs the filter in a BPF interpreter over system
// calls of this and of other architectures.
func TestSeccompProgram(t *testing.T) {
	raw, err := seccompProgram()
	if err != nil {
		t.Fatal(err)
	}
	var ins []bpf.RawInstruction
	for i := 0; i+8 <= len(raw); i += 8 {
		ins = append(ins, bpf.RawInstruction{Op: binary.NativeEndian.Uint16(raw[i:]), Jt: raw[i+2], Jf: raw[i+3],
			K: binary.NativeEndian.Uint32(raw[i+4:])})
	}
	prog, ok := bpf.Disassemble(ins)
	if !ok {
		t.Fatal("the program does not disassemble")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	// struct seccomp_data: nr, arch, instruction pointer, six arguments.
	data := func(nr, arch uint32) []byte {
		b := make([]byte, 64)
		binary.BigEndian.PutUint32(b[0:], nr) // the interpreter loads big-endian; the kernel, native
		binary.BigEndian.PutUint32(b[4:], arch)
		return b
	}
	errno := uint32(seccompRetErrno | uint32(unix.EPERM))
	cases := []struct {
		name string
		nr   uintptr
		arch uint32
		want uint32
	}{
		{"read", unix.SYS_READ, auditArch, seccompRetAllow},
		{"clone", unix.SYS_CLONE, auditArch, seccompRetAllow},
		{"execve", unix.SYS_EXECVE, auditArch, seccompRetAllow},
		{"ptrace", unix.SYS_PTRACE, auditArch, errno},
		{"mount", unix.SYS_MOUNT, auditArch, errno},
		{"keyctl", unix.SYS_KEYCTL, auditArch, errno},
		{"bpf", unix.SYS_BPF, auditArch, errno},
		{"perf_event_open", unix.SYS_PERF_EVENT_OPEN, auditArch, errno},
		{"kexec_load", unix.SYS_KEXEC_LOAD, auditArch, errno},
		{"finit_module", unix.SYS_FINIT_MODULE, auditArch, errno},
		{"io_uring_setup", unix.SYS_IO_URING_SETUP, auditArch, errno},
		{"the last denied", deniedSyscalls[len(deniedSyscalls)-1], auditArch, errno},
		// i386's mount is 21, an allowed number on x86-64: the other
		// architecture itself is refused.
		{"another architecture", 21, 0x40000003, seccompRetKillProcess},
	}
	if x32Bit != 0 {
		cases = append(cases, struct {
			name string
			nr   uintptr
			arch uint32
			want uint32
		}{"x32 read", unix.SYS_READ | x32Bit, auditArch, seccompRetKillProcess})
	}
	for _, c := range cases {
		got, err := vm.Run(data(uint32(c.nr), c.arch))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("%s: filter returns %#x, want %#x", c.name, got, c.want)
		}
	}
}
