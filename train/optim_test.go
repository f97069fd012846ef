package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/vk/vktest"
)

func TestLRSchedules(t *testing.T) {
	o := Optimizer{Kind: "sgd", LR: 0.1, Momentum: 0.9}
	const total = 100
	for _, c := range []struct {
		schedule string
		t        int
		want     float64
	}{
		{"", 1, 0.1}, {"constant", 100, 0.1},
		{"cosine", 1, 0.1}, {"cosine", 51, 0.05}, {"cosine", 76, 0.1 * 0.5 * (1 + math.Cos(math.Pi*0.75))},
		{"cosine", 100, 0.1 * 0.5 * (1 + math.Cos(math.Pi*0.99))},
		{"piecewise", 50, 0.1}, {"piecewise", 51, 0.01}, {"piecewise", 75, 0.01}, {"piecewise", 76, 0.001},
	} {
		o.Schedule = c.schedule
		if got := o.lrAt(c.t, total); math.Abs(float64(got)-c.want) > 1e-7 {
			t.Errorf("%s at step %d of %d: lr %v, want %v", c.schedule, c.t, total, got, c.want)
		}
	}
	for _, bad := range []Optimizer{{Kind: "sgd", LR: 0.1, Schedule: "step"}, {Kind: "adam", LR: 0.1, Nesterov: true},
		{Kind: "sgd", LR: 0.1, Nesterov: true}} {
		if bad.Validate() == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
}

// TestScheduledSGDResumes: SGD with Nesterov momentum, weight decay and a cosine schedule, on crop-flip augmented
// images, trains differently from the constant rate and from unaugmented images (both reach the device), and a
// run interrupted after its first step and resumed ends with the straight run's weights and momentum, bit for bit
// (the rate and the augmentation are functions of the step).
func TestScheduledSGDResumes(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	dir := t.TempDir()
	cfg := func(out, schedule, augment string) Config {
		c := quick(t, filepath.Join(dir, out))
		c.Optimizer = Optimizer{Kind: "sgd", LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4, Schedule: schedule}
		c.Augment = augment
		return c
	}
	straight := cfg("straight.safetensors", "cosine", "crop-flip")
	constant := cfg("constant.safetensors", "constant", "crop-flip")
	plain := cfg("plain.safetensors", "cosine", "none")
	for _, c := range []Config{straight, constant, plain} {
		if _, err := Run(context.Background(), lib, c); err != nil {
			t.Fatal(err)
		}
	}
	cut := cfg("cut.safetensors", "cosine", "crop-flip")
	cutAndResume(t, lib, cut)
	want, got, other, unaugmented := load(t, straight), load(t, cut), load(t, constant), load(t, plain)
	if want.Extra["lr_schedule"] != "cosine" || want.Extra["nesterov"] != "true" || want.Extra["augment"] != "crop-flip" {
		t.Fatalf("the checkpoint records schedule %q, nesterov %q, augment %q", want.Extra["lr_schedule"],
			want.Extra["nesterov"], want.Extra["augment"])
	}
	if !same(want.Weights, got.Weights) || !same(want.Optim, got.Optim) {
		t.Fatal("the resumed cosine run differs from the straight one")
	}
	if same(want.Weights, other.Weights) {
		t.Fatal("the cosine schedule trained exactly as the constant rate: the schedule does not reach the device")
	}
	if same(want.Weights, unaugmented.Weights) {
		t.Fatal("crop-flip trained exactly as no augmentation")
	}
}

// cutAndResume runs c interrupted after its first step (a context cancelled before Run stops there and saves),
// then resumes it from that checkpoint to the end.
func cutAndResume(t *testing.T, lib *kernels.Lib, c Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, lib, c); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("a cancelled run returned %v, want ErrInterrupted", err)
	}
	c.Resume = c.Out
	if _, err := Run(context.Background(), lib, c); err != nil {
		t.Fatal(err)
	}
}

// load reads the checkpoint c wrote.
func load(t *testing.T, c Config) *model.Checkpoint {
	t.Helper()
	ck, err := model.Load(c.Out)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// same reports whether every tensor of a has b's bits.
func same(a, b model.Weights) bool {
	for name, w := range a {
		if len(b[name]) != len(w) {
			return false
		}
		for i := range w {
			if math.Float32bits(b[name][i]) != math.Float32bits(w[i]) {
				return false
			}
		}
	}
	return true
}
