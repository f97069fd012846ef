package graph

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk/vktest"
)

func openGraph(t *testing.T) *Graph {
	t.Helper()
	return New(kernels.New(vktest.Open(t)))
}

func randn(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float32, n)
	for i := range out {
		out[i] = r.Float32()*4 - 2
	}
	return out
}

// feedAndRun writes vals and the labels into a compiled program and runs it once.
func feedAndRun(t *testing.T, p *Program, vals map[*Tensor][]float32, labels *Tensor, ls []uint32) {
	t.Helper()
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
}

// TestInputGradient builds relu → reshape → cross-entropy, differentiates with respect to the input, and
// compares loss and gradient with the kernels' CPU references composed by hand.
func TestInputGradient(t *testing.T) {
	g := openGraph(t)
	const b, k = 5, 7
	x := g.Input("x", F32, b, 1, 1, k)
	labels := g.Input("labels", U32, b)
	loss := g.SoftmaxCrossEntropy(g.Reshape(g.ReLU(x), b, -1), labels)
	g.Keep(loss)
	if err := g.Backward(loss, 1.0/b, x); err != nil {
		t.Fatal(err)
	}
	p, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	xs := randn(1, b*k)
	ls := []uint32{0, 6, 3, 3, 1}
	feedAndRun(t, p, map[*Tensor][]float32{x: xs}, labels, ls)
	gotLoss, gotGrad := make([]float32, b), make([]float32, b*k)
	if err := Read(p, loss, gotLoss); err != nil {
		t.Fatal(err)
	}
	if err := Read(p, x.Grad, gotGrad); err != nil {
		t.Fatal(err)
	}
	h := kernels.ReLURef(xs)
	wantLoss := kernels.SoftmaxXentRef(h, ls, b, k)
	wantGrad := kernels.ReLUBackwardRef(xs, kernels.SoftmaxXentBackwardRef(h, ls, nil, b, k, 1.0/b))
	for i := range wantLoss {
		if d := gotLoss[i] - wantLoss[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("loss[%d] = %v, want %v", i, gotLoss[i], wantLoss[i])
		}
	}
	for i := range wantGrad {
		if d := gotGrad[i] - wantGrad[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("grad[%d] = %v, want %v", i, gotGrad[i], wantGrad[i])
		}
	}
	st := p.Stats()
	if st.Dispatches != 4 || st.ArenaBytes == 0 || st.ArenaBytes > st.NaiveBytes {
		t.Errorf("stats %+v: want 4 dispatches (relu, xent, xent backward, relu backward) and a planned arena", st)
	}
}

func TestShapeErrors(t *testing.T) {
	g := openGraph(t)
	x := g.Input("x", F32, 4, 6)
	g.Reshape(x, 5, -1)
	if g.Err() == nil || !strings.Contains(g.Err().Error(), "do not divide") {
		t.Fatalf("reshape of 24 elements to [5, -1]: %v", g.Err())
	}
	if _, err := g.Compile(); err == nil {
		t.Fatal("a graph with a construction error compiled")
	}
	g2 := openGraph(t)
	g2.SoftmaxCrossEntropy(g2.Input("logits", F32, 4, 10), g2.Input("labels", F32, 4))
	if g2.Err() == nil || !strings.Contains(g2.Err().Error(), "uint32") {
		t.Fatalf("float labels: %v", g2.Err())
	}
	g3 := openGraph(t)
	g3.Input("x", F32, 3, 0)
	if g3.Err() == nil {
		t.Fatal("a zero dimension was accepted")
	}
}
