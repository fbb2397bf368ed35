package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux
// architecture Go supports (it is fixed by the kernel ABI, not by CONFIG_HZ).
const clockTicks = 100

// procStats is a sample of one process' resource use.
type procStats struct {
	vmHWM, vmRSS int64   // bytes
	cpuSeconds   float64 // utime + stime
}

// readProc samples /proc/PID/status and /proc/PID/stat.
func readProc(pid int) (procStats, error) {
	var s procStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	if s.vmHWM, s.vmRSS, err = parseStatus(status); err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	if s.cpuSeconds, err = parseStatCPU(stat); err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	return s, nil
}

// parseStatus returns VmHWM and VmRSS (kB in the file) in bytes.
func parseStatus(b []byte) (hwm, rss int64, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("status line %q: want N kB", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("status line %q: %w", sc.Text(), err)
		}
		if key == "VmHWM" {
			hwm = kb << 10
		} else {
			rss = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("status lacks VmHWM or VmRSS")
	}
	return hwm, rss, nil
}

// parseStatCPU returns utime+stime in seconds. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after the last ')'.
func parseStatCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat has no command field")
	}
	f := strings.Fields(string(b[i+1:]))
	// After the command: state is field 3, utime field 14, stime field 15 (1-based, man 5 proc).
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("stat has %d fields after the command, want > %d", len(f), stime)
	}
	u, err1 := strconv.ParseInt(f[utime], 10, 64)
	s, err2 := strconv.ParseInt(f[stime], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat utime %q stime %q: not integers", f[utime], f[stime])
	}
	return float64(u+s) / clockTicks, nil
}

// readProcs samples every process of a cluster and adds their figures up: CPU seconds, peak and
// current resident memory.
func readProcs(pids []int) (procStats, error) {
	var sum procStats
	for _, pid := range pids {
		st, err := readProc(pid)
		if err != nil {
			return sum, err
		}
		sum.cpuSeconds += st.cpuSeconds
		sum.vmHWM += st.vmHWM
		sum.vmRSS += st.vmRSS
	}
	return sum, nil
}
