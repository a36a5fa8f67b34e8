package lab

import "syscall"

// dieWithParent has the kernel kill the child when the process that
// started it dies, so a crashed test leaves no server behind.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
