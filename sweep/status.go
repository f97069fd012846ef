package sweep

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sqnet/sqnet/internal/atomicfile"
	"github.com/sqnet/sqnet/internal/progressfile"
)

// A cell's state as status shows it.
const (
	Pending     = "pending"     // never started
	Queued      = "queued"      // waiting in (or started by) a scheduler, not yet running here
	Running     = "running"     // a live process holds it
	Done        = "done"        // trained and evaluated
	Failed      = "failed"      // a command failed; Detail holds its error line
	Interrupted = "interrupted" // stopped without finishing (Ctrl-C, a killed process, a lost node): rerun it
)

// CellStatus is one cell's line of sqnet sweep status.
type CellStatus struct {
	Cell     Cell
	State    string
	Detail   string // the error line, the scheduler task, or the progress of a running cell
	Recorded *State
	Progress *progressfile.Status
}

// Status reads every cell's state. queued maps cell ids to the scheduler task that holds them (SlurmQueue), nil
// where no scheduler is asked.
func Status(dir string, cells []Cell, queued map[string]string) ([]CellStatus, error) {
	host, _ := os.Hostname()
	out := make([]CellStatus, len(cells))
	for i, c := range cells {
		st, err := ReadState(dir, c.ID)
		if err != nil {
			return nil, err
		}
		cs := CellStatus{Cell: c, Recorded: st}
		task, inQueue := queued[c.ID]
		cdir := CellDir(dir, c.ID)
		switch {
		case st == nil && inQueue:
			cs.State, cs.Detail = Queued, task
		case st == nil:
			cs.State = Pending
		case st.State == "done":
			cs.State = Done
		case st.State == "running" && locked(cdir):
			cs.State = Running
		case st.State == "running" && (inQueue || time.Since(st.Heartbeat) < StaleAfter) &&
			(st.Host != host || alive(st.PID)):
			// No lock in sight — another node's process (a shared file system's locks may not reach here) or a
			// file system without flock — but the scheduler says it runs, or its heartbeat is fresh.
			cs.State = Running
		case inQueue:
			cs.State, cs.Detail = Queued, task // failed or interrupted, and submitted again
		case st.State == "failed":
			cs.State, cs.Detail = Failed, st.Phase+": "+st.Error
		default:
			cs.State, cs.Detail = Interrupted, "stopped during "+st.Phase+" (attempt "+fmt.Sprint(st.Attempts)+")"
		}
		if cs.State == Running {
			cs.Detail = "on " + st.Host
			if st.Job != "" {
				cs.Detail += ", " + st.Job
			}
			if p, err := progressfile.Read(filepath.Join(cdir, ProgressFile)); err == nil && p.Phase == st.Phase {
				cs.Progress = p
				cs.Detail = describe(p) + " (" + cs.Detail + ")"
			} else if st.Phase != "" {
				// No progress of this phase yet (the evaluation is loading, say): the phase and its age.
				cs.Detail = st.Phase + " (" + cs.Detail + ")"
			}
		}
		out[i] = cs
	}
	return out, nil
}

// describe is a running cell's progress in a few words.
func describe(p *progressfile.Status) string {
	age := ""
	if a := time.Since(p.Updated); a > time.Minute {
		age = fmt.Sprintf(", last update %s ago", a.Round(time.Second))
	}
	switch p.Phase {
	case "train":
		eta := ""
		if p.ETASeconds > 0 {
			eta = ", ETA " + (time.Duration(p.ETASeconds) * time.Second).String()
		}
		return fmt.Sprintf("training epoch %d/%d, step %d/%d%s%s", p.Epoch, p.Epochs, p.Step, p.Steps, eta, age)
	case "eval":
		if p.Total == 0 {
			return fmt.Sprintf("evaluating: %s%s", p.Attack, age)
		}
		return fmt.Sprintf("evaluating: %s %d/%d, %d robust%s", p.Attack, p.Done, p.Total, p.Robust, age)
	}
	return p.Phase + age
}

// Todo is the cells a run should start: pending and interrupted ones, and failed ones with retryFailed. Running,
// queued and done cells are left alone.
func Todo(sts []CellStatus, retryFailed bool) []Cell {
	var out []Cell
	for _, s := range sts {
		if s.State == Pending || s.State == Interrupted || (retryFailed && s.State == Failed) {
			out = append(out, s.Cell)
		}
	}
	return out
}

// Counts tallies the states.
func Counts(sts []CellStatus) map[string]int {
	m := map[string]int{}
	for _, s := range sts {
		m[s.State]++
	}
	return m
}

// writeList writes cells as JSON lines: the list a scheduler's task k reads its cell from (line k), so a task
// runs the cell it was submitted for even if the grid file changes meanwhile.
func writeList(path string, cells []Cell) error {
	var b []byte
	for _, c := range cells {
		line, _ := json.Marshal(c)
		b = append(append(b, line...), '\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o644)
}

// ReadList reads a cell list.
func ReadList(path string) ([]Cell, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Cell
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		var c Cell
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, len(out)+1, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// stamp names one submission's files.
func stamp() string { return time.Now().UTC().Format("20060102-150405.000") }

// alive reports whether a process with this pid exists on this host.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
