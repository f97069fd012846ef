package attack_test

import (
	"context"
	"github.com/sqnet/sqnet/attack"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/train"
	"github.com/sqnet/sqnet/vk/vktest"
)

var (
	naturalOnce sync.Once
	naturalCk   *model.Checkpoint
)

// naturalSmall trains small naturally on 3000 real MNIST images (2 epochs, ~10 s on lavapipe; with -short, as
// test-swiftshader runs, 1000 images) once per test binary and returns it.
func naturalSmall(t *testing.T, lib *kernels.Lib) *model.Checkpoint {
	t.Helper()
	naturalOnce.Do(func() { naturalCk = trainNatural(t, lib) })
	if naturalCk == nil {
		t.Fatal("training the natural model failed")
	}
	return naturalCk
}

func trainNatural(t *testing.T, lib *kernels.Lib) *model.Checkpoint {
	cfg := train.Defaults()
	cfg.Out = filepath.Join(t.TempDir(), "small.safetensors")
	cfg.Limit, cfg.TestLimit, cfg.Epochs = 3000, 500, 2
	if testing.Short() {
		cfg.Limit, cfg.TestLimit = 1000, 100
	}
	if _, err := train.Run(context.Background(), lib, cfg); err != nil {
		t.Fatal(err)
	}
	ck, err := model.Load(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

func testImages(t *testing.T, n int) *data.Set {
	t.Helper()
	s, err := data.Load("mnist", os.Getenv(data.DataEnv), data.Test)
	if err != nil {
		t.Fatal(err)
	}
	return s.Subset(n)
}

// TestPGDBreaksNaturalModel: PGD-40 at ε = 0.3 drives a naturally trained model below 5% accuracy, FGSM is never
// stronger than PGD, and every adversarial example stays inside the ε-ball and [0, 1].
func TestPGDBreaksNaturalModel(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	ck := naturalSmall(t, lib)
	n, steps, minClean := 200, 40, 0.85
	if testing.Short() { // SwiftShader runs GEMMs ~20× slower than lavapipe: fewer images and steps
		n, steps, minClean = 50, 10, 0.7
	}
	set := testImages(t, n)
	run := func(cfg attack.Config) *attack.Result {
		a, err := attack.New(lib, ck, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		res, err := a.Run(set.Images, set.Labels, nil, set.N)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s ε=%.2f: accuracy %.1f%% (%d submits, %.1f s)", res.Name, res.Eps, 100*res.Accuracy, res.Submits,
			res.Seconds)
		return res
	}
	clean := run(attack.FGSM(0))
	fgsm := run(attack.FGSM(0.3))
	pgd := run(attack.PGD(0.3, max(0.01, 2.5*0.3/float32(steps)), steps, 1))
	if clean.Accuracy < minClean {
		t.Fatalf("clean accuracy %.1f%%: the model did not train", 100*clean.Accuracy)
	}
	if pgd.Accuracy >= 0.05 {
		t.Errorf("PGD-%d at ε=0.3 leaves %.1f%% accuracy on a natural model; want < 5%%", steps, 100*pgd.Accuracy)
	}
	if fgsm.Accuracy < pgd.Accuracy {
		t.Errorf("FGSM (%.1f%%) is stronger than PGD (%.1f%%): the iterative attack is broken", 100*fgsm.Accuracy,
			100*pgd.Accuracy)
	}
	if want := (n + 99) / 100; pgd.Submits != want {
		t.Errorf("PGD on %d images in batches of 100 took %d submits, want %d (one per batch)", n, pgd.Submits, want)
	}
	for i, v := range pgd.Adv {
		x0 := set.Images[i]
		if v < 0 || v > 1 || math.Abs(float64(v-x0)) > 0.3+1e-6 {
			t.Fatalf("adversarial pixel %d = %v from %v: outside [0,1] or the ε-ball", i, v, x0)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []attack.Config{
		func() attack.Config { c := attack.PGD(-0.1, 0.01, 10, 1); return c }(),
		func() attack.Config { c := attack.PGD(0.3, 0.01, 0, 1); return c }(),
		func() attack.Config { c := attack.PGD(0.3, 0.01, 10, 0); return c }(),
		func() attack.Config { c := attack.PGD(0.3, 0.01, 10, 1); c.Loss = "hinge"; return c }(),
		func() attack.Config { c := attack.PGD(float32(math.NaN()), 0.01, 10, 1); return c }(),
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v was accepted", c)
		}
	}
}

// TestAuditFlagsMaskedGradients: the audit passes an honest natural model and warns about a model whose input
// quantizer is so steep (α = 10⁴) that its true gradient vanishes — the masking that BPDA exposes — and, deployed
// with the hard quantizer and attacked through that gradient alone, the masking AutoAttack's black-box check
// exposes: Square breaks what the gradient attacks could not.
func TestAuditFlagsMaskedGradients(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	honest := naturalSmall(t, lib)
	n, steps := 50, 10
	if testing.Short() {
		n, steps = 20, 5
	}
	set := testImages(t, n)
	aa := attack.StandardAutoAttack(0.3, 3, n)
	aa.APGDIters, aa.Targets, aa.FABIters, aa.SquareIters = 20, 2, 10, 300
	opts := attack.AuditOptions{Eps: 0.3, Steps: steps, Samples: 3, Batch: n, Seed: 3, AutoAttack: &aa}
	rep, err := attack.Audit(lib, honest, set.Images, set.Labels, set.N, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		t.Logf("honest: %v %s: %s", c.Pass, c.Name, c.Detail)
	}
	if rep.Warned != 0 {
		t.Errorf("the audit warned %d times about an honest natural model", rep.Warned)
	}

	q := quant.Config{Levels: 2, Alpha: 1e4}
	masked := *honest
	masked.Quant, masked.Deploy = &q, quant.Hard
	masked.Weights = model.Weights{model.ThresholdsName: {0.5}}
	for k, v := range honest.Weights {
		masked.Weights[k] = v
	}
	rep, err = attack.Audit(lib, &masked, set.Images, set.Labels, set.N, opts)
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[string]bool{}
	for _, c := range rep.Checks {
		t.Logf("masked: %v %s: %s", c.Pass, c.Name, c.Detail)
		if !c.Pass {
			flagged[c.Name] = true
		}
	}
	for _, want := range []string{"quantizer attacked with BPDA", "Square finds nothing the gradient attacks missed"} {
		if !flagged[want] {
			t.Errorf("the audit did not flag %q for a quantizer whose true gradient is masked", want)
		}
	}
	if flagged["deterministic classifier"] {
		t.Error("the audit calls a deterministic classifier randomised")
	}
}
