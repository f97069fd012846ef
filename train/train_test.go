package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk/vktest"
)

func quick(t *testing.T, out string) Config {
	c := Defaults()
	c.Out = out
	c.Limit, c.TestLimit = 300, 200
	c.Epochs = 2
	return c
}

// TestNaturalLearns trains small on 3000 real MNIST images for 2 epochs (1000 with -short, as test-swiftshader
// runs) and expects far-above-chance accuracy.
func TestNaturalLearns(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	cfg := quick(t, filepath.Join(t.TempDir(), "m.safetensors"))
	cfg.Limit, cfg.TestLimit = 3000, 1000
	minAcc := 0.85
	if testing.Short() {
		cfg.Limit, cfg.TestLimit, minAcc = 1000, 300, 0.7
	}
	res, err := Run(context.Background(), lib, cfg)
	if err != nil {
		t.Fatal(err)
	}
	last := res.Epochs[len(res.Epochs)-1]
	t.Logf("small, %d images × 2 epochs: train loss %.3f, test accuracy %.1f%% (%.0f images/s)", cfg.Limit,
		last.TrainLoss, 100*last.TestAcc, last.ImagesPerSec)
	if last.TestAcc < minAcc {
		t.Fatalf("test accuracy %.1f%% after 2 epochs on %d images; want ≥ %.0f%%", 100*last.TestAcc, cfg.Limit,
			100*minAcc)
	}
	if res.Epochs[0].TrainLoss <= last.TrainLoss {
		t.Errorf("training loss did not fall: %v then %v", res.Epochs[0].TrainLoss, last.TrainLoss)
	}
	ck, err := model.Load(cfg.Out)
	if err != nil || ck.Epoch != 2 || ck.Step != res.Steps || ck.Method != "natural" {
		t.Fatalf("checkpoint after training: %+v, %v", ck, err)
	}
}

// TestResumeIsBitIdentical: 2 epochs straight, versus 1 epoch then --resume, versus an interruption in the middle
// of the first epoch then --resume, give bit-identical weights and optimizer state.
// TestResumeIsBitIdentical: a run split at an epoch boundary, or interrupted mid-epoch, then resumed ends with the
// same bits as a straight run — natural, noisy-sq, and noisy-sq with an annealed α (the straight run recompiles
// its step between the epochs; the resumed ones compile epoch 2's α directly).
func TestResumeIsBitIdentical(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	for _, c := range []struct {
		name, method string
		alphas       []float32
	}{{"natural", "natural", nil}, {"noisy-sq", "noisy-sq", nil}, {"noisy-sq/alpha-epochs=20", "noisy-sq", []float32{20}}} {
		t.Run(c.name, func(t *testing.T) { resumeIdentical(t, lib, c.method, c.alphas) })
	}
}

