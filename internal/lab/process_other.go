//go:build !linux

package lab

import "syscall"

// dieWithParent has no kernel help outside Linux: Close stops the child.
func dieWithParent(*syscall.SysProcAttr) {}
