package main

import "syscall"

// childAttr makes the kernel kill a server if the benchmark dies first, so
// an interrupted run leaves no server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
