package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqnet/sqnet/sweep"
)

// smokeGrid is four cells small enough for CI: quantizer α × seed, a few training steps, the smoke suite.
const smokeGrid = `# a 4-cell smoke grid (sweep tests)
name: smoke
train:
  method: noisy-sq
  limit: 150
  test-limit: 20
  epochs: 1
eval:
  suite: smoke
  limit: 8
  eps: 0.4
axes:
  quant: ["2,20", "2,50"]
  seed: [1, 2]
`

// sweepStates reads every cell's recorded state (nil: none yet).
func sweepStates(t *testing.T, dir string, cells []sweep.Cell) []*sweep.State {
	t.Helper()
	out := make([]*sweep.State, len(cells))
	for i, c := range cells {
		st, err := sweep.ReadState(dir, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = st
	}
	return out
}

// reportRows is report.json's rows without the training times (the only numbers two runs of a cell may differ in).
func reportRows(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(withoutKeys(v["rows"], "train_seconds"), "", " ")
	return string(b)
}

// TestSweepLocalKillAndSlurm runs the smoke grid with the local backend, kills the sweep (kill -9) once a cell is
// done and another is under way, reruns it — only the missing cells run, the done ones are untouched and no
// training outlived the killed sweep — and reports it; then the same grid through the Slurm backend (one array
// job on the CI's one-node cluster) must report the same numbers.
func TestSweepLocalKillAndSlurm(t *testing.T) {
	if testing.Short() {
		// .ci/run's SwiftShader pass: a sweep runs the same train and eval commands the other tests run there; the
		// lavapipe pass runs this test, Slurm half included.
		t.Skip("-short (SwiftShader): the lavapipe pass runs the sweep")
	}
	dir := t.TempDir()
	gridPath := filepath.Join(dir, "grid.yaml")
	if err := os.WriteFile(gridPath, []byte(smokeGrid), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := sweep.Parse([]byte(smokeGrid))
	if err != nil {
		t.Fatal(err)
	}
	cells := g.Cells()
	local := filepath.Join(dir, "local")

	cmd := exec.Command(sqnetBin, "sweep", "run", gridPath, "--out", local)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		sts := sweepStates(t, local, cells)
		_, perr := os.Stat(filepath.Join(sweep.CellDir(local, cells[1].ID), sweep.ProgressFile))
		if sts[0] != nil && sts[0].State == "done" && sts[1] != nil && sts[1].State == "running" && perr == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no cell finished in 5 minutes:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A running cell shows its progress (the training's or the evaluation's progress file).
	stdout, _, _ := sqnet(t, nil, "sweep", "status", local)
	if !strings.Contains(stdout, "running") || !(strings.Contains(stdout, "training epoch 1/1, step") ||
		strings.Contains(stdout, "evaluating: ")) {
		t.Errorf("status of a running sweep shows no progress:\n%s", stdout)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	first := sweepStates(t, local, cells)
	stdout, _, code := sqnet(t, nil, "sweep", "status", local)
	if code != 0 || !strings.Contains(stdout, "1 done") || !strings.Contains(stdout, "interrupted") {
		t.Fatalf("status after kill -9 (exit %d):\n%s", code, stdout)
	}
	// The killed sweep's training child died with it (Pdeathsig): nothing holds the interrupted cell.
	time.Sleep(200 * time.Millisecond)
	if ps, _ := exec.Command("pgrep", "-f", filepath.Join(local, "cells", cells[1].ID)).Output(); len(ps) > 0 {
		t.Fatalf("a child of the killed sweep still runs: pids %s", ps)
	}

	stdout, stderr, code := sqnet(t, nil, "sweep", "run", gridPath, "--out", local)
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "4 cells — 1 done") || !strings.Contains(stdout, "3 to run") ||
		strings.Contains(stdout, "start  "+cells[0].ID) || strings.Count(stdout, "  done   ") != 3 {
		t.Fatalf("the rerun did not run exactly the 3 missing cells:\n%s", stdout)
	}
	again := sweepStates(t, local, cells)
	if *again[0] != *first[0] {
		t.Fatalf("the done cell was touched: %+v, then %+v", first[0], again[0])
	}
	if again[1].Attempts != 2 {
		t.Fatalf("the interrupted cell's attempts: %d, want 2", again[1].Attempts)
	}
	// Its training resumed from the checkpoint or restarted: either way the same numbers as an unbroken cell,
	// which the Slurm run below checks (bit-reproducible training and evaluation).
	if stdout, _, code = sqnet(t, nil, "sweep", "run", gridPath, "--out", local); code != 0 || !strings.Contains(stdout, "0 to run") {
		t.Fatalf("a third run found work (exit %d):\n%s", code, stdout)
	}
	if _, stderr, code := sqnet(t, nil, "sweep", "report", local); code != 0 {
		t.Fatal(stderr)
	}
	for _, f := range []string{"report.md", "report.json", "report.png"} {
		if st, err := os.Stat(filepath.Join(local, f)); err != nil || st.Size() == 0 {
			t.Fatalf("report: %s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(local, "report.md"))
	if !strings.Contains(string(md), "| quant=2,20 | soft | 2/2 | smoke (8) |") {
		t.Fatalf("report.md:\n%s", md)
	}

	needSlurm(t)
	slurm := filepath.Join(dir, "slurm")
	stdout, stderr, code = sqnet(t, nil, "sweep", "run", gridPath, "--out", slurm, "--backend", "slurm", "--wait")
	if code != 0 {
		logs, _ := filepath.Glob(filepath.Join(slurm, "slurm", "*.out"))
		var b strings.Builder
		for _, l := range logs {
			x, _ := os.ReadFile(l)
			b.WriteString(l + ":\n" + string(x))
		}
		t.Fatalf("slurm backend: exit %d\n%s%s\n%s", code, stdout, stderr, b.String())
	}
	for _, st := range sweepStates(t, slurm, cells) {
		if st == nil || st.State != "done" || !strings.Contains(st.Job, "_") {
			t.Fatalf("a cell run by Slurm: %+v (want done, with its array task id)", st)
		}
	}
	if _, stderr, code := sqnet(t, nil, "sweep", "report", slurm); code != 0 {
		t.Fatal(stderr)
	}
	if a, b := reportRows(t, local), reportRows(t, slurm); a != b {
		t.Fatalf("the Slurm backend's report differs from the local one's:\n%s", firstDiff(a, b))
	}
}

// TestSweepBadInput: a bad grid or flag is one line and exit 2, before any cell starts or folder appears.
func TestSweepBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	good := write("good.yaml", smokeGrid)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "run", write("q.yaml", strings.Replace(smokeGrid, `"2,50"`, `"2,x"`, 1))}, "quant"},
		{[]string{"sweep", "run", write("flag.yaml", strings.Replace(smokeGrid, "epochs: 1", "epoch: 1", 1))}, "unknown flag: --epoch"},
		{[]string{"sweep", "run", write("suite.yaml", strings.Replace(smokeGrid, "suite: smoke", "suite: strong", 1))}, "--suite"},
		{[]string{"sweep", "run", write("out.yaml", smokeGrid+"  out: [a, b]\n")}, "sweep sets it"},
		{[]string{"sweep", "run", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"sweep", "run", good, "--backend", "lsf"}, "--backend"},
		{[]string{"sweep", "run", good, "--backend", "k8s"}, "--image and --pvc"},
		{[]string{"sweep", "run", good, "--backend", "slurm", "--devices", "0"}, "--devices"},
		{[]string{"sweep", "status", dir}, "not a sweep folder"},
		{[]string{"sweep", "report", filepath.Join(dir, "nothing")}, "not a sweep folder"},
	} {
		out := filepath.Join(dir, "sw")
		args := c.args
		if args[1] == "run" {
			args = append(args, "--out", out)
		}
		stdout, stderr, code := sqnet(t, nil, args...)
		if code != 2 || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", c.args, code, stdout, stderr, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: created %s", c.args, out)
		}
	}
}