func resumeIdentical(t *testing.T, lib *kernels.Lib, method string, alphas []float32) {
	dir := t.TempDir()
	quick := func(t *testing.T, out string) Config {
		c := quick(t, out)
		c.Method, c.AlphaEpochs = method, alphas
		return c
	}
	straight := quick(t, filepath.Join(dir, "straight.safetensors"))
	if _, err := Run(context.Background(), lib, straight); err != nil {
		t.Fatal(err)
	}
	split := quick(t, filepath.Join(dir, "split.safetensors"))
	split.Epochs = 1
	if _, err := Run(context.Background(), lib, split); err != nil {
		t.Fatal(err)
	}
	split.Epochs, split.Resume = 2, split.Out
	if _, err := Run(context.Background(), lib, split); err != nil {
		t.Fatal(err)
	}
	// Interrupted in the middle of the first epoch: a context cancelled before Run stops after the first step and
	// saves it; resuming finishes both epochs.
	cut := quick(t, filepath.Join(dir, "cut.safetensors"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, lib, cut); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("a cancelled run returned %v, want ErrInterrupted", err)
	}
	if ck, err := model.Load(cut.Out); err != nil || ck.Step != 1 {
		t.Fatalf("interrupted checkpoint: step %v, %v; want step 1", ck, err)
	}
	cut.Resume = cut.Out
	if _, err := Run(context.Background(), lib, cut); err != nil {
		t.Fatal(err)
	}
	want, err := model.Load(straight.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{split.Out, cut.Out} {
		got, err := model.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Step != want.Step || got.Epoch != want.Epoch {
			t.Fatalf("%s: step %d epoch %d, want %d %d", path, got.Step, got.Epoch, want.Step, want.Epoch)
		}
		for _, set := range []struct {
			name      string
			got, want model.Weights
		}{{"weights", got.Weights, want.Weights}, {"optimizer state", got.Optim, want.Optim}} {
			if len(set.got) != len(set.want) {
				t.Fatalf("%s: %d %s tensors, want %d", path, len(set.got), set.name, len(set.want))
			}
			for name, w := range set.want {
				for i := range w {
					if math.Float32bits(set.got[name][i]) != math.Float32bits(w[i]) {
						t.Fatalf("%s: %s %s[%d] = %v, straight run has %v", path, set.name, name, i, set.got[name][i], w[i])
					}
				}
			}
		}
	}
}

// TestAlphaEpochs: an annealed α changes training (epoch 1 at α = 20 differs from α = 50), the checkpoint keeps the
// final α and the schedule, and each epoch trains with its own α.
func TestAlphaEpochs(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	dir := t.TempDir()
	plain := quick(t, filepath.Join(dir, "plain.safetensors"))
	plain.Method, plain.Limit, plain.TestLimit = "noisy-sq", 100, 50 // two steps an epoch: enough to differ
	annealed := plain
	annealed.Out, annealed.AlphaEpochs = filepath.Join(dir, "annealed.safetensors"), []float32{20}
	for _, c := range []Config{plain, annealed} {
		if _, err := Run(context.Background(), lib, c); err != nil {
			t.Fatal(err)
		}
	}
	a, err := model.Load(annealed.Out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := model.Load(plain.Out)
	if err != nil {
		t.Fatal(err)
	}
	if a.Quant == nil || a.Quant.Alpha != quant.Default.Alpha || a.Extra["alpha_epochs"] != "20" {
		t.Fatalf("annealed checkpoint: quantizer %+v, alpha_epochs %q; want α %v and \"20\"", a.Quant,
			a.Extra["alpha_epochs"], quant.Default.Alpha)
	}
	same := true
	for name, w := range p.Weights {
		for i := range w {
			same = same && w[i] == a.Weights[name][i]
		}
	}
	if same {
		t.Fatal("training with α = 20 in epoch 1 gave the same weights as α = 50 throughout")
	}
	annealed.Quant = &quant.Default
	if got := annealed.alphaAt(0); got != 20 {
		t.Errorf("alphaAt(0) = %v, want 20", got)
	}
	if got := annealed.alphaAt(1); got != quant.Default.Alpha {
		t.Errorf("alphaAt(1) = %v, want %v", got, quant.Default.Alpha)
	}
	for _, s := range []string{"", "20, 50", "7.5"} {
		as, err := ParseAlphas(s)
		if err != nil || FormatAlphas(as) != strings.ReplaceAll(s, " ", "") {
			t.Errorf("ParseAlphas(%q) = %v, %v; formats back as %q", s, as, err, FormatAlphas(as))
		}
	}
}

func TestConfigErrors(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	for _, mutate := range []func(*Config){
		func(c *Config) { c.Epochs = 0 },
		func(c *Config) { c.Batch = -1 },
		func(c *Config) { c.Method = "magic" },
		func(c *Config) { c.Optimizer.Kind = "lbfgs" },
		func(c *Config) { c.Optimizer.LR = 0 },
		func(c *Config) { c.Model = "resnet" },
		func(c *Config) { c.Dataset = "imagenet" },
		func(c *Config) { c.Batch = 10000; c.Limit = 100 },
		func(c *Config) { c.Resume = "/nonexistent.safetensors" },
		func(c *Config) { c.TimeBudget = -time.Second },
		func(c *Config) { c.Augment = "mixup" },
		func(c *Config) { c.Optimizer.Schedule = "step" },
		func(c *Config) { c.AlphaEpochs = []float32{20} },                          // natural: no quantizer
		func(c *Config) { c.Method, c.AlphaEpochs = "noisy-sq", []float32{20, 0} }, // α must be > 0
	} {
		c := quick(t, filepath.Join(t.TempDir(), "m.safetensors"))
		mutate(&c)
		if _, err := Run(context.Background(), lib, c); err == nil {
			t.Errorf("config %+v was accepted", c)
		}
	}
}

// TestMethodsRun trains every method a few steps (pgd-at with 3 inner steps) and checks the checkpoint records the
// method and that noisy-sq got its default quantizer.
func TestMethodsRun(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	for _, m := range Methods {
		t.Run(m, func(t *testing.T) {
			c := quick(t, filepath.Join(t.TempDir(), "m.safetensors"))
			c.Method, c.Epochs, c.Limit, c.PGDSteps = m, 1, 100, 3
			res, err := Run(context.Background(), lib, c)
			if err != nil {
				t.Fatal(err)
			}
			ck, err := model.Load(c.Out)
			if err != nil || ck.Method != m || res.Steps != 2 {
				t.Fatalf("checkpoint %v, %v, %d steps", ck, err, res.Steps)
			}
			if (m == "noisy-sq") != (ck.Quant != nil) {
				t.Errorf("%s: quantizer %v", m, ck.Quant)
			}
		})
	}
}

// TestTimeBudget: a run whose budget is spent after its first step stops there, evaluates and saves like a whole
// epoch, and says why; the checkpoint records the one step.
func TestTimeBudget(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	c := quick(t, filepath.Join(t.TempDir(), "m.safetensors"))
	c.Epochs, c.TimeBudget = 3, time.Nanosecond
	res, err := Run(context.Background(), lib, c)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := model.Load(c.Out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 1 || len(res.Epochs) != 1 || res.Stopped == "" || ck.Step != 1 || res.Epochs[0].TestAcc <= 0 {
		t.Fatalf("1 ns budget: %d steps, %d epochs, stopped %q, checkpoint at step %d, test accuracy %v", res.Steps,
			len(res.Epochs), res.Stopped, ck.Step, res.Epochs[0].TestAcc)
	}
}

func TestOverfitGuardRule(t *testing.T) {
	for _, c := range []struct {
		best, now float64
		want      bool
	}{{0.6, 0.55, false}, {0.6, 0.41, false}, {0.6, 0.39, true}, {0.8, 0.0, true}, {0.1, 0.0, false}} {
		if got := collapsed(c.best, c.now); got != c.want {
			t.Errorf("collapsed(%v, %v) = %v, want %v", c.best, c.now, got, c.want)
		}
	}
}

// TestFixedThresholdsTrainNothingForThem: with --quant …,fixed the step computes neither the quantizer's backward
// pass nor the first convolution's input gradient (only threshold gradients needed them), and the thresholds leave
// training as they started.
func TestFixedThresholdsTrainNothingForThem(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	cfg := quick(t, filepath.Join(t.TempDir(), "fixed.safetensors"))
	cfg.Method, cfg.Epochs = "noisy-sq", 1
	q := quant.Default
	q.Fixed = true
	cfg.Quant = &q
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := model.Lookup("small", 1, 28, 28, 10)
	if err != nil {
		t.Fatal(err)
	}
	s, err := compile(lib, cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	defer s.prog.Close()
	if err := s.load(a.Init(cfg.Quant, cfg.Seed), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.prepare(1); err != nil {
		t.Fatal(err)
	}
	if err := s.prog.Submit(); err != nil {
		t.Fatal(err)
	}
	prof, err := s.prog.Profile()
	if err != nil {
		t.Skipf("no timestamps to list the step's ops: %v", err)
	}
	for _, o := range prof.Ops {
		if strings.HasPrefix(o.Name, "quantizer backward") {
			t.Errorf("the step with fixed thresholds runs %q", o.Name)
		}
	}
	if _, err := Run(context.Background(), lib, cfg); err != nil {
		t.Fatal(err)
	}
	ck, err := model.Load(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	want := kernels.DefaultThresholds(q.Levels)
	for i, v := range ck.Weights[model.ThresholdsName] {
		if math.Float32bits(v) != math.Float32bits(want[i]) {
			t.Fatalf("fixed threshold %d left training at %v, want %v", i, v, want[i])
		}
	}
}

// TestTrackingChangesNothing: OnTrack hears the model every TrackEvery steps inside each epoch (never at an epoch's
// end, which OnEpoch covers) with a training time that grows, its model is the one training has at that step,
// and a tracked run ends with the same bits as an untracked one.
func TestTrackingChangesNothing(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	dir := t.TempDir()
	plain := quick(t, filepath.Join(dir, "plain.safetensors")) // 6 steps an epoch, 2 epochs
	plain.Method = "noisy-sq"
	if _, err := Run(context.Background(), lib, plain); err != nil {
		t.Fatal(err)
	}
	tracked := plain
	tracked.Out = filepath.Join(dir, "tracked.safetensors")
	tracked.TrackEvery = 2
	var steps []int
	var secs []float64
	tracked.OnTrack = func(step int, s float64, ck *model.Checkpoint) error {
		if ck.Quant == nil || len(ck.Weights["fc2.bias"]) != 10 {
			return fmt.Errorf("step %d: the tracked model lacks its quantizer or weights", step)
		}
		steps, secs = append(steps, step), append(secs, s)
		return nil
	}
	res, err := Run(context.Background(), lib, tracked)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 4, 8, 10}; fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Fatalf("tracked at steps %v, want %v (every 2nd step, not at the ends of the 6-step epochs)", steps, want)
	}
	for i := 1; i < len(secs); i++ {
		if !(secs[i] > secs[i-1]) {
			t.Fatalf("training time went %v", secs)
		}
	}
	if last := res.Epochs[len(res.Epochs)-1].TrainSeconds; last < secs[len(secs)-1] {
		t.Errorf("the run's training time %.3f s is below a tracked point's %.3f s", last, secs[len(secs)-1])
	}
	a, _ := model.Load(plain.Out)
	b, err := model.Load(tracked.Out)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range a.Weights {
		for i := range w {
			if math.Float32bits(b.Weights[name][i]) != math.Float32bits(w[i]) {
				t.Fatalf("%s[%d]: tracking changed training", name, i)
			}
		}
	}
}
