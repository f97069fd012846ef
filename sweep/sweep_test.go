package sweep

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/sqnet/sqnet/internal/progressfile"
)

const example = `
name: alpha-seeds
train:
  model: small
  method: noisy-sq
  epochs: 1
eval:
  suite: quick
  limit: 1000
axes:
  quant: ["2,20", "2,50", "2,200"]
  seed: [1, 2]
  eval.seed: [7]
`

func TestParseAndCells(t *testing.T) {
	g, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "alpha-seeds" || g.Replicate != "seed" || len(g.Axes) != 3 || len(g.Train) != 3 || len(g.Eval) != 2 {
		t.Fatalf("parsed %+v", g)
	}
	cells := g.Cells()
	if len(cells) != 6 {
		t.Fatalf("%d cells, want 3×2×1", len(cells))
	}
	// The last axis varies fastest; the first slowest.
	if got := cells[1].Label(); got != "quant=2,20 seed=2 eval.seed=7" {
		t.Fatalf("cell 1 is %q", got)
	}
	if got := cells[2].Label(); got != "quant=2,50 seed=1 eval.seed=7" {
		t.Fatalf("cell 2 is %q", got)
	}
	want := []string{"--epochs=1", "--method=noisy-sq", "--model=small", "--quant=2,50", "--seed=1"}
	if got := Args(cells[2].Train); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("train args %v, want %v", got, want)
	}
	if got := strings.Join(Args(cells[2].Eval), " "); got != "--limit=1000 --seed=7 --suite=quick" {
		t.Fatalf("eval args %q", got)
	}
	ids := map[string]bool{}
	for _, c := range cells {
		if len(c.ID) != 12 || ids[c.ID] {
			t.Fatalf("id %q: not 12 hex digits or not unique", c.ID)
		}
		ids[c.ID] = true
	}
	// An id depends on the flags only: the same settings reordered, renamed or in a bigger grid keep it; a
	// changed fixed flag changes every id.
	g2, err := Parse([]byte(strings.NewReplacer("alpha-seeds", "other", "[1, 2]", "[2, 1, 3]").Replace(example)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range g2.Cells() {
		if c.Axes[1].Value != "3" && !ids[c.ID] {
			t.Fatalf("cell %s (%s) got a new id in a grown grid", c.ID, c.Label())
		}
		if c.Axes[1].Value == "3" && ids[c.ID] {
			t.Fatalf("a new cell reused an id")
		}
	}
	g3, _ := Parse([]byte(strings.Replace(example, "epochs: 1", "epochs: 2", 1)))
	for _, c := range g3.Cells() {
		if ids[c.ID] {
			t.Fatalf("changing --epochs kept id %s", c.ID)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"train: {model: small}", "no name"},
		{"name: a b", "name"},
		{"name: x\nbogus: 1", "field bogus not found"},
		{"name: x\ntrain: {out: m.safetensors}", "sweep sets it"},
		{"name: x\neval: {model: m}", "sweep sets it"},
		{"name: x\naxes: {eval.out: [a]}", "sweep sets it"},
		{"name: x\naxes: {seed: []}", "non-empty list"},
		{"name: x\naxes: {seed: 3}", "non-empty list"},
		{"name: x\naxes: {seed: [[1]]}", "number or a string"},
		{"name: x\naxes: {seed: [1, 1]}", "twice"},
		{"name: x\ntrain: {seed: 1}\naxes: {seed: [1]}", "set twice"},
		{"name: x\ntrain: {quant: [1]}", "an axis goes under axes"},
		{"name: x\naxes: [seed]", "want a map"},
		{"name: x\n\tbad", "yaml"},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.yaml, err, c.want)
		}
	}
	if g, err := Parse([]byte("name: one")); err != nil || len(g.Cells()) != 1 || g.Cells()[0].Label() != "(single cell)" {
		t.Fatalf("a grid without axes is one cell: %v", err)
	}
}

func TestStat(t *testing.T) {
	s := stat([]float64{0.7, 0.8, 0.9})
	if math.Abs(s.Mean-0.8) > 1e-12 || math.Abs(s.Std-0.1) > 1e-12 {
		t.Fatalf("stat = %+v, want 0.8 ± 0.1 (sample std)", s)
	}
	if s := stat([]float64{0.5}); s.Mean != 0.5 || s.Std != 0 {
		t.Fatalf("one value: %+v", s)
	}
	if s := stat(nil); !math.IsNaN(s.Mean) || pm(s, 100, 1) != "–" {
		t.Fatalf("no values: %+v", s)
	}
	if got := pm(Stat{0.761, 0.008}, 100, 1); got != "76.1 ± 0.8" {
		t.Fatalf("pm = %q", got)
	}
}

