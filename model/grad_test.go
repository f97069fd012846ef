package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestWholeModelGradients differentiates a whole network (soft quantizer, convs, pools, ReLUs, linears,
// cross-entropy) on the GPU with respect to every parameter and the input, and checks the result against the CPU
// reference path (the same math composed from the kernels' references) and against finite differences of the
// reference forward pass.
func TestWholeModelGradients(t *testing.T) {
	const b = 3
	for _, name := range []string{"small", "madry"} {
		t.Run(name, func(t *testing.T) {
			a, err := Lookup(name, 1, 8, 8, 10)
			if err != nil {
				t.Fatal(err)
			}
			q := &quant.Config{Levels: 2, Alpha: 5}
			w := a.Init(q, 11)
			r := rand.New(rand.NewPCG(5, 6))
			x := make([]float32, b*64)
			for i := range x {
				x[i] = r.Float32()
			}
			labels := []uint32{3, 9, 0}

			g := graph.New(kernels.New(vktest.Open(t)))
			net := Declare(g, a, q)
			xt := g.Input("x", graph.F32, b, 1, 8, 8)
			yt := g.Input("labels", graph.U32, b)
			loss := g.SoftmaxCrossEntropy(net.Forward(g, xt, quant.Soft), yt)
			g.Keep(loss)
			if err := g.Backward(loss, 1.0/b, append(append([]*graph.Tensor(nil), net.Order...), xt)...); err != nil {
				t.Fatal(err)
			}
			p, err := g.Compile()
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := net.Load(p, w); err != nil {
				t.Fatal(err)
			}
			if err := graph.Write(p, xt, x); err != nil {
				t.Fatal(err)
			}
			if err := graph.Write(p, yt, labels); err != nil {
				t.Fatal(err)
			}
			if err := p.Run(); err != nil {
				t.Fatal(err)
			}
			refLoss, refGrads, refDx, err := a.Reference(q, quant.Soft, w, x, labels, b, 1.0/b)
			if err != nil {
				t.Fatal(err)
			}
			gotLoss := make([]float32, b)
			if err := graph.Read(p, loss, gotLoss); err != nil {
				t.Fatal(err)
			}
			closeTo(t, "loss", gotLoss, refLoss, 1e-5, 1e-4)
			got := map[string][]float32{}
			for pname, tt := range net.Params {
				v := make([]float32, tt.Elems())
				if err := graph.Read(p, tt.Grad, v); err != nil {
					t.Fatal(err)
				}
				got[pname] = v
				// Sums of up to a few thousand fp32 terms in different orders: 1e-5 absolute, 1e-3 relative.
				closeTo(t, "d loss/d "+pname, v, refGrads[pname], 1e-5, 1e-3)
			}
			gotDx := make([]float32, len(x))
			if err := graph.Read(p, xt.Grad, gotDx); err != nil {
				t.Fatal(err)
			}
			closeTo(t, "d loss/d x", gotDx, refDx, 1e-6, 1e-3)

			// Finite differences of the reference forward, on a few coordinates of every tensor.
			meanLoss := func() float64 {
				l, _, _, _ := a.Reference(q, quant.Soft, w, x, labels, b, 1)
				s := 0.0
				for _, v := range l {
					s += float64(v)
				}
				return s / b
			}
			// ReLU and max-pool are not differentiable at their kinks: a coordinate whose one-sided differences
			// disagree straddles one, and another coordinate is drawn instead (at most 20 tries for 4 checks).
			probe := func(what string, v []float32, an []float32) {
				checked := 0
				for try := 0; try < 20 && checked < 4; try++ {
					i := r.IntN(len(v))
					const h = 2e-3
					old := v[i]
					f0 := meanLoss()
					v[i] = old + h
					fp := meanLoss()
					v[i] = old - h
					fm := meanLoss()
					v[i] = old
					right, left := (fp-f0)/h, (f0-fm)/h
					if math.Abs(right-left) > 1e-3+0.02*math.Abs(right+left) {
						continue
					}
					checked++
					fd := (fp - fm) / (2 * h)
					if math.Abs(fd-float64(an[i])) > 1e-3+0.03*math.Abs(fd) {
						t.Errorf("%s[%d]: analytic %.6g, finite differences %.6g", what, i, an[i], fd)
					}
				}
				if checked == 0 {
					t.Errorf("%s: every probed coordinate straddled a kink", what)
				}
			}
			for pname := range net.Params {
				probe(pname, w[pname], got[pname])
			}
			probe("x", x, gotDx)
		})
	}
}

func closeTo(t *testing.T, what string, got, want []float32, abs, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > abs+rel*math.Abs(float64(want[i])) {
			t.Fatalf("%s: first mismatch at %d: GPU %.9g, CPU reference %.9g", what, i, got[i], want[i])
		}
	}
}
