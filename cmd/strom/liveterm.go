package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// liveTerminal keeps log lines and the progress table apart when both go to one terminal (stdout and
// stderr are the same screen). The table is redrawn in place by moving the cursor up over its previous
// frame; a log line printed between two frames would shift the screen, so the next frame would erase it
// and leave a torn table above. Instead, a log line first erases the table, is printed, and the last frame
// is drawn again below it: logs scroll above a table that stays at the bottom, and the next frame's
// cursor movement is right again because the table has the same height.
type liveTerminal struct {
	mu sync.Mutex // guards frame and serialises writes to out and err
	// out receives the table, err the log lines; both show on the same screen.
	out, err io.Writer
	// frame is the last table frame without its cursor movement: lines each ending in "\n"; empty when no
	// table is on screen (before the first frame, after detach).
	frame []byte
}

// clearSeq is the escape that redraw puts after its cursor movement ("clear to the end of the screen");
// what follows it in a frame is the table itself.
var clearSeq = []byte("\x1b[J")

// tableWriter returns the writer of progress frames (replicate's ViewTable output).
func (t *liveTerminal) tableWriter() io.Writer { return writerFunc(t.writeTable) }

// logWriter returns the writer of log lines.
func (t *liveTerminal) logWriter() io.Writer { return writerFunc(t.writeLog) }

func (t *liveTerminal) writeTable(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i := bytes.Index(p, clearSeq); i >= 0 {
		t.frame = append(t.frame[:0], p[i+len(clearSeq):]...)
	}
	return t.out.Write(p)
}

func (t *liveTerminal) writeLog(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := bytes.Count(t.frame, []byte("\n")); n > 0 {
		if _, err := fmt.Fprintf(t.out, "\r\x1b[%dA\x1b[J", n); err != nil {
			return 0, err
		}
	}
	n, err := t.err.Write(p)
	if err != nil {
		return n, err
	}
	if len(t.frame) > 0 {
		if _, err := t.out.Write(t.frame); err != nil {
			return n, err
		}
	}
	return n, nil
}

// detach leaves the last frame on screen as it is: later log lines print below it without redrawing.
func (t *liveTerminal) detach() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frame = t.frame[:0]
}

// writerFunc adapts a function to io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
