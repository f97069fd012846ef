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
	cfg.RandomStart, cfg.Through, cfg.Eval, cfg.Batch, cfg.Name = false, quant.BPDAIdentity, quant.Hard, b, "bpda"
	at, err := attack.New(kernels.New(vktest.Open(t)), ck, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	res, err := at.Run(x0, labels, nil, b)
	if err != nil {
		t.Fatal(err)
	}

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
