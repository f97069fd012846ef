package graph

import (
	"math"
	"testing"
)

// mlpLoss64 is the CPU reference of x → linear → relu → linear → mean cross-entropy, in float64.
func mlpLoss64(x, w1, b1, w2, b2 []float64, labels []uint32, bs, in, hid, out int) float64 {
	total := 0.0
	for n := 0; n < bs; n++ {
		h := make([]float64, hid)
		for j := 0; j < hid; j++ {
			s := b1[j]
			for i := 0; i < in; i++ {
				s += x[n*in+i] * w1[j*in+i]
			}
			h[j] = math.Max(s, 0)
		}
		z := make([]float64, out)
		m := math.Inf(-1)
		for k := 0; k < out; k++ {
			s := b2[k]
			for j := 0; j < hid; j++ {
				s += h[j] * w2[k*hid+j]
			}
			z[k] = s
			m = math.Max(m, s)
		}
		se := 0.0
		for _, v := range z {
			se += math.Exp(v - m)
		}
		total += m + math.Log(se) - z[labels[n]]
	}
	return total / float64(bs)
}

func widen(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// TestLinearGradients checks a two-layer MLP's gradients (input, weights, biases) against central differences
// of a float64 CPU forward pass.
func TestLinearGradients(t *testing.T) {
	g := openGraph(t)
	const bs, in, hid, out = 4, 5, 7, 3
	x := g.Input("x", F32, bs, in)
	labels := g.Input("labels", U32, bs)
	w1, b1 := g.Param("fc1.weight", hid, in), g.Param("fc1.bias", hid)
	w2, b2 := g.Param("fc2.weight", out, hid), g.Param("fc2.bias", out)
	loss := g.SoftmaxCrossEntropy(g.Linear(g.ReLU(g.Linear(x, w1, b1)), w2, b2), labels)
	if err := g.Backward(loss, 1.0/bs, x, w1, b1, w2, b2); err != nil {
		t.Fatal(err)
	}
	p, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	vals := map[*Tensor][]float32{x: randn(1, bs*in), w1: randn(2, hid*in), b1: randn(3, hid), w2: randn(4, out*hid),
		b2: randn(5, out)}
	ls := []uint32{2, 0, 1, 2}
	for tt, v := range vals {
		if err := Write(p, tt, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(p, labels, ls); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	order := []*Tensor{x, w1, b1, w2, b2}
	f := func(args [][]float64) float64 {
		return mlpLoss64(args[0], args[1], args[2], args[3], args[4], ls, bs, in, hid, out)
	}
	args := make([][]float64, len(order))
	for i, tt := range order {
		args[i] = widen(vals[tt])
	}
	for i, tt := range order {
		got := make([]float32, tt.Elems())
		if err := Read(p, tt.Grad, got); err != nil {
			t.Fatal(err)
		}
		for j := range got {
			const h = 1e-4
			old := args[i][j]
			args[i][j] = old + h
			fp := f(args)
			args[i][j] = old - h
			fm := f(args)
			args[i][j] = old
			want := (fp - fm) / (2 * h)
			if math.Abs(float64(got[j])-want) > 2e-4+1e-3*math.Abs(want) {
				t.Fatalf("d loss / d %s[%d] = %v, finite differences give %v", tt.Name, j, got[j], want)
			}
		}
	}
}
