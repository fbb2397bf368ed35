package harness

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// proc is one OS process we started. Its waiter goroutine is the only caller of cmd.Wait; it records the
// result in err and then closes done, so err may be read only after done is closed.
type proc struct {
	cmd      *exec.Cmd
	logStart int64 // size of the log file before this run; its own output starts there
	done     chan struct{}
	err      error
}

// startProc starts argv with its stdout and stderr appended to logPath (and copied to echo if non-nil).
func startProc(argv, env []string, logPath string, echo io.Writer) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", logPath, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log %s: %w", logPath, err)
	}
	var out io.Writer = f
	if echo != nil {
		out = io.MultiWriter(f, echo)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &proc{cmd: cmd, logStart: st.Size(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id we started.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL to our PID and waits until the process is reaped.
func (p *proc) kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		select {
		case <-p.done: // exited on its own between the check and the signal
			return nil
		default:
			return fmt.Errorf("kill pid %d: %w", p.pid(), err)
		}
	}
	<-p.done
	return nil
}

// stop sends SIGTERM, waits up to grace for a clean exit, then kills. A process that already exited is
// not an error: the caller wants it gone, and its log says why it went.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return p.kill()
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return p.kill()
	}
}
