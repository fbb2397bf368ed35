//go:build !linux

package harness

import "syscall"

// childAttr: without Pdeathsig outside Linux, a killed test binary can leave its children running.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
