package sweep

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/sqnet/sqnet/internal/atomicfile"
)

// The files of a cell's folder, DIR/cells/ID/.
const (
	CellFile     = "cell.json"  // the cell's settings
	StateFile    = "state.json" // running, done, failed or interrupted, written by sweep exec
	ModelFile    = "model.safetensors"
	TrainJSON    = "train.json"    // train --json: written when training finished
	EvalDir      = "eval"          // eval --out: eval.json, eval.md and the plots
	ProgressFile = "progress.json" // train's and eval's --progress-file
	lockFile     = ".lock"         // held (flock) by the process running the cell
)

// State is state.json.
type State struct {
	State    string    `json:"state"`           // running, done, failed, interrupted
	Phase    string    `json:"phase,omitempty"` // train or eval, while running or where it failed
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Job      string    `json:"job,omitempty"` // the scheduler's id for the task (Slurm JOBID_TASK, a k8s pod)
	Attempts int       `json:"attempts"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Seconds  float64   `json:"seconds,omitempty"` // train and eval, this attempt
	Error    string    `json:"error,omitempty"`   // the failing command's last line
}

// CellDir is cell id's folder in sweep folder dir.
func CellDir(dir, id string) string { return filepath.Join(dir, "cells", id) }

// ReadState reads a cell's state.json; a cell that never started has none (nil, nil).
func ReadState(dir, id string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(CellDir(dir, id), StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(CellDir(dir, id), StateFile), err)
	}
	return &s, nil
}

func writeState(cdir string, s *State) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return atomicfile.Write(filepath.Join(cdir, StateFile), append(b, '\n'), 0o644)
}

// ErrBusy says another process holds the cell.
var ErrBusy = errors.New("running in another process")

// lock takes the cell's lock without waiting; the lock lives as long as the returned file stays open (the kernel
// drops it when the process dies, however it dies, which is what tells a crashed cell from a running one).
func lock(cdir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(cdir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, err
	}
	return f, nil
}

// locked reports whether some process holds the cell's lock now.
func locked(cdir string) bool {
	f, err := os.Open(filepath.Join(cdir, lockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Exec runs one cell in sweep folder dir: sqnet train (resuming its own checkpoint after a crash) unless training
// finished, then sqnet eval unless evaluated, each a child process of bin with its output in the cell's
// train.log / eval.log, and records the outcome in state.json. A done cell returns at once; a cell another process
// holds is ErrBusy. device, when set, is passed as --device. Cancelling ctx interrupts the child (SIGINT: train
// saves its checkpoint) and leaves the cell interrupted, to be rerun.
func Exec(ctx context.Context, dir string, c Cell, bin, device, job string) (*State, error) {
	cdir := CellDir(dir, c.ID)
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return nil, err
	}
	lk, err := lock(cdir)
	if err != nil {
		return nil, fmt.Errorf("cell %s: %w", c.ID, err)
	}
	defer lk.Close()
	prev, err := ReadState(dir, c.ID)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.State == "done" {
		return prev, nil
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := atomicfile.Write(filepath.Join(cdir, CellFile), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	st := &State{State: "running", Host: host, PID: os.Getpid(), Job: job, Started: time.Now().UTC().Round(time.Second)}
	if prev != nil {
		st.Attempts = prev.Attempts
	}
	st.Attempts++
	var dev []string
	if device != "" {
		dev = []string{"--device=" + device}
	}
	model := filepath.Join(cdir, ModelFile)
	progress := "--progress-file=" + filepath.Join(cdir, ProgressFile)
	steps := []struct {
		phase, done string
		args        func() []string
	}{
		{"train", filepath.Join(cdir, TrainJSON), func() []string {
			a := append([]string{"train"}, Args(c.Train)...)
			a = append(a, "--out="+model, "--json="+filepath.Join(cdir, TrainJSON), progress)
			if _, err := os.Stat(model); err == nil {
				a = append(a, "--resume="+model) // a checkpoint without train.json: the last attempt stopped mid-way
			}
			return append(a, dev...)
		}},
		{"eval", filepath.Join(cdir, EvalDir, "eval.json"), func() []string {
			a := append([]string{"eval", "--model=" + model}, Args(c.Eval)...)
			return append(append(a, "--out="+filepath.Join(cdir, EvalDir), progress), dev...)
		}},
	}
	start := time.Now()
	for _, s := range steps {
		if _, err := os.Stat(s.done); err == nil {
			continue
		}
		st.Phase = s.phase
		if err := writeState(cdir, st); err != nil {
			return nil, err
		}
		last, err := runChild(ctx, bin, s.args(), filepath.Join(cdir, s.phase+".log"))
		if err != nil {
			st.Finished, st.Seconds = time.Now().UTC().Round(time.Second), time.Since(start).Seconds()
			st.State, st.Error = "failed", last
			if st.Error == "" {
				st.Error = err.Error()
			}
			if ctx.Err() != nil {
				st.State, st.Error = "interrupted", "interrupted"
			}
			if werr := writeState(cdir, st); werr != nil {
				return nil, werr
			}
			return st, fmt.Errorf("cell %s (%s): %s: %s", c.ID, c.Label(), s.phase, st.Error)
		}
	}
	st.State, st.Phase, st.Error = "done", "", ""
	st.Finished, st.Seconds = time.Now().UTC().Round(time.Second), time.Since(start).Seconds()
	os.Remove(filepath.Join(cdir, ProgressFile))
	return st, writeState(cdir, st)
}

// runChild runs bin with args, appending its stdout and stderr to log, and returns the last line it wrote to
// stderr (sqnet's one-line error). The child dies with this process (Pdeathsig), so a killed sweep leaves no
// orphan training on the device; ctx's cancellation reaches it as SIGINT.
func runChild(ctx context.Context, bin string, args []string, log string) (string, error) {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fmt.Fprintf(f, "== %s sqnet %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(args, " "))
	var tail lastLine
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = f
	cmd.Stderr = io.MultiWriter(f, &tail)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Pdeathsig fires when the thread that started the child exits; keep this goroutine on its thread meanwhile.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = cmd.Run()
	return tail.line(), err
}

// lastLine keeps the last non-empty line written to it (progress bars' carriage returns end a line too).
type lastLine struct {
	buf  bytes.Buffer
	last string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.buf.Write(p)
	if l.buf.Len() > 1<<16 {
		tail := l.buf.Bytes()[l.buf.Len()-1<<15:]
		l.buf = *bytes.NewBuffer(append([]byte(nil), tail...))
	}
	return len(p), nil
}

func (l *lastLine) line() string {
	sc := bufio.NewScanner(bytes.NewReader(bytes.ReplaceAll(l.buf.Bytes(), []byte("\r"), []byte("\n"))))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	last := ""
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			last = t
		}
	}
	return last
}
