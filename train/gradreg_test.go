package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestGradRegGradient checks gradreg's parameter gradient, (1 − ε/h)·∇θL(x) + (ε/h)·∇θL(x + h·sign(∇ₓL)), against
// the same formula evaluated on the CPU reference path.
func TestGradRegGradient(t *testing.T) {
	const b = 3
	a, _ := model.Lookup("small", 1, 8, 8, 10)
	w := a.Init(nil, 4)
	r := rand.New(rand.NewPCG(6, 7))
	x := make([]float32, b*64)
	for i := range x {
		x[i] = 0.2 + 0.6*r.Float32()
	}
	labels := []uint32{2, 7, 1}
	cfg := Config{Batch: b, Eps: 0.3, GradRegH: 0.03}

	g := graph.New(kernels.New(vktest.Open(t)))
	s := &session{arch: a, net: model.Declare(g, a, nil)}
	s.x = g.Input("x", graph.F32, b, 1, 8, 8)
	s.y = g.Input("labels", graph.U32, b)
	s.loss = g.SoftmaxCrossEntropy(s.net.Forward(g, s.x, quant.Soft), s.y)
	if err := gradRegStep(g, s, cfg); err != nil {
		t.Fatal(err)
	}
	p, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := s.net.Load(p, w); err != nil {
		t.Fatal(err)
	}
	if err := graph.Write(p, s.x, x); err != nil {
		t.Fatal(err)
	}
	if err := graph.Write(p, s.y, labels); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}

	_, g1, dx, err := a.Reference(nil, quant.Soft, w, x, labels, b, 1.0/b)
	if err != nil {
		t.Fatal(err)
	}
	x2 := kernels.PGDStepRef(x, dx, x, cfg.GradRegH, cfg.GradRegH)
	_, g2, _, err := a.Reference(nil, quant.Soft, w, x2, labels, b, 1.0/b)
	if err != nil {
		t.Fatal(err)
	}
	c := float64(cfg.Eps / cfg.GradRegH)
	for name, tt := range s.net.Params {
		got := make([]float32, tt.Elems())
		if err := graph.Read(p, tt.Grad, got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			want := (1-c)*float64(g1[name][i]) + c*float64(g2[name][i])
			// c = 10 amplifies the fp32 differences between GPU and CPU sums tenfold.
			if math.Abs(float64(got[i])-want) > 1e-4+1e-2*math.Abs(want) {
				t.Fatalf("%s[%d]: gradreg gradient %v, CPU reference %v", name, i, got[i], want)
			}
		}
	}
}