// TestStatusStates writes the states a cell can be in and checks what Status makes of them, the lock included:
// a cell whose state says running but whose process is gone is interrupted (rerun), one whose lock is held runs.
func TestStatusStates(t *testing.T) {
	dir := t.TempDir()
	g, _ := Parse([]byte("name: s\naxes: {seed: [1, 2, 3, 4, 5, 6, 7, 8]}"))
	cells := g.Cells()
	host, _ := os.Hostname()
	put := func(c Cell, s *State) {
		os.MkdirAll(CellDir(dir, c.ID), 0o755)
		if err := writeState(CellDir(dir, c.ID), s); err != nil {
			t.Fatal(err)
		}
	}
	put(cells[1], &State{State: "done"})
	put(cells[2], &State{State: "failed", Phase: "train", Error: "sqnet: --quant: bad"})
	put(cells[3], &State{State: "running", Phase: "eval", Host: host, PID: 1 << 30, Attempts: 1})
	put(cells[4], &State{State: "running", Phase: "train", Host: host})
	lk, err := lock(CellDir(dir, cells[4].ID))
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	put(cells[5], &State{State: "failed", Phase: "eval", Error: "x"})
	// Another node's cells, whose locks are out of sight: a fresh heartbeat runs, a stale one was lost.
	put(cells[6], &State{State: "running", Phase: "train", Host: "node-7", Job: "pod-1", Heartbeat: time.Now()})
	put(cells[7], &State{State: "running", Phase: "train", Host: "node-7", Job: "pod-2",
		Heartbeat: time.Now().Add(-StaleAfter - time.Second)})
	sts, err := Status(dir, cells, map[string]string{cells[5].ID: "slurm 7_5 pending", cells[0].ID: "slurm 7_0 pending"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{Queued, Done, Failed, Interrupted, Running, Queued, Running, Interrupted}
	for i, s := range sts {
		if s.State != want[i] {
			t.Errorf("cell %d: %s (%s), want %s", i, s.State, s.Detail, want[i])
		}
	}
	if !strings.Contains(sts[2].Detail, "--quant: bad") {
		t.Errorf("a failed cell's detail is %q, want its error line", sts[2].Detail)
	}
	todo := Todo(sts, false)
	if len(todo) != 2 || todo[0].ID != cells[3].ID || todo[1].ID != cells[7].ID {
		t.Fatalf("todo %v: want only the interrupted cells", todo)
	}
	if todo := Todo(sts, true); len(todo) != 3 {
		t.Fatalf("with retry: %d cells, want the interrupted and the failed ones", len(todo))
	}
	if _, err := lock(CellDir(dir, cells[4].ID)); err != ErrBusy {
		t.Fatalf("a second lock: %v, want ErrBusy", err)
	}
}

func TestLastLine(t *testing.T) {
	var l lastLine
	l.Write([]byte("epoch 1/3\rtraining 50%\r\nsqnet: --quant \"2,x\": bad α\n\n"))
	if got := l.line(); got != `sqnet: --quant "2,x": bad α` {
		t.Fatalf("last line %q", got)
	}
}

func TestSlurmScript(t *testing.T) {
	g, _ := Parse([]byte("name: grid-1"))
	s := SlurmScript(g, "/shared/sw", "/shared/sw/slurm/x.cells", 9,
		SlurmOptions{Bin: "/opt/sq net/sqnet", Gres: "gpu:1", Partition: "gpu", Time: "2:00:00", CPUs: 4,
			Extra: []string{"--account=lab"}})
	for _, want := range []string{"#SBATCH --job-name=sqnet-grid-1\n", "#SBATCH --array=0-8\n",
		"#SBATCH --output=/shared/sw/slurm/%A_%a.out\n", "#SBATCH --gres=gpu:1\n", "#SBATCH --partition=gpu\n",
		"#SBATCH --time=2:00:00\n", "#SBATCH --cpus-per-task=4\n", "#SBATCH --account=lab\n",
		"exec '/opt/sq net/sqnet' sweep exec --dir /shared/sw --list /shared/sw/slurm/x.cells --index \"$SLURM_ARRAY_TASK_ID\"",
		"GPU_DEVICE_ORDINAL"} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	// The script is valid bash, and picks the first GPU Slurm assigned.
	if out, err := exec.Command("bash", "-n", "-c", s).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	for env, want := range map[string]string{"GPU_DEVICE_ORDINAL=2,3": "--device gpu:2", "CUDA_VISIBLE_DEVICES=1": "--device gpu:1",
		"X=1": "--job 5_0\n"} {
		script := strings.Replace(s, "exec '/opt/sq net/sqnet'", "echo", 1)
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = []string{env, "SLURM_ARRAY_TASK_ID=0", "SLURM_ARRAY_JOB_ID=5"}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), want) && !strings.Contains(string(out), want+"\n") {
			t.Errorf("%s: %v: %q, want it to end in %q", env, err, out, want)
		}
	}
}

