package harness

import "syscall"

// childAttr makes the kernel SIGKILL the child when the test binary dies, so a test killed by its
// timeout or by -9 leaves no broker behind. A new process group keeps a terminal's Ctrl-C from reaching
// the child before our own cleanup does.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
