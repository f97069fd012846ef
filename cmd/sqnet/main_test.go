package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqnet/sqnet/model"
)

var sqnetBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sqnet-cli-")
	if err != nil {
		panic(err)
	}
	sqnetBin = filepath.Join(dir, "sqnet")
	if out, err := exec.Command("go", "build", "-o", sqnetBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sqnet runs the CLI with extra environment variables and returns stdout, stderr and the exit code.
func sqnet(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(sqnetBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// TestBadEnvironment: each broken setup gives exactly one line on stderr naming the problem and exit code 2,
// never a panic or a cgo trace.
func TestBadEnvironment(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no loader", []string{"SQNET_VULKAN_LIB=/nonexistent/libvulkan.so.1"}, []string{"devices"},
			"no Vulkan loader"},
		{"no loader selftest", []string{"SQNET_VULKAN_LIB=/nonexistent/libvulkan.so.1"}, []string{"selftest"},
			"apt-get install libvulkan1"},
		{"no ICD", []string{"VK_ICD_FILENAMES=/nonexistent/icd.json", "VK_DRIVER_FILES=/nonexistent/icd.json"},
			[]string{"selftest"}, "no Vulkan device found"},
		{"device index out of range", nil, []string{"selftest", "--device", "99"}, "no such device: device 99"},
		{"device name unknown", nil, []string{"devices", "--device", "no-such-gpu"}, `no device name contains "no-such-gpu"`},
		{"device from env", []string{"SQNET_DEVICE=no-such-gpu"}, []string{"selftest"}, "no such device"},
		{"unknown flag", nil, []string{"devices", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", nil, []string{"bogus"}, `unknown command "bogus"`},
		{"stray argument", nil, []string{"devices", "extra"}, "takes no arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := sqnet(t, c.env, c.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "sqnet: ") || !strings.Contains(lines[0], c.want) {
				t.Errorf("stderr %q: want one line \"sqnet: ...%s...\"", stderr, c.want)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stderr carries a trace: %q", stderr)
			}
		})
	}
}

func TestDevicesJSON(t *testing.T) {
	stdout, stderr, code := sqnet(t, nil, "devices", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Devices []struct {
			Index  int    `json:"index"`
			Name   string `json:"name"`
			Type   string `json:"type"`
			Limits struct {
				MaxInvocations uint32 `json:"max_workgroup_invocations"`
				MaxRange       uint64 `json:"max_storage_buffer_range"`
			} `json:"limits"`
			Heaps []struct {
				Size uint64 `json:"size_bytes"`
			} `json:"heaps"`
		} `json:"devices"`
		Picked *int `json:"picked"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("devices --json printed invalid JSON: %v\n%s", err, stdout)
	}
	if len(doc.Devices) == 0 || doc.Picked == nil || *doc.Picked >= len(doc.Devices) {
		t.Fatalf("no devices or no valid pick: %s", stdout)
	}
	d := doc.Devices[*doc.Picked]
	if d.Name == "" || d.Type == "" || d.Limits.MaxInvocations < 128 || d.Limits.MaxRange < 1<<27 || len(d.Heaps) == 0 {
		t.Errorf("picked device is missing facts (the spec guarantees ≥128 invocations, ≥128 MiB range): %+v", d)
	}
	table, _, code := sqnet(t, nil, "devices")
	if code != 0 || !strings.Contains(table, d.Name) || !strings.Contains(table, "sqnet would use device") {
		t.Errorf("devices table (exit %d) does not name %q and the pick:\n%s", code, d.Name, table)
	}
}

func TestSelftest(t *testing.T) {
	stdout, stderr, code := sqnet(t, nil, "selftest", "--validate")
	if code != 0 || !strings.Contains(stdout, "self-test passed") || !strings.Contains(stdout, "validation on") {
		t.Fatalf("selftest --validate: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Count(stdout, "PASS") != 3 {
		t.Errorf("want 3 passing checks:\n%s", stdout)
	}
}

// TestTrainCLI trains a few steps through the CLI, checks the checkpoint and the JSON, then resumes it.
func TestTrainCLI(t *testing.T) {
	dir := t.TempDir()
	ck, js := filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "r.json")
	args := []string{"train", "--limit", "200", "--test-limit", "100", "--epochs", "1", "--out", ck, "--json", js}
	stdout, stderr, code := sqnet(t, nil, args...)
	if code != 0 || !strings.Contains(stdout, "test accuracy") {
		t.Fatalf("train: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res struct {
		Steps  int `json:"steps"`
		Epochs []struct {
			TestAcc float64 `json:"test_accuracy"`
		} `json:"epochs"`
	}
	b, err := os.ReadFile(js)
	if err != nil || json.Unmarshal(b, &res) != nil || res.Steps != 4 || len(res.Epochs) != 1 {
		t.Fatalf("result JSON %s: %v", b, err)
	}
	stdout, stderr, code = sqnet(t, nil, "train", "--limit", "200", "--test-limit", "100", "--epochs", "2",
		"--out", ck, "--resume", ck)
	if code != 0 || !strings.Contains(stdout, "after 2 epochs, 8 steps") {
		t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestTrainInit: --init fine-tunes from a checkpoint — a naturally trained network gets a quantizer and trains on
// — and a checkpoint that does not fit, a missing one, or --init with --resume is one line, exit 2, before any
// output, with no checkpoint written.
func TestTrainInit(t *testing.T) {
	dir := t.TempDir()
	nat, out := filepath.Join(dir, "nat.safetensors"), filepath.Join(dir, "nsq.safetensors")
	small := []string{"--limit", "100", "--test-limit", "100", "--epochs", "1"}
	if _, stderr, code := sqnet(t, nil, append([]string{"train", "--out", nat}, small...)...); code != 0 {
		t.Fatalf("train natural: exit %d: %s", code, stderr)
	}
	args := append([]string{"train", "--init", nat, "--method", "noisy-sq", "--quant", "2,50", "--out", out}, small...)
	if stdout, stderr, code := sqnet(t, nil, args...); code != 0 || !strings.Contains(stdout, "test accuracy") {
		t.Fatalf("train --init: exit %d\n%s\n%s", code, stdout, stderr)
	}
	ck, err := model.Load(out)
	if err != nil || ck.Extra["init"] != nat || ck.Quant == nil || ck.Step != 2 {
		t.Fatalf("fine-tuned checkpoint: %v, metadata %v", err, ck)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--init", filepath.Join(dir, "none.safetensors")}, "none.safetensors"},
		{[]string{"--init", nat, "--model", "madry"}, "tensor conv1.weight is [16 1 3 3] there and [32 1 5 5]"},
		{[]string{"--init", nat, "--dataset", "cifar10"}, "tensor conv1.weight is [16 1 3 3] there and [16 3 3 3]"},
		{[]string{"--init", nat, "--resume", out}, "--init and --resume"},
	} {
		stdout, stderr, code := sqnet(t, nil, append([]string{"train", "--out", bad}, c.args...)...)
		if code != 2 || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("train %v: exit %d, stdout %q, stderr %q; want exit 2 and one line containing %q", c.args, code,
				stdout, stderr, c.want)
		}
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("a refused --init wrote a checkpoint")
	}
}

// TestTrainBadInput: bad flags and files are one line and exit 2, and no checkpoint is written.
func TestTrainBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.safetensors")
	junk := filepath.Join(dir, "junk.safetensors")
	os.WriteFile(junk, []byte("not a checkpoint"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--epochs", "0"}, "--epochs 0"},
		{[]string{"--model", "resnet"}, `unknown model "resnet"`},
		{[]string{"--method", "magic"}, "--method"},
		{[]string{"--quant", "1,50"}, "L = 1"},
		{[]string{"--quant", "2,0"}, "α = 0"},
		{[]string{"--method", "noisy-sq", "--noise-eps", "-0.1"}, "--noise-eps -0.1"},
		{[]string{"--method", "pgd-at", "--pgd-steps", "0"}, "--pgd-steps 0"},
		{[]string{"--data", filepath.Join(dir, "nowhere")}, "not a readable folder"},
		{[]string{"--resume", junk}, junk},
		{[]string{"--lr", "abc"}, "invalid argument"},
	} {
		args := append([]string{"train", "--limit", "100", "--out", out}, c.args...)
		_, stderr, code := sqnet(t, nil, args...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("train %v: exit %d, stderr %q; want exit 2 and one line containing %q", c.args, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run wrote a checkpoint")
	}
}

// TestTrainCtrlC interrupts a run with SIGINT: it must save a loadable checkpoint of the steps done, say so on one
// line, exit with 130, and leave no temporary file beside the checkpoint.
func TestTrainCtrlC(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "m.safetensors")
	cmd := exec.Command(sqnetBin, "train", "--limit", "5000", "--test-limit", "100", "--out", ck)
	var stdout, stderr lockedBuffer // written by exec's copying goroutines while the test polls
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until training has started (the banner), then interrupt.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), "training small") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted train: %v (stdout %q, stderr %q); want exit 130", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "checkpoint "+ck+" saved") {
		t.Errorf("stdout %q does not report the saved checkpoint", stdout.String())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("folder holds %d entries, want only the checkpoint", len(ents))
	}
	// Resuming the interrupted checkpoint works (it is complete and valid).
	_, stderr2, code := sqnet(t, nil, "train", "--limit", "5000", "--test-limit", "100", "--epochs", "1", "--out",
		filepath.Join(dir, "again.safetensors"), "--resume", ck, "--validate")
	if code != 0 {
		t.Fatalf("resume after Ctrl-C: exit %d: %s", code, stderr2)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while another goroutine writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAttackEvalAuditCLI trains a tiny checkpoint, attacks and evaluates it through the CLI (results written to
// --out), and checks that bad input gives one line, exit 2 and nothing in --out.
func TestAttackEvalAuditCLI(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "m.safetensors")
	if _, stderr, code := sqnet(t, nil, "train", "--limit", "300", "--test-limit", "50", "--epochs", "1", "--method",
		"noisy-sq", "--out", ck); code != 0 {
		t.Fatalf("train: %s", stderr)
	}
	out := filepath.Join(dir, "attack")
	stdout, stderr, code := sqnet(t, nil, "attack", "--model", ck, "--attack", "bpda", "--steps", "5", "--limit", "40",
		"--out", out)
	if code != 0 || !strings.Contains(stdout, "robust accuracy") {
		t.Fatalf("attack: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"result.json", "result.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("attack --out: %v", err)
		}
	}
	suite, bpda := "quick", "bpda-40×1"
	if testing.Short() { // SwiftShader: the smoke suite exercises the same code with 5-step attacks
		suite, bpda = "smoke", "bpda-5×1"
	}
	stdout, stderr, code = sqnet(t, nil, "eval", "--model", ck, "--suite", suite, "--limit", "20", "--out",
		filepath.Join(dir, "eval"), "--surrogate", ck)
	if code != 0 || !strings.Contains(stdout, "worst case") || !strings.Contains(stdout, bpda) ||
		!strings.Contains(stdout, "transfer-pgd-40") {
		t.Fatalf("eval: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"eval.json", "eval.md", "examples.png", "accuracy-vs-eps.png"} {
		if _, err := os.Stat(filepath.Join(dir, "eval", f)); err != nil {
			t.Errorf("eval --out: %v", err)
		}
	}
	lie := filepath.Join(dir, "lie.safetensors")
	raw, _ := os.ReadFile(ck)
	os.WriteFile(lie, []byte(strings.Replace(string(raw), `"arch":"small"`, `"arch":"madry"`, 1)), 0o644)
	bad := filepath.Join(dir, "bad-out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"attack", "--model", ck, "--eps", "-0.1"}, "--eps -0.1"},
		{[]string{"attack", "--model", ck, "--eps", "2"}, "0 ≤ ε ≤ 1"},
		{[]string{"attack", "--model", ck, "--method", "apgd-ce", "--deploy", "sideways"}, "--deploy"},
		{[]string{"attack", "--model", ck, "--method", "square", "--queries", "0"}, "--queries"},
		{[]string{"eval", "--model", ck, "--suite", "autoattack", "--batch", "0"}, "--batch"},
		{[]string{"attack", "--model", ck, "--steps", "0"}, "0 steps"},
		{[]string{"attack", "--model", ck, "--attack", "deepfool"}, "--attack"},
		{[]string{"attack"}, "--model"},
		{[]string{"attack", "--model", lie}, "madry"},
		{[]string{"eval", "--model", ck, "--suite", "exotic"}, "unknown suite"},
		{[]string{"eval", "--model", filepath.Join(dir, "missing.safetensors")}, "missing.safetensors"},
		{[]string{"audit", "--model", ck, "--eps", "0"}, "--eps"},
	} {
		args := append(c.args, "--out", bad)
		_, stderr, code := sqnet(t, nil, args...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line containing %q", c.args, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("a failed command created its --out folder")
	}
}

// TestAutoAttackCLI trains a quantized checkpoint deployed hard and a plain one, on small and madry, and runs the
// AutoAttack path through the CLI at a token effort: eval --deploy both keeps, per deployed classifier, AutoAttack's
// cumulative steps (attack, gradient path, points attacked and broken, queries, time) and per example the attack
// that broke it; a checkpoint deployed hard is judged hard by default; --deploy both on a model without a
// quantizer evaluates its one classifier; attack --method runs one of AutoAttack's attacks.
func TestAutoAttackCLI(t *testing.T) {
	dir := t.TempDir()
	train := func(name string, args ...string) string {
		ck := filepath.Join(dir, name+".safetensors")
		args = append([]string{"train", "--limit", "200", "--test-limit", "20", "--epochs", "1", "--out", ck}, args...)
		if _, stderr, code := sqnet(t, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
		return ck
	}
	hard := train("hard", "--method", "noisy-sq", "--quant", "2,50,fixed", "--deploy", "hard")
	plain := train("plain", "--method", "natural", "--model", "madry")
	type step struct {
		Attack   string `json:"attack"`
		Gradient string `json:"gradient"`
		Attacked int    `json:"attacked"`
		Broken   int    `json:"broken"`
		Robust   int    `json:"robust"`
		Queries  int64  `json:"queries"`
	}
	var doc struct {
		Deploy  []string `json:"deploy"`
		Reports []struct {
			Deploy     string   `json:"deploy"`
			BrokenBy   []string `json:"broken_by"`
			Worst      int      `json:"worst_case_robust"`
			AutoAttack struct {
				Clean  int    `json:"clean"`
				Robust int    `json:"robust"`
				Steps  []step `json:"steps"`
			} `json:"autoattack"`
		} `json:"reports"`
	}
	const n = 12
	out := filepath.Join(dir, "eval-both")
	stdout, stderr, code := sqnet(t, nil, "eval", "--model", hard, "--suite", "smoke", "--limit", fmt.Sprint(n),
		"--deploy", "both", "--batch", "8", "--out", out)
	if code != 0 || !strings.Contains(stdout, "autoattack [hard]") || !strings.Contains(stdout, "worst case [soft]") {
		t.Fatalf("eval --deploy both: exit %d\n%s\n%s", code, stdout, stderr)
	}
	raw, _ := os.ReadFile(filepath.Join(out, "eval.json"))
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Reports) != 2 || doc.Reports[0].Deploy != "soft" ||
		doc.Reports[1].Deploy != "hard" {
		t.Fatalf("eval.json: %v\n%s", err, raw)
	}
	want := []string{"apgd-ce", "apgd-ce/bpda", "apgd-t", "apgd-t/bpda", "fab-t", "fab-t/bpda", "square"}
	for _, rep := range doc.Reports {
		aa := rep.AutoAttack
		if len(aa.Steps) != len(want) || len(rep.BrokenBy) != n {
			t.Fatalf("%s: %d steps, %d examples in broken_by:\n%s", rep.Deploy, len(aa.Steps), len(rep.BrokenBy), raw)
		}
		robust := aa.Clean
		for i, s := range aa.Steps {
			if s.Attack != want[i] || s.Robust != robust-s.Broken || s.Robust > s.Attacked || (s.Attacked > 0 && s.Queries <= 0) {
				t.Errorf("%s step %d %+v: want %s, cumulative from %d robust, queries counted", rep.Deploy, i, s,
					want[i], robust)
			}
			robust = s.Robust
		}
		broken := 0
		for _, by := range rep.BrokenBy {
			if by != "" {
				broken++
			}
		}
		if aa.Robust != robust || rep.Worst != n-broken || rep.Worst > aa.Robust {
			t.Errorf("%s: AutoAttack leaves %d (steps: %d), worst case %d with %d broken of %d", rep.Deploy,
				aa.Robust, robust, rep.Worst, broken, n)
		}
	}
	stdout, stderr, code = sqnet(t, nil, "eval", "--model", hard, "--suite", "smoke", "--limit", "4", "--batch", "4")
	if code != 0 || !strings.Contains(stdout, "deployed hard quantizer") || strings.Contains(stdout, "[soft]") {
		t.Errorf("eval of a checkpoint deployed hard: exit %d\n%s\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = sqnet(t, nil, "eval", "--model", plain, "--suite", "smoke", "--limit", "4", "--batch", "4",
		"--deploy", "both")
	if code != 0 || !strings.Contains(stdout, "deployed plain") || !strings.Contains(stdout, "autoattack") {
		t.Errorf("eval --deploy both without a quantizer: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, m := range []string{"apgd-t", "fab-t", "square"} {
		stdout, stderr, code = sqnet(t, nil, "attack", "--model", hard, "--method", m, "--limit", "4", "--batch", "4",
			"--iters", "3", "--targets", "1", "--queries", "10", "--deploy", "both")
		if code != 0 || strings.Count(stdout, "robust accuracy") != 2 {
			t.Errorf("attack --method %s --deploy both: exit %d\n%s\n%s", m, code, stdout, stderr)
		}
	}
}

// TestShardedEvalMerge: an evaluation split into N shards (eval --shard i/N) and merged (sqnet merge, shards given
// out of order) equals the unsharded run's eval.json in everything but seconds and submits, for N = 3, N = 1 and
// N = 3 over 2 images (an empty shard) — every attack draws its randomness per example, whatever batch or shard it
// runs in. Bad shard flags and inconsistent shard sets are one-line errors, exit 2, with nothing written.
func TestShardedEvalMerge(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "sq.safetensors")
	if _, stderr, code := sqnet(t, nil, "train", "--limit", "200", "--test-limit", "20", "--epochs", "1", "--method",
		"noisy-sq", "--quant", "2,50", "--out", ck); code != 0 {
		t.Fatal(stderr)
	}
	// ε = 0.4 so that every kind of attack breaks something and some examples survive.
	evalN := func(limit int, out string, extra ...string) {
		t.Helper()
		args := append([]string{"eval", "--model", ck, "--suite", "smoke", "--limit", fmt.Sprint(limit), "--eps", "0.4",
			"--deploy", "both", "--batch", "5", "--seed", "3", "--out", filepath.Join(dir, out)}, extra...)
		if _, stderr, code := sqnet(t, nil, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	eval := func(out string, extra ...string) { t.Helper(); evalN(13, out, extra...) }
	eval("full")
	for i := range 3 {
		eval(fmt.Sprintf("s%d", i), "--shard", fmt.Sprintf("%d/3", i))
	}
	merged := filepath.Join(dir, "merged")
	stdout, stderr, code := sqnet(t, nil, "merge", filepath.Join(dir, "s2"), filepath.Join(dir, "s0"),
		filepath.Join(dir, "s1"), "--out", merged)
	if code != 0 || !strings.Contains(stdout, "merged 3 shards") {
		t.Fatalf("merge: exit %d\n%s\n%s", code, stdout, stderr)
	}
	full := sameEvalJSON(t, filepath.Join(dir, "full"), merged)
	// The comparison means something only if attacks broke some examples and left others.
	by := map[string]bool{}
	for _, rep := range full.(map[string]any)["reports"].([]any) {
		for _, b := range rep.(map[string]any)["broken_by"].([]any) {
			by[b.(string)] = true
		}
	}
	if !by[""] || len(by) < 3 {
		t.Fatalf("the whole run's broken_by has %v: too little happened to compare", by)
	}
	for _, f := range []string{"eval.md", "accuracy-vs-eps.png", "examples.png"} {
		if _, err := os.Stat(filepath.Join(merged, f)); err != nil {
			t.Errorf("merge wrote no %s: %v", f, err)
		}
	}
	// N = 1, and N = 3 over 2 images, whose shard 0 is empty (SwiftShader, -short: the empty shard only — each eval
	// there costs seconds of pipeline compilation).
	if !testing.Short() {
		eval("one", "--shard", "0/1")
		if _, stderr, code := sqnet(t, nil, "merge", "--out", filepath.Join(dir, "merged-one"), filepath.Join(dir, "one")); code != 0 {
			t.Fatalf("merge of one shard: %s", stderr)
		}
		sameEvalJSON(t, filepath.Join(dir, "full"), filepath.Join(dir, "merged-one"))
	}
	evalN(2, "two")
	var twos []string
	for i := range 3 {
		twos = append(twos, filepath.Join(dir, fmt.Sprint("two-", i)))
		evalN(2, filepath.Base(twos[i]), "--shard", fmt.Sprintf("%d/3", i))
	}
	if raw, _ := os.ReadFile(filepath.Join(twos[0], "eval.json")); !strings.Contains(string(raw), `"n": 0`) {
		t.Fatalf("shard 0/3 of 2 images: want an empty shard's eval.json, got\n%s", raw)
	}
	if _, stderr, code := sqnet(t, nil, append([]string{"merge", "--out", filepath.Join(dir, "merged-two")}, twos...)...); code != 0 {
		t.Fatalf("merge with an empty shard: %s", stderr)
	}
	sameEvalJSON(t, filepath.Join(dir, "two"), filepath.Join(dir, "merged-two"))
	bad := [][]string{
		{"eval", "--model", ck, "--shard", "3/3"}, {"eval", "--model", ck, "--shard", "1"},
		{"eval", "--model", ck, "--shard", "0/0"}, {"merge", twos[0]},
		{"merge", filepath.Join(dir, "s0"), filepath.Join(dir, "s1")},
		{"merge", filepath.Join(dir, "s0"), filepath.Join(dir, "s1"), filepath.Join(dir, "s1")},
		{"merge", filepath.Join(dir, "full")}, {"merge", filepath.Join(dir, "nowhere")},
	}
	if !testing.Short() {
		eval("other-seed", "--shard", "2/3", "--seed", "4")
		bad = append(bad, []string{"merge", filepath.Join(dir, "s0"), filepath.Join(dir, "s1"), filepath.Join(dir, "other-seed")})
	}
	for i, args := range bad {
		out := filepath.Join(dir, fmt.Sprint("bad-out-", i))
		stdout, stderr, code := sqnet(t, nil, append(args, "--out", out)...)
		if code != 2 || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stderr == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, one line, no output", args, code, stdout, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: created %s", args, out)
		}
	}
}

// TestShardedEvalOnSlurm runs the sharded evaluation the way docs/usage.md tells a cluster user to: one Slurm array
// task per shard (sbatch --array=0-3, each task picking its shard from SLURM_ARRAY_TASK_ID), then sqnet merge —
// and the merged eval.json equals the unsharded run's. It needs a Slurm cluster (SLURM_CONF, sbatch, squeue):
// .ci/run starts a one-node one with scripts/slurm-local and sets SQNET_SLURM=required, so CI cannot skip it.
func TestShardedEvalOnSlurm(t *testing.T) {
	if testing.Short() {
		// .ci/run's SwiftShader pass: Slurm does the same there as in the lavapipe pass, which runs this test.
		t.Skip("-short (SwiftShader): the lavapipe pass submits the array job")
	}
	needSlurm(t)
	dir := t.TempDir()
	ck := filepath.Join(dir, "sq.safetensors")
	if _, stderr, code := sqnet(t, nil, "train", "--limit", "200", "--test-limit", "20", "--epochs", "1", "--method",
		"noisy-sq", "--quant", "2,50", "--out", ck); code != 0 {
		t.Fatal(stderr)
	}
	args := []string{"eval", "--model", ck, "--suite", "smoke", "--limit", "12", "--eps", "0.4", "--deploy", "both",
		"--seed", "5"}
	if _, stderr, code := sqnet(t, nil, append(args, "--out", filepath.Join(dir, "whole"))...); code != 0 {
		t.Fatal(stderr)
	}
	script := fmt.Sprintf("%s %s --shard $SLURM_ARRAY_TASK_ID/4 --out %s/shard-$SLURM_ARRAY_TASK_ID", sqnetBin,
		strings.Join(args, " "), dir)
	out, err := exec.Command("sbatch", "--parsable", "--array=0-3", "--job-name=sqnet-shards", "--chdir="+dir,
		"--output="+filepath.Join(dir, "slurm-%a.out"), "--wrap", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	job := strings.TrimSpace(strings.Split(string(out), ";")[0])
	deadline := time.Now().Add(10 * time.Minute)
	for {
		q, err := exec.Command("squeue", "-h", "-j", job, "-o", "%i %T").CombinedOutput()
		if err != nil {
			t.Fatalf("squeue -j %s: %v\n%s", job, err, q)
		}
		if strings.TrimSpace(string(q)) == "" {
			break
		}
		if time.Now().After(deadline) {
			exec.Command("scancel", job).Run()
			t.Fatalf("job %s still queued or running after 10 minutes:\n%s", job, q)
		}
		time.Sleep(time.Second)
	}
	shards := make([]string, 4)
	for i := range shards {
		shards[i] = filepath.Join(dir, fmt.Sprint("shard-", i))
		if _, err := os.Stat(filepath.Join(shards[i], "eval.json")); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("slurm-%d.out", i)))
			t.Fatalf("array task %d wrote no eval.json; its output:\n%s", i, log)
		}
	}
	merged := filepath.Join(dir, "merged")
	if _, stderr, code := sqnet(t, nil, append([]string{"merge", "--out", merged}, shards...)...); code != 0 {
		t.Fatalf("merge: %s", stderr)
	}
	sameEvalJSON(t, filepath.Join(dir, "whole"), merged)
}

// needSlurm skips the test without a Slurm cluster (SLURM_CONF, sbatch, squeue), and fails it instead where
// SQNET_SLURM=required (.ci/run starts a one-node cluster with scripts/slurm-local and sets it, so CI cannot skip).
func needSlurm(t *testing.T) {
	t.Helper()
	_, errB := exec.LookPath("sbatch")
	_, errQ := exec.LookPath("squeue")
	if os.Getenv("SLURM_CONF") == "" || errB != nil || errQ != nil {
		if os.Getenv("SQNET_SLURM") == "required" {
			t.Fatalf("SQNET_SLURM=required but no Slurm here (SLURM_CONF %q, sbatch: %v, squeue: %v)",
				os.Getenv("SLURM_CONF"), errB, errQ)
		}
		t.Skip("no Slurm cluster (scripts/slurm-local start sets one up; CI runs this test)")
	}
}

// sameEvalJSON fails unless the eval.json in folder merged equals the one in folder whole in everything but
// seconds and submits (how the work was split and timed); it returns whole's, decoded.
func sameEvalJSON(t *testing.T, whole, merged string) any {
	t.Helper()
	load := func(dir string) (any, []byte) {
		raw, err := os.ReadFile(filepath.Join(dir, "eval.json"))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(withoutKeys(v, "seconds", "submits"), "", " ")
		return v, b
	}
	v, wb := load(whole)
	_, mb := load(merged)
	if !bytes.Equal(wb, mb) {
		t.Fatalf("the merged shards differ from the whole run:\n%s", firstDiff(string(wb), string(mb)))
	}
	return v
}

// withoutKeys returns a decoded JSON value without the object keys named.
func withoutKeys(v any, keys ...string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if !slices.Contains(keys, k) {
				out[k] = withoutKeys(e, keys...)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutKeys(e, keys...)
		}
		return out
	}
	return v
}

// firstDiff shows where two texts first differ, with a few lines of context.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < min(len(la), len(lb)); i++ {
		if la[i] != lb[i] {
			lo := max(0, i-3)
			return fmt.Sprintf("line %d:\n--- whole run\n%s\n--- merged\n%s", i+1,
				strings.Join(la[lo:min(len(la), i+3)], "\n"), strings.Join(lb[lo:min(len(lb), i+3)], "\n"))
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(la), len(lb))
}

// TestReproduceSmoke runs the whole reproduction pipeline on a tiny budget and checks its outputs.
func TestReproduceSmoke(t *testing.T) {
	out := filepath.Join(t.TempDir(), "repro")
	stdout, stderr, code := sqnet(t, nil, "reproduce", "mnist", "--budget", "smoke", "--out", out, "--quant",
		"2,50,fixed", "--noise-eps", "0.4", "--alpha-epochs", "20", "--deploy", "both", "--eval-limit", "10")
	if code != 0 {
		t.Fatalf("reproduce: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"results.md", "results.json", "robust-vs-time.png", "checkpoints/small-noisy-sq.safetensors",
		"checkpoints/small-pgd-at.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "results.md"))
	// smoke gives pgd-at a tenth of noisy-sq's time, so the time budget stops it after its first step.
	// --deploy both: a row for each of noisy-sq's classifiers, one for the models without a quantizer.
	for _, want := range []string{"| noisy-sq, soft quantizer |", "| noisy-sq, hard quantizer |", "| pgd-at | 0.50 | 50 |",
		"| natural | 1 |", "first 10 test images", "bpda-5×1", "worst case", "pgd-at costs",
		"pgd-at stopped early: time budget", "noisy-sq settings: quantizer 2,50,fixed, ε_n = 0.4, α by epoch 20 then 50"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if _, stderr, code := sqnet(t, []string{"SQNET_DATA="}, "reproduce", "cifar10"); code != 2 ||
		!strings.Contains(stderr, "--data") {
		t.Errorf("reproduce cifar10 without its data: exit %d, %q; want 2 and where to point --data", code, stderr)
	}
	if _, _, code := sqnet(t, nil, "reproduce", "imagenet"); code != 2 {
		t.Errorf("reproduce imagenet: exit %d, want 2", code)
	}
	if _, stderr, code := sqnet(t, nil, "reproduce", "mnist", "--budget", "huge"); code != 2 ||
		!strings.Contains(stderr, "mini, quick, paper, full, smoke") {
		t.Errorf("reproduce --budget huge: exit %d, stderr %q; want 2 and the budgets listed", code, stderr)
	}
	for _, c := range [][]string{{"--epochs", "0"}, {"--quant", "1,50"}, {"--alpha-epochs", "0"}, {"--noise-eps", "-1"},
		{"--eval-limit", "0"}, {"--deploy", "sideways"}} {
		if _, stderr, code := sqnet(t, nil, append([]string{"reproduce", "mnist"}, c...)...); code != 2 ||
			strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("reproduce %v: exit %d, stderr %q; want 2 and one line", c, code, stderr)
		}
	}
}

// TestNoisySQEpochs checks that --epochs changes noisy-sq's plan only, in a copy: the budgets table stays as it is.
func TestNoisySQEpochs(t *testing.T) {
	b := budgets["paper"].withNoisySQEpochs(3)
	for i, p := range b.plans {
		want := budgets["paper"].plans[i].Epochs
		if p.Method == "noisy-sq" {
			want = 3
		}
		if p.Epochs != want {
			t.Errorf("%s: %d epochs, want %d", p.Method, p.Epochs, want)
		}
	}
	if n := budgets["paper"].plans[0].Epochs; n != 1 {
		t.Errorf("the paper budget itself changed: noisy-sq %d epochs", n)
	}
}

// TestBenchAttackCLI times a short PGD, APGD-CE and Square on both models as JSON, with --profile's per-op device
// times on stderr: PGD and APGD attack a batch in one submit each, Square reports its forward queries/s and the
// share of its time outside them, and the profile names the ops that dominate an attack step.
func TestBenchAttackCLI(t *testing.T) {
	rounds := 2
	if testing.Short() { // SwiftShader compiles each APGD round's pipelines again: 20 s more for a second round
		rounds = 1
	}
	stdout, stderr, code := sqnet(t, nil, "bench", "attack", "--images", "4", "--steps", "2", "--apgd-iters", "5",
		"--square-iters", "40", "--rounds", strconv.Itoa(rounds), "--json", "--profile")
	if code != 0 {
		t.Fatalf("bench attack: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var doc struct {
		Device  string `json:"device"`
		Results []struct {
			Model     string    `json:"model"`
			Attack    string    `json:"attack"`
			Images    int       `json:"images"`
			Seconds   float64   `json:"seconds"`
			Rounds    []float64 `json:"round_seconds"`
			Warmup    float64   `json:"warmup_seconds"`
			Submits   int       `json:"submits"`
			Queries   float64   `json:"queries_per_second"`
			Elsewhere *float64  `json:"elsewhere_share"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.Device == "" || len(doc.Results) != 6 {
		t.Fatalf("bench attack --json: %v\n%s", err, stdout)
	}
	for i, r := range doc.Results {
		model, attack := []string{"small", "madry"}[i/3], []string{"pgd-2", "apgd-ce", "square"}[i%3]
		if r.Model != model || r.Attack != attack || r.Seconds <= 0 {
			t.Errorf("row %d %+v: want %s on %s with a positive time", i, r, attack, model)
		}
		switch attack {
		case "square":
			if r.Queries <= 0 || r.Elsewhere == nil || *r.Elsewhere < 0 || *r.Elsewhere > 1 {
				t.Errorf("%+v: square wants queries/s and a share of its time outside the forward passes", r)
			}
		default:
			if r.Images != 4 || r.Submits != 1 {
				t.Errorf("%+v: want 4 images in one submit", r)
			}
			if len(r.Rounds) != rounds || r.Seconds != median(r.Rounds) || (attack != "apgd-ce") != (r.Warmup > 0) {
				t.Errorf("%+v: want %d rounds, their median, and a warm-up time for PGD", r, rounds)
			}
		}
	}
	if _, stderr, code := sqnet(t, nil, "bench", "attack", "--rounds", "0"); code != 2 || !strings.Contains(stderr, "--rounds 0") {
		t.Errorf("bench attack --rounds 0: exit %d, stderr %q; want exit 2 naming --rounds", code, stderr)
	}
	for _, want := range []string{"profile of PGD on small", "profile of PGD on madry", "conv2d backward", "relu+maxpool",
		"pgd step", "GFLOP/s", "GB/s", "outside the command buffer"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--profile output lacks %q:\n%s", want, stderr)
		}
	}
}

// TestBenchTrainCLI times natural, noisy-sq and pgd-at on two batches each: the table names the device and every
// method with its image count, and pgd-at's inner attack must show in its cost per image (about 6× noisy-sq with
// PGD-10 on lavapipe, 4× with PGD-5; 2× leaves room for a busy machine, and a pgd-at that skipped its attack
// would measure about 1×). --json is checked on one cheap method, and bad flags are one line and exit 2.
func TestBenchTrainCLI(t *testing.T) {
	steps := "10"
	if testing.Short() { // SwiftShader: PGD-10 on two batches takes 20 s there
		steps = "5"
	}
	stdout, stderr, code := sqnet(t, nil, "bench", "train", "--images", "100", "--methods", "natural,noisy-sq,pgd-at",
		"--pgd-steps", steps, "--rounds", "1", "--quant", "2,200,fixed", "--profile")
	if code != 0 {
		t.Fatalf("bench train: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// --profile: every op of a step of each method, each convolution once per forward pass (pgd-at: the attack's
	// steps and the training step's) — as conv2d, or conv2d+relu+maxpool where the device fuses the pooling into it
	// —, rates, and the time outside the command buffer.
	_, pgdProfile, ok := strings.Cut(stderr, "profile of a pgd-at step on small: ")
	if !ok || !strings.Contains(stderr, "profile of a natural step on small") ||
		!strings.Contains(stderr, "profile of a noisy-sq step on small") || !strings.Contains(pgdProfile, "GFLOP/s") ||
		!strings.Contains(pgdProfile, "GB/s") || !strings.Contains(pgdProfile, "outside the command buffer") {
		t.Fatalf("bench train --profile: no profile of each method:\n%s", stderr)
	}
	var convs int
	for _, l := range strings.Split(pgdProfile, "\n") {
		// "conv2d  22 …" and "conv2d+relu+maxpool  22 …", not "conv2d backward  22 …"
		if f := strings.Fields(l); len(f) > 2 && (f[0] == "conv2d" || f[0] == "conv2d+relu+maxpool") {
			if n, err := strconv.Atoi(f[1]); err == nil {
				convs += n
			}
		}
	}
	if n, _ := strconv.Atoi(steps); convs != 2*(n+1) {
		t.Errorf("pgd-at's profile counts %d conv2d ops, want 2·(%s + 1):\n%s", convs, steps, pgdProfile)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "device: ") || !strings.Contains(lines[1], "PGD-"+steps) ||
		!strings.Contains(lines[1], "quantizer 2,200,fixed") || !strings.HasPrefix(lines[2], "method") {
		t.Fatalf("bench train: want device, settings (with --quant's quantizer), header and 3 rows:\n%s", stdout)
	}
	ratio := map[string]float64{}
	for _, l := range lines[3:] {
		var method, spread, cost string
		var images int
		var secs, ips, ms, r float64
		if _, err := fmt.Sscanf(l, "%s %d %f %s %f %f %f× %s", &method, &images, &secs, &spread, &ips, &ms, &r,
			&cost); err != nil || images != 100 || secs <= 0 || spread != "—" || cost != "noisy-sq" {
			t.Fatalf("row %q: %v (want method, 100 images, seconds, spread — of one round, images/s, ms/image, "+
				"N× noisy-sq)", l, err)
		}
		ratio[method] = r
	}
	if ratio["noisy-sq"] != 1 || ratio["pgd-at"] < 2 {
		t.Errorf("cost per image relative to noisy-sq %v: want noisy-sq 1.0× and pgd-at > 2×\n%s", ratio, stdout)
	}

	stdout, stderr, code = sqnet(t, nil, "bench", "train", "--images", "50", "--methods", "natural", "--json",
		"--rounds", "2")
	var doc struct {
		Device  string `json:"device"`
		Results []struct {
			Images  int       `json:"train_images"`
			Seconds float64   `json:"train_seconds"`
			Rounds  []float64 `json:"round_seconds"`
			Cost    *float64  `json:"cost_vs_noisy_sq"`
		} `json:"results"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &doc) != nil || doc.Device == "" || len(doc.Results) != 1 ||
		doc.Results[0].Images != 50 || doc.Results[0].Cost != nil || len(doc.Results[0].Rounds) != 2 {
		t.Fatalf("bench train --json: exit %d, want one natural row of 50 images, two rounds and no noisy-sq ratio"+
			"\n%s\n%s", code, stdout, stderr)
	}
	if r := doc.Results[0]; r.Seconds != median(r.Rounds) {
		t.Errorf("bench train --json: train_seconds %v is not the median of the rounds %v", r.Seconds, r.Rounds)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--methods", "natural,magic"}, `unknown method "magic"`},
		{[]string{"--methods", "natural,natural"}, "listed twice"},
		{[]string{"--images", "10"}, "--images 10"},
		{[]string{"--model", "resnet"}, "--model"},
		{[]string{"--pgd-steps", "0"}, "--pgd-steps 0"},
		{[]string{"--rounds", "0"}, "--rounds 0"},
		{[]string{"--quant", "2,0"}, "α = 0"},
	} {
		_, stderr, code := sqnet(t, nil, append([]string{"bench", "train"}, c.args...)...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("bench train %v: exit %d, stderr %q; want exit 2 and one line containing %q", c.args, code, stderr,
				c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
	xs := []float64{2, 1}
	if median(xs); xs[0] != 2 {
		t.Errorf("median sorted its argument: %v", xs)
	}
}

// TestResultsIndexFresh: docs/results/README.md is what `sqnet leaderboard docs/results` generates from the result
// files in the repo, so a result added without regenerating the index fails here (as stale SPIR-V does); a
// folder that is not one, or holds no results, is one line and exit 2.
func TestResultsIndexFresh(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "results")
	out := filepath.Join(t.TempDir(), "index.md")
	if _, stderr, code := sqnet(t, nil, "leaderboard", dir, "--out", out); code != 0 {
		t.Fatalf("leaderboard: exit %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(out)
	want, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("docs/results/README.md is not what `sqnet leaderboard docs/results --out docs/results/README.md` "+
			"writes (%v); regenerate it", err)
	}
	if !strings.Contains(string(got), "| 1 |") {
		t.Fatalf("the index ranks nothing:\n%s", got)
	}
	empty := t.TempDir()
	for _, args := range [][]string{{"leaderboard", filepath.Join(empty, "missing")}, {"leaderboard", empty}} {
		_, stderr, code := sqnet(t, nil, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}

// TestResumeRemembersTheRun: a run with --limit, --test-limit, --alpha-epochs and SGD settings killed with SIGKILL
// after its first epoch, then resumed with --resume alone, ends bit-identical to the uninterrupted run (every
// setting comes from the checkpoint); a flag given with --resume that contradicts the checkpoint is one line and
// exit 2 naming both values, and --epochs may extend the run.
func TestResumeRemembersTheRun(t *testing.T) {
	dir := t.TempDir()
	args := []string{"train", "--method", "noisy-sq", "--quant", "2,50", "--alpha-epochs", "20", "--limit", "1500",
		"--test-limit", "60", "--epochs", "2", "--optimizer", "sgd", "--lr", "0.02", "--momentum", "0.8",
		"--weight-decay", "0.0005", "--seed", "3"}
	straight := filepath.Join(dir, "straight.safetensors")
	if _, stderr, code := sqnet(t, nil, append(args, "--out", straight)...); code != 0 {
		t.Fatalf("straight run: %s", stderr)
	}
	cut := filepath.Join(dir, "cut.safetensors")
	cmd := exec.Command(sqnetBin, append(args, "--out", cut)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it as soon as the first epoch's checkpoint exists: it dies in epoch 2 (or, on a fast device, later —
	// resuming from any checkpoint must give the same bits).
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		if ck, err := model.Load(cut); err == nil && ck.Epoch >= 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, stderr, code := sqnet(t, nil, "train", "--resume", cut, "--out", cut); code != 0 {
		t.Fatalf("resume with no other flag: exit %d: %s", code, stderr)
	}
	want, _ := model.Load(straight)
	got, err := model.Load(cut)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != want.Step {
		t.Fatalf("the resumed run ended at step %d, the straight run at step %d", got.Step, want.Step)
	}
	for name, w := range want.Weights {
		for i := range w {
			if math.Float32bits(got.Weights[name][i]) != math.Float32bits(w[i]) {
				t.Fatalf("%s[%d] = %v after kill -9 and resume, %v straight", name, i, got.Weights[name][i], w[i])
			}
		}
	}
	for _, c := range []struct{ flag, value, want string }{
		{"--limit", "0", "--limit 1500"}, {"--lr", "0.1", "--lr 0.02"}, {"--momentum", "0.9", "--momentum 0.8"},
		{"--alpha-epochs", "50", "--alpha-epochs 20"}, {"--method", "natural", "--method noisy-sq"},
		{"--test-limit", "10", "--test-limit 60"},
	} {
		_, stderr, code := sqnet(t, nil, "train", "--resume", cut, "--out", filepath.Join(dir, "x.safetensors"),
			c.flag, c.value)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, c.want) ||
			!strings.Contains(stderr, c.flag+" "+c.value) {
			t.Errorf("--resume with %s %s: exit %d, stderr %q; want exit 2, one line naming %q", c.flag, c.value, code,
				stderr, c.want)
		}
	}
	if _, stderr, code := sqnet(t, nil, "train", "--resume", cut, "--out", filepath.Join(dir, "longer.safetensors"),
		"--epochs", "3", "--limit", "1500"); code != 0 {
		t.Errorf("--epochs 3 (and an agreeing --limit) with --resume: exit %d: %s", code, stderr)
	}
}

// TestBadFlagsBeforeWork: out-of-range flags of train, eval, attack and audit are one line on stderr, nothing on
// stdout, exit 2 and no file in --out — checked before any header, device or checkpoint.
func TestBadFlagsBeforeWork(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "missing-anyway.safetensors") // the flags must fail before the checkpoint is read
	for _, cmd := range [][]string{{"train"}, {"eval", "--model", ck}, {"attack", "--model", ck}, {"audit", "--model", ck}} {
		for _, bad := range [][]string{{"--epochs", "-1"}, {"--eps", "2"}, {"--eps", "-0.1"}, {"--lr", "-1"}} {
			out := filepath.Join(dir, "out")
			args := append(append(append([]string{}, cmd...), bad...), "--out", out)
			stdout, stderr, code := sqnet(t, nil, args...)
			if code != 2 || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stderr == "" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, one line, no output", args, code, stdout, stderr)
			}
			if strings.Contains(stderr, "missing-anyway") {
				t.Errorf("%v: the checkpoint was opened before the flags were checked: %q", args, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%v: created %s", args, out)
			}
		}
	}
}

// TestREADMECommands: every sqnet command line the README shows in a shell block (```sh) names a real command, and
// every flag on it, [optional] or not, exists for that command — the front door never advertises a flag the CLI
// lacks.
func TestREADMECommands(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines, inCode, checked := strings.Split(string(raw), "\n"), false, 0
	for _, line := range lines {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode && strings.TrimPrefix(line, "```") == "sh"
			continue
		}
		fields := strings.Fields(line)
		if !inCode || len(fields) == 0 || (fields[0] != "sqnet" && fields[0] != "bin/sqnet") {
			continue
		}
		var words []string // the command path: the words before the first flag, comment or placeholder
		for _, f := range fields[1:] {
			if strings.HasPrefix(f, "-") || strings.HasPrefix(f, "#") || strings.HasPrefix(f, "[") ||
				strings.ToLower(f) != f {
				break
			}
			words = append(words, f)
		}
		root := newRoot()
		cmd, rest, err := root.Find(words)
		if err != nil || cmd == root {
			t.Errorf("README: %q: no such command (%v)", line, err)
			continue
		}
		if len(rest) > 0 && cmd.Args != nil {
			if err := cmd.Args(cmd, rest); err != nil {
				t.Errorf("README: %q: %v", line, err)
			}
		}
		for _, f := range fields[1:] {
			if f == "#" || strings.HasPrefix(f, "#") {
				break
			}
			f = strings.TrimPrefix(f, "[")
			if !strings.HasPrefix(f, "--") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			name = strings.TrimRight(name, "]")
			if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil &&
				root.PersistentFlags().Lookup(name) == nil {
				t.Errorf("README: %q: %s has no flag --%s", line, cmd.CommandPath(), name)
			}
		}
		checked++
	}
	if checked < 5 {
		t.Errorf("the README shows %d sqnet command lines; the test expects its command blocks", checked)
	}
}