// TestK8sManifest decodes the manifest with the Kubernetes API types (unknown fields refused), the way the API
// server reads what kubectl apply sends.
func TestK8sManifest(t *testing.T) {
	dir := t.TempDir()
	g, _ := Parse([]byte(example))
	path, err := WriteK8s(dir, g, g.Cells()[:4], K8sOptions{Image: "registry.example/sqnet:1", PVC: "sweeps",
		GPUs: 1, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := yaml.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(generic)
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&job); err != nil {
		t.Fatalf("not a batch/v1 Job: %v\n%s", err, raw)
	}
	sp := job.Spec
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || sp.CompletionMode == nil ||
		*sp.CompletionMode != batchv1.IndexedCompletion || sp.Completions == nil || *sp.Completions != 4 ||
		sp.Parallelism == nil || *sp.Parallelism != 2 {
		t.Fatalf("job %+v", job)
	}
	if len(job.Name) == 0 || len(job.Name) > 63 || strings.Trim(job.Name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		t.Fatalf("name %q is not a DNS-1123 label", job.Name)
	}
	c := sp.Template.Spec.Containers[0]
	q, ok := c.Resources.Limits["nvidia.com/gpu"]
	if !ok || q.Value() != 1 {
		t.Fatalf("GPU limit %v", c.Resources.Limits)
	}
	cmd := strings.Join(c.Command, " ")
	if !strings.Contains(cmd, "--index $(JOB_COMPLETION_INDEX)") || !strings.Contains(cmd, "--dir /sweep --list /sweep/k8s/") ||
		!strings.Contains(cmd, "--device gpu:0") {
		t.Fatalf("command %q", cmd)
	}
	caps := ""
	for _, e := range c.Env {
		if e.Name == "NVIDIA_DRIVER_CAPABILITIES" {
			caps = e.Value
		}
	}
	if !strings.Contains(caps, "graphics") {
		t.Fatalf("NVIDIA_DRIVER_CAPABILITIES %q: the Vulkan driver needs graphics", caps)
	}
	if sp.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "sweeps" ||
		c.VolumeMounts[0].MountPath != "/sweep" || sp.Template.Spec.RestartPolicy != "Never" {
		t.Fatalf("volume %+v, mount %+v", sp.Template.Spec.Volumes, c.VolumeMounts)
	}
	// The list the pods index holds the cells in order, next to the manifest.
	list := strings.TrimPrefix(c.Command[slicesIndex(c.Command, "--list")+1], "/sweep/")
	cells, err := ReadList(filepath.Join(dir, list))
	if err != nil || len(cells) != 4 || cells[3].ID != g.Cells()[3].ID {
		t.Fatalf("cell list %s: %v, %d cells", list, err, len(cells))
	}
	if _, err := WriteK8s(dir, g, g.Cells(), K8sOptions{PVC: "x"}); err == nil {
		t.Fatal("a manifest without an image was written")
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestDescribe(t *testing.T) {
	p := describe(&progressfile.Status{Phase: "train", Epoch: 2, Epochs: 3, Step: 1500, Steps: 3600, ETASeconds: 125,
		Updated: time.Now()})
	if p != "training epoch 2/3, step 1500/3600, ETA 2m5s" {
		t.Fatalf("describe = %q", p)
	}
}

// TestReportBeforeAnyCellIsDone: a report of a sweep under way counts its cells and writes its files — a setting
// without a done cell has no accuracies (not NaN, which JSON cannot hold) and no point on the plot.
func TestReportBeforeAnyCellIsDone(t *testing.T) {
	dir := t.TempDir()
	g, _ := Parse([]byte("name: r\naxes: {quant: [\"2,20\", \"2,50\"], seed: [1, 2]}"))
	sts, err := Status(dir, g.Cells(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := BuildReport(dir, g, sts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(dir); err != nil {
		t.Fatalf("writing a report of 4 pending cells: %v", err)
	}
	if len(r.Rows) != 2 || r.Rows[0].Cells != 2 || r.Rows[0].Done != 0 || r.Rows[0].Worst != nil || r.Counts[Pending] != 4 {
		t.Fatalf("rows %+v, counts %v", r.Rows, r.Counts)
	}
	var md strings.Builder
	r.Markdown(&md)
	if !strings.Contains(md.String(), "| quant=2,20 | – | 0/2 | – | – | – |") {
		t.Fatalf("report.md:\n%s", md.String())
	}
}
