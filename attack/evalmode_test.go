package attack

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestAttacksRunBatchNormInEvalMode: a batch-normed model's logits for an image do not depend on the other images
// of its batch — the attack code builds every network in eval mode (running statistics) — so an image classified
// alone, or beside three others, or with its batch mates replaced, gets the same bits.
func TestAttacksRunBatchNormInEvalMode(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	a, err := model.Lookup("resnet20", 1, 8, 8, 10)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	w := a.Init(nil, 2)
	for _, p := range a.Params(nil) {
		if strings.HasSuffix(p.Name, "running_var") {
			for i := range w[p.Name] {
				w[p.Name][i] = 0.5 + r.Float32()
			}
		}
	}
	ck := &model.Checkpoint{Arch: a, Weights: w, Deploy: quant.Soft}
	c, err := newClassifier(lib, ck, []quant.Mode{quant.Soft}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	xs := make([]float32, 8*64)
	for i := range xs {
		xs[i] = r.Float32()
	}
	together, err := c.run(xs[:4*64], 4) // images 0–3 in one batch
	if err != nil {
		t.Fatal(err)
	}
	alone, err := c.run(xs[:64], 1) // image 0 alone (its padding rows repeat it)
	if err != nil {
		t.Fatal(err)
	}
	others := append(append([]float32(nil), xs[:64]...), xs[4*64:7*64]...) // image 0 beside images 4–6
	mixed, err := c.run(others, 4)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 10; k++ {
		if together[0][k] != alone[0][k] || together[0][k] != mixed[0][k] {
			t.Fatalf("logit %d of image 0: %v beside images 1–3, %v alone, %v beside 4–6: batch statistics leak into "+
				"an attack's forward", k, together[0][k], alone[0][k], mixed[0][k])
		}
	}
}
