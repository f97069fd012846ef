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
	"sync"
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
	// Heartbeat is rewritten every HeartbeatEvery while the cell runs: where no lock can be seen (another node's
	// process, a file system without flock) a stale heartbeat tells a lost process from a running one.
	Heartbeat time.Time `json:"heartbeat,omitzero"`
}

// HeartbeatEvery is how often a running cell rewrites its heartbeat; StaleAfter how old one may get before the
// cell counts as interrupted.
const (
	HeartbeatEvery = 30 * time.Second
	StaleAfter     = 3 * HeartbeatEvery
)

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

// lock takes the cell's lock; the lock lives as long as the returned file stays open (the kernel drops it when the
// process dies, however it dies, which is what tells a crashed cell from a running one). It retries for a moment,
// since status probes the lock with a brief shared one. On a file system without flock it returns (nil, nil): the
// cell runs unlocked and its heartbeat alone shows it alive.
func lock(cdir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(cdir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || try == 40 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Close()
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return nil, ErrBusy
	case errors.Is(err, syscall.ENOLCK), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EOPNOTSUPP),
		errors.Is(err, syscall.EINVAL):
		return nil, nil
	}
	return nil, err
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
	if lk != nil {
		defer lk.Close()
	}
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
	// Every write of the state goes through save, which stamps the heartbeat; a ticker saves it while a child runs.
	var mu sync.Mutex
	save := func() error {
		mu.Lock()
		defer mu.Unlock()
		st.Heartbeat = time.Now().UTC().Round(time.Second)
		return writeState(cdir, st)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				save() // a failed heartbeat write only ages the heartbeat
			case <-stop:
				return
			}
		}
	}()
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
			train := c.Train
			resume := false
			if _, err := os.Stat(model); err == nil {
				// A checkpoint without train.json: the last attempt stopped mid-way. It resumes from it, which
				// records the run's settings — --init among them, which train refuses beside --resume.
				resume = true
				train = nil
				for _, x := range c.Train {
					if x.Flag != "init" {
						train = append(train, x)
					}
				}
			}
			a := append([]string{"train"}, Args(train)...)
			a = append(a, "--out="+model, "--json="+filepath.Join(cdir, TrainJSON), progress)
			if resume {
				a = append(a, "--resume="+model)
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
		mu.Lock()
		st.Phase = s.phase
		mu.Unlock()
		if err := save(); err != nil {
			return nil, err
		}
		last, err := runChild(ctx, bin, s.args(), filepath.Join(cdir, s.phase+".log"))
		if err != nil {
			mu.Lock()
			st.Finished, st.Seconds = time.Now().UTC().Round(time.Second), time.Since(start).Seconds()
			st.State, st.Error = "failed", last
			if st.Error == "" {
				st.Error = err.Error()
			}
			if ctx.Err() != nil {
				st.State, st.Error = "interrupted", "interrupted"
			}
			mu.Unlock()
			if werr := save(); werr != nil {
				return nil, werr
			}
			return st, fmt.Errorf("cell %s (%s): %s: %s", c.ID, c.Label(), s.phase, st.Error)
		}
	}
	mu.Lock()
	st.State, st.Phase, st.Error = "done", "", ""
	st.Finished, st.Seconds = time.Now().UTC().Round(time.Second), time.Since(start).Seconds()
	mu.Unlock()
	os.Remove(filepath.Join(cdir, ProgressFile))
	return st, save()
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
