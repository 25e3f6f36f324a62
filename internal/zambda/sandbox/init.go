package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// initPath is where Ward's own executable is shown inside a sandbox, to
// run as the sandbox's first program (see Init).
const initPath = "/.ward/init"

// Init runs the sandbox's first program when the process was started as
// one, and never returns then; otherwise it returns at once. Call it first
// thing in main (and in TestMain of packages that run workers).
//
// The first program is Ward's own executable, inside the sandbox's network
// namespace, already without capabilities and under seccomp. It binds the
// loopback listeners that Ward serves (the Runtime API at 127.0.0.1:9001,
// the egress proxy, the forwards), hands their descriptors to Ward over
// the socket it inherited, and replaces itself with the runtime. So Ward
// gets sockets inside a network namespace it could not enter itself
// without privileges, and no extra process stays in the sandbox.
//
// Arguments: initPath <socket fd> <port,port,...> -- <runtime argv...>
func Init() {
	if len(os.Args) == 1 && os.Args[0] == stubArg0 && os.Getenv("WARD_SANDBOX_STUB") == "1" {
		runStub() // never returns
	}
	if len(os.Args) < 5 || os.Args[0] != initPath || os.Args[3] != "--" {
		return
	}
	err := runInit(os.Args[1], os.Args[2], os.Args[4:])
	fmt.Fprintf(os.Stderr, "ward sandbox: %v\n", err)
	if strings.HasPrefix(err.Error(), "exec ") {
		os.Exit(126)
	}
	os.Exit(125)
}

func runInit(fdArg, portsArg string, argv []string) error {
	sock, err := strconv.Atoi(fdArg)
	if err != nil || sock < 3 {
		return fmt.Errorf("bad socket fd %q", fdArg)
	}
	var fds []int
	for _, p := range strings.Split(portsArg, ",") {
		port, err := strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return fmt.Errorf("bad port %q", p)
		}
		fd, err := listenLoopback(port)
		if err != nil {
			_ = unix.Sendmsg(sock, []byte("error: "+err.Error()), nil, nil, 0)
			return err
		}
		fds = append(fds, fd)
	}
	if err := unix.Sendmsg(sock, []byte("ok"), unix.UnixRights(fds...), nil, 0); err != nil {
		return fmt.Errorf("hand the listeners to ward: %w", err)
	}
	// The listeners and the socket are close-on-exec: the runtime gets
	// none of them.
	_ = unix.Close(sock)
	path := argv[0]
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

func listenLoopback(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
	}
	return fd, nil
}
