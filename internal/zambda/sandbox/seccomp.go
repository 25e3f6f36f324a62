package sandbox

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside the sandbox. None is needed by a
// Node or Go function; each is a way out of a sandbox or into the kernel's
// less-trodden paths: debugging other processes (ptrace,
// process_vm_*), mounting (mount and the new mount API), key rings, eBPF,
// perf events, kexec and kernel modules, namespaces (unshare, setns:
// bubblewrap's --disable-userns also stops new user namespaces), file
// handles that bypass path checks (open_by_handle_at), io_uring (its
// operations escape seccomp), userfaultfd, and host administration.
var deniedSyscalls = append([]uintptr{
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_KCMP,
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_USERFAULTFD,
	unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT, unix.SYS_QUOTACTL,
	unix.SYS_SYSLOG, unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_VHANGUP, unix.SYS_LOOKUP_DCOOKIE, unix.SYS_PERSONALITY,
	unix.SYS_FANOTIFY_INIT, unix.SYS_NFSSERVCTL,
}, archDenied...)

const (
	seccompRetKillProcess = 0x80000000
	seccompRetErrno       = 0x00050000
	seccompRetAllow       = 0x7fff0000
	// offsets in struct seccomp_data
	offNR   = 0
	offArch = 4
)

// seccompProgram is the sandbox's filter as bytes of struct sock_filter,
// the form bubblewrap's --seccomp reads. A system call of another
// architecture (e.g. the 32-bit ABI through int 0x80 on x86-64, which has
// other numbers) kills the process, so the list cannot be bypassed that
// way.
func seccompProgram() ([]byte, error) {
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArch, SkipTrue: 1},
		bpf.RetConstant{Val: seccompRetKillProcess},
		bpf.LoadAbsolute{Off: offNR, Size: 4},
	}
	if x32Bit != 0 {
		// x32 system calls are the x86-64 numbers with this bit set.
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: x32Bit, SkipTrue: 0, SkipFalse: 1},
			bpf.RetConstant{Val: seccompRetKillProcess})
	}
	n := len(deniedSyscalls)
	for i, nr := range deniedSyscalls {
		// On a match, jump over the remaining checks and the allow to the
		// EPERM return.
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipTrue: uint8(n - i)})
	}
	prog = append(prog,
		bpf.RetConstant{Val: seccompRetAllow},
		bpf.RetConstant{Val: seccompRetErrno | uint32(unix.EPERM)})
	if n > 250 {
		return nil, fmt.Errorf("seccomp: %d denied calls do not fit short jumps", n)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	out := make([]byte, 0, 8*len(raw))
	for _, ins := range raw {
		out = binary.NativeEndian.AppendUint16(out, ins.Op)
		out = append(out, ins.Jt, ins.Jf)
		out = binary.NativeEndian.AppendUint32(out, ins.K)
	}
	return out, nil
}
