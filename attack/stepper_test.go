package attack_test

import (
	"math/rand/v2"
	"testing"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestStepperRetracesPGD: k Steps of one gradient step each, from the clean images, are bit-identical to one PGD-k
// attack without random start (same kernels, same order), and Reset starts over from the clean images.
func TestStepperRetracesPGD(t *testing.T) {
	const b, k = 3, 6
	ck := tinyQuantized(7)
	r := rand.New(rand.NewPCG(4, 5))
	x0 := make([]float32, b*64)
	for i := range x0 {
		x0[i] = r.Float32()
	}
	labels := []uint8{1, 4, 7}
	lib := kernels.New(vktest.Open(t))
	cfg := attack.PGD(0.3, 0.05, k, 1)
	cfg.RandomStart, cfg.Batch = false, b
	want := attackOnce(t, lib, ck, cfg, x0, labels)

	cfg.Steps = 1
	s, err := attack.NewStepper(lib, ck, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	adv, pc, pa := make([]float32, len(x0)), make([]uint32, b), make([]uint32, b)
	for round := range 2 { // the second round checks Reset
		if err := s.Reset(x0, labels, b); err != nil {
			t.Fatal(err)
		}
		for range k {
			if err := s.Step(); err != nil {
				t.Fatal(err)
			}
		}
		if s.Steps() != k {
			t.Fatalf("Steps() = %d after %d steps", s.Steps(), k)
		}
		if err := s.Read(adv, pc, pa); err != nil {
			t.Fatal(err)
		}
		moved := 0
		for i := range adv {
			if adv[i] != want.Adv[i] {
				t.Fatalf("round %d pixel %d: stepper %v, PGD-%d %v", round, i, adv[i], k, want.Adv[i])
			}
			if adv[i] != x0[i] {
				moved++
			}
		}
		if moved < len(x0)/2 {
			t.Fatalf("the attack moved only %d of %d pixels: the comparison would prove nothing", moved, len(x0))
		}
		for i := range pa {
			if pa[i] != want.Pred[i] {
				t.Fatalf("round %d example %d: stepper predicts %d on its adversarial image, the attack %d", round, i, pa[i], want.Pred[i])
			}
		}
	}
	if err := s.Reset(x0, labels, b+1); err == nil {
		t.Fatal("Reset with more examples than the batch succeeded")
	}
	cfg.EOT, cfg.EOTNoise = 2, 0.1
	if _, err := attack.NewStepper(lib, ck, cfg); err == nil {
		t.Fatal("a stepped EOT attack was accepted")
	}
}
