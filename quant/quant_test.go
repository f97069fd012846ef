package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk/vktest"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Config{"2,50": {2, 50, false, false}, "4, 20": {4, 20, false, false},
		"3,7.5,per-channel": {3, 7.5, true, false}, "2,50,fixed": {2, 50, false, true},
		"2,50,fixed,per-channel": {2, 50, true, true}} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := Parse(got.String()); err != nil || again != got {
			t.Errorf("Parse(%q.String() = %q) = %+v, %v", in, got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "2", "1,50", "2,0", "2,-3", "x,50", "2,y", "2,50,per-pixel", "2,inf",
		"2,50,fixed,fixed", "2,50,per-channel,fixed,x"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestGradients builds x → quantizer → cross-entropy in each mode (and the soft one with fixed thresholds) and
// compares the input and threshold gradients with the kernels' CPU references composed by hand.
func TestGradients(t *testing.T) {
	const b, c, h, w = 3, 2, 2, 3
	k := c * h * w
	r := rand.New(rand.NewPCG(4, 4))
	xs := make([]float32, b*k)
	for i := range xs {
		xs[i] = r.Float32()
	}
	labels := []uint32{0, 5, 11}
	cfg := Config{Levels: 3, Alpha: 5, PerChannel: true}
	s := kernels.QuantShape{N: b, C: c, H: h, W: w, Levels: cfg.Levels, PerChannel: true}
	thrs := s.InitThresholds()
	for _, m := range []struct {
		mode  Mode
		fixed bool
	}{{Soft, false}, {Soft, true}, {BPDAIdentity, false}, {BPDASoft, false}} {
		mode, cfg := m.mode, cfg
		cfg.Fixed = m.fixed
		t.Run(cfg.String()+"/"+mode.String(), func(t *testing.T) {
			g := graph.New(kernels.New(vktest.Open(t)))
			x := g.Input("x", graph.F32, b, c, h, w)
			thr := g.Param("quant.thresholds", cfg.ThresholdShape(c)...)
			lbl := g.Input("labels", graph.U32, b)
			loss := g.SoftmaxCrossEntropy(g.Reshape(Apply(g, x, thr, cfg, mode), b, -1), lbl)
			if err := g.Backward(loss, 1, x, thr); err != nil {
				t.Fatal(err)
			}
			p, err := g.Compile()
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for _, e := range []error{graph.Write(p, x, xs), graph.Write(p, thr, thrs), graph.Write(p, lbl, labels),
				p.Run()} {
				if e != nil {
					t.Fatal(e)
				}
			}
			var y []float32
			if mode == Soft {
				y = kernels.SoftQuantRef(xs, thrs, s, cfg.Alpha)
			} else {
				y = kernels.HardQuantRef(xs, thrs, s)
			}
			dy := kernels.SoftmaxXentBackwardRef(y, labels, nil, b, k, 1)
			var wantDx, wantDthr []float32
			switch mode {
			case Soft:
				wantDx, wantDthr = kernels.SoftQuantBackwardRef(xs, thrs, dy, s, cfg.Alpha)
			case BPDASoft:
				wantDx, _ = kernels.SoftQuantBackwardRef(xs, thrs, dy, s, cfg.Alpha)
			case BPDAIdentity:
				wantDx = dy
			}
			gotDx := make([]float32, len(xs))
			if err := graph.Read(p, x.Grad, gotDx); err != nil {
				t.Fatal(err)
			}
			near(t, "dx", gotDx, wantDx, 1e-5)
			if mode == Soft && !cfg.Fixed {
				gotDthr := make([]float32, len(thrs))
				if err := graph.Read(p, thr.Grad, gotDthr); err != nil {
					t.Fatal(err)
				}
				near(t, "dthr", gotDthr, wantDthr, 1e-5)
			} else if thr.Grad != nil {
				t.Errorf("%s, %s: thresholds got a gradient", cfg, mode)
			}
		})
	}
}

func near(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s: first mismatch at %d: got %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestHardHasNoGradient: attacking a hard quantizer without BPDA gets no gradient at all — the masking BPDA exists
// to defeat.
func TestHardHasNoGradient(t *testing.T) {
	g := graph.New(kernels.New(vktest.Open(t)))
	x := g.Input("x", graph.F32, 2, 1, 2, 2)
	thr := g.Param("t", 1)
	loss := g.SoftmaxCrossEntropy(g.Reshape(Apply(g, x, thr, Default, Hard), 2, -1), g.Input("l", graph.U32, 2))
	if err := g.Backward(loss, 1, x); err == nil {
		t.Fatal("a hard quantizer passed a gradient to its input")
	}
}
