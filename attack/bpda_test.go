package attack_test

import (
	"github.com/sqnet/sqnet/attack"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestBPDAMatchesCPUReference runs BPDA (hard quantizer forward, identity backward) PGD on a tiny quantized model
// on the GPU and the same attack on the CPU reference path (model.Reference + kernels.PGDStepRef): the adversarial
// images must agree. A pixel may differ only where a gradient component is so close to zero that the two
// summation orders give it opposite signs; we allow 0.5% of pixels.
func TestBPDAMatchesCPUReference(t *testing.T) {
	const b, steps = 4, 5
	const eps, eta = 0.3, 0.05
	a, err := model.Lookup("small", 1, 8, 8, 10)
	if err != nil {
		t.Fatal(err)
	}
	q := quant.Default
	ck := &model.Checkpoint{Arch: a, Quant: &q, Weights: a.Init(&q, 21), Dataset: "synthetic", Method: "natural"}
	r := rand.New(rand.NewPCG(8, 9))
	x0 := make([]float32, b*64)
	for i := range x0 {
		x0[i] = r.Float32()
	}
	labels := []uint8{1, 4, 7, 2}
	cfg := attack.PGD(eps, eta, steps, 1)
	cfg.RandomStart, cfg.Through, cfg.Deploy, cfg.Batch, cfg.Name = false, quant.BPDAIdentity, []quant.Mode{quant.Hard}, b, "bpda"
	res := attackOnce(t, kernels.New(vktest.Open(t)), ck, cfg, x0, labels)

	x := append([]float32(nil), x0...)
	lbl := make([]uint32, b)
	for i, l := range labels {
		lbl[i] = uint32(l)
	}
	for s := 0; s < steps; s++ {
		_, _, dx, err := a.Reference(&q, quant.BPDAIdentity, ck.Weights, x, lbl, b, 1)
		if err != nil {
			t.Fatal(err)
		}
		x = kernels.PGDStepRef(x, dx, x0, eta, eps)
	}
	differ, moved := 0, 0
	for i := range x {
		if math.Abs(float64(x[i]-res.Adv[i])) > 1e-6 {
			differ++
		}
		if x[i] != x0[i] {
			moved++
		}
	}
	if moved < len(x)/2 {
		t.Fatalf("the CPU attack moved only %d of %d pixels: the test would prove nothing", moved, len(x))
	}
	if differ > len(x)/200 {
		t.Fatalf("GPU and CPU BPDA attacks disagree on %d of %d pixels", differ, len(x))
	}
	t.Logf("GPU and CPU BPDA attacks agree on %d of %d pixels (%d moved)", len(x)-differ, len(x), moved)
}

// TestEOT: with vanishing noise, EOT's summed gradient has the plain gradient's sign, so EOT-PGD must retrace
// plain PGD; with real noise it must still stay in the ε-ball and [0, 1].
func TestEOT(t *testing.T) {
	const b = 4
	ck := tinyQuantized(5)
	r := rand.New(rand.NewPCG(2, 3))
	x0 := make([]float32, b*64)
	for i := range x0 {
		x0[i] = 0.2 + 0.6*r.Float32() // away from the box edges, where clipping would break the tie
	}
	labels := []uint8{0, 3, 5, 9}
	lib := kernels.New(vktest.Open(t))
	run := func(eot int, noise float32) *attack.Result {
		cfg := attack.PGD(0.3, 0.05, 5, 1)
		cfg.RandomStart, cfg.Batch, cfg.EOT, cfg.EOTNoise = false, b, eot, noise
		return attackOnce(t, lib, ck, cfg, x0, labels)
	}
	plain, eot := run(1, 0), run(4, 1e-6)
	differ, moved := 0, 0
	for i := range plain.Adv {
		if math.Abs(float64(plain.Adv[i]-eot.Adv[i])) > 1e-5 {
			differ++
		}
		if plain.Adv[i] != x0[i] {
			moved++
		}
	}
	if moved < len(x0)/2 {
		t.Fatalf("plain PGD moved only %d of %d pixels: the comparison would prove nothing", moved, len(x0))
	}
	if differ > len(x0)/200 {
		t.Fatalf("EOT with vanishing noise differs from plain PGD on %d of %d pixels", differ, len(x0))
	}
	noisy := run(3, 0.2)
	for i, v := range noisy.Adv {
		if v < 0 || v > 1 || math.Abs(float64(v-x0[i])) > 0.3+1e-6 {
			t.Fatalf("EOT pixel %d = %v from %v: outside [0,1] or the ε-ball", i, v, x0[i])
		}
	}
	cfg := attack.PGD(0.3, 0.05, 5, 1)
	cfg.EOT = 3
	if err := cfg.Validate(); err == nil {
		t.Error("EOT without a noise radius was accepted")
	}
}

// tinyQuantized is a freshly initialised small model on 8×8 images behind a soft quantizer (L = 2, α = 5).
func tinyQuantized(seed uint64) *model.Checkpoint {
	a, _ := model.Lookup("small", 1, 8, 8, 10)
	q := quant.Config{Levels: 2, Alpha: 5}
	return &model.Checkpoint{Arch: a, Quant: &q, Weights: a.Init(&q, seed), Dataset: "synthetic"}
}

// attackOnce compiles cfg against ck, attacks every image once and returns the result.
func attackOnce(t *testing.T, lib *kernels.Lib, ck *model.Checkpoint, cfg attack.Config, x0 []float32,
	labels []uint8) *attack.Result {
	t.Helper()
	at, err := attack.New(lib, ck, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	res, err := at.Run(x0, labels, nil, len(labels))
	if err != nil {
		t.Fatal(err)
	}
	return res
}
