package graph

import (
	"fmt"
	"math"
	"testing"

	"github.com/sqnet/sqnet/kernels"
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
		for k := 0; k < out; k++ {
			s := b2[k]
			for j := 0; j < hid; j++ {
				s += h[j] * w2[k*hid+j]
			}
			z[k] = s
		}
		total += xent64(z, labels[n])
	}
	return total / float64(bs)
}

// xent64 is the cross-entropy of logits z against label, in float64 (log-sum-exp shifted by the maximum).
func xent64(z []float64, label uint32) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	se := 0.0
	for _, v := range z {
		se += math.Exp(v - m)
	}
	return m + math.Log(se) - z[label]
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
	feedAndRun(t, p, vals, labels, ls)
	order := []*Tensor{x, w1, b1, w2, b2}
	args := make([][]float64, len(order))
	for i, tt := range order {
		args[i] = widen(vals[tt])
	}
	checkGradients(t, "", p, order, args, func(args [][]float64) float64 {
		return mlpLoss64(args[0], args[1], args[2], args[3], args[4], ls, bs, in, hid, out)
	})
}

// checkGradients compares the gradients a compiled program computed for ts (their Grad tensors) with central
// differences of the float64 loss f at args (args[i] holds ts[i]'s values), failing at the first element off by
// more than 2e-4 + 1e-3·|want|.
func checkGradients(t *testing.T, what string, p *Program, ts []*Tensor, args [][]float64, f func([][]float64) float64) {
	t.Helper()
	for i, tt := range ts {
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
				t.Fatalf("%sd loss / d %s[%d] = %v, finite differences give %v", what, tt.Name, j, got[j], want)
			}
		}
	}
}

// TestResidualBatchNormGradients checks the gradients of x → BatchNorm2D (training mode) → Sum with x (a residual
// join: x has two consumers) → ReLU → GlobalAvgPool → mean cross-entropy with respect to x, γ and β against central
// differences of a float64 CPU forward pass; that the running estimates moved as PyTorch moves them; and that eval
// mode normalises with them.
func TestResidualBatchNormGradients(t *testing.T) {
	const bs, c, h, w = 3, 4, 2, 3
	const eps, mom = 1e-5, 0.1
	p := h * w
	xv, gv, bv := randn(11, bs*c*p), randn(12, c), randn(13, c)
	ls := []uint32{1, 3, 0}
	rm0, rv0 := make([]float32, c), make([]float32, c)
	for i := range rv0 {
		rm0[i], rv0[i] = 0.1*float32(i), 1+0.5*float32(i)
	}
	forward := func(training bool) (*Graph, *Program, []*Tensor) {
		g := openGraph(t)
		x := g.Input("x", F32, bs, c, h, w)
		labels := g.Input("labels", U32, bs)
		gamma, beta := g.Param("bn.weight", c), g.Param("bn.bias", c)
		rm, rv := g.State("bn.running_mean", c), g.State("bn.running_var", c)
		y := g.GlobalAvgPool(g.ReLU(g.Sum(g.BatchNorm2D(x, gamma, beta, rm, rv, training, eps, mom), x)))
		loss := g.SoftmaxCrossEntropy(y, labels)
		if err := g.Backward(loss, 1.0/bs, x, gamma, beta); err != nil {
			t.Fatal(err)
		}
		prog, err := g.Compile()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(prog.Close)
		feedAndRun(t, prog, map[*Tensor][]float32{x: xv, gamma: gv, beta: bv, rm: rm0, rv: rv0}, labels, ls)
		return g, prog, []*Tensor{x, gamma, beta, rm, rv}
	}
	for _, training := range []bool{true, false} {
		_, prog, ts := forward(training)
		loss := func(args [][]float64) float64 {
			x, gm, bt := args[0], args[1], args[2]
			total := 0.0
			for n := 0; n < bs; n++ {
				z := make([]float64, c)
				for ch := 0; ch < c; ch++ {
					mean, v := float64(rm0[ch]), float64(rv0[ch])
					if training {
						var s, m2 float64
						for b := 0; b < bs; b++ {
							for q := 0; q < p; q++ {
								s += x[(b*c+ch)*p+q]
							}
						}
						mean = s / float64(bs*p)
						for b := 0; b < bs; b++ {
							for q := 0; q < p; q++ {
								d := x[(b*c+ch)*p+q] - mean
								m2 += d * d
							}
						}
						v = m2 / float64(bs*p)
					}
					for q := 0; q < p; q++ {
						xi := x[(n*c+ch)*p+q]
						z[ch] += math.Max((xi-mean)/math.Sqrt(v+eps)*gm[ch]+bt[ch]+xi, 0) / float64(p)
					}
				}
				total += xent64(z, ls[n])
			}
			return total / bs
		}
		checkGradients(t, fmt.Sprintf("training %v: ", training), prog, ts[:3],
			[][]float64{widen(xv), widen(gv), widen(bv)}, loss)
		rm, rv := make([]float32, c), make([]float32, c)
		if err := Read(prog, ts[3], rm); err != nil {
			t.Fatal(err)
		}
		if err := Read(prog, ts[4], rv); err != nil {
			t.Fatal(err)
		}
		for ch := 0; ch < c; ch++ {
			wantM, wantV := float64(rm0[ch]), float64(rv0[ch])
			if training {
				var s, s2 float64
				for b := 0; b < bs; b++ {
					for q := 0; q < p; q++ {
						v := float64(xv[(b*c+ch)*p+q])
						s, s2 = s+v, s2+v*v
					}
				}
				n := float64(bs * p)
				wantM = (1-mom)*wantM + mom*s/n
				wantV = (1-mom)*wantV + mom*(s2-s*s/n)/(n-1)
			}
			if math.Abs(float64(rm[ch])-wantM) > 1e-5 || math.Abs(float64(rv[ch])-wantV) > 1e-5 {
				t.Errorf("training %v, channel %d: running mean %v var %v, want %v %v", training, ch, rm[ch], rv[ch],
					wantM, wantV)
			}
		}
	}
}

// TestConv2DReLUMaxPool builds conv → ReLU → pool → reshape → cross-entropy once with Conv2DReLUMaxPool and once
// with Conv2D then ReLUMaxPool2x2, differentiates each with respect to the input alone (an attack) and to every
// tensor (training), and checks that the two give the same loss and gradients bit for bit, that the fused op is
// the one that ran where the device has it (a CPU driver), and the fused graph's gradients against central
// differences of a float64 CPU forward pass.
func TestConv2DReLUMaxPool(t *testing.T) {
	const bs, cin, h, w, cout, k = 2, 1, 6, 8, 3, 3
	xv, wv, bv := randn(21, bs*cin*h*w), randn(22, cout*cin*k*k), randn(23, cout)
	ls := []uint32{4, 17}
	build := func(fused bool, all bool) (*Graph, *Program, []*Tensor, *Tensor) {
		g := openGraph(t)
		x := g.Input("x", F32, bs, cin, h, w)
		labels := g.Input("labels", U32, bs)
		wt, b := g.Param("conv.weight", cout, cin, k, k), g.Param("conv.bias", cout)
		var y *Tensor
		if fused {
			y = g.Conv2DReLUMaxPool(x, wt, b, 1, 1)
		} else {
			y = g.ReLUMaxPool2x2(g.Conv2D(x, wt, b, 1, 1))
		}
		loss := g.SoftmaxCrossEntropy(g.Reshape(y, bs, -1), labels)
		g.Keep(loss)
		wrt := []*Tensor{x}
		if all {
			wrt = []*Tensor{x, wt, b}
		}
		if err := g.Backward(loss, 1.0/bs, wrt...); err != nil {
			t.Fatal(err)
		}
		p, err := g.Compile()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		feedAndRun(t, p, map[*Tensor][]float32{x: xv, wt: wv, b: bv}, labels, ls)
		return g, p, wrt, loss
	}
	read := func(p *Program, tt *Tensor) []float32 {
		v := make([]float32, tt.Elems())
		if err := Read(p, tt, v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, all := range []bool{false, true} {
		gf, pf, wf, lf := build(true, all)
		_, pu, wu, lu := build(false, all)
		ranFused := false
		for _, op := range gf.ops {
			ranFused = ranFused || op.Name == "conv2d+relu+maxpool"
		}
		if want := gf.Lib().ConvPoolOK(kernels.ConvShape{B: bs, Cin: cin, H: h, W: w, Cout: cout, KH: k, KW: k,
			PadH: 1, PadW: 1}); ranFused != want {
			t.Fatalf("the fused op ran: %v, want %v (ConvPoolOK)", ranFused, want)
		}
		pairs := [][2][]float32{{read(pf, lf), read(pu, lu)}}
		for i := range wf {
			pairs = append(pairs, [2][]float32{read(pf, wf[i].Grad), read(pu, wu[i].Grad)})
		}
		for i, pr := range pairs {
			for j := range pr[0] {
				if math.Float32bits(pr[0][j]) != math.Float32bits(pr[1][j]) {
					t.Fatalf("all=%v, output %d (loss, then gradients), element %d: fused %v, two ops %v", all, i, j,
						pr[0][j], pr[1][j])
				}
			}
		}
		if !all {
			continue
		}
		checkGradients(t, "conv+relu+pool: ", pf, wf, [][]float64{widen(xv), widen(wv), widen(bv)},
			func(a [][]float64) float64 {
				x, wt, b := a[0], a[1], a[2]
				oh, ow := h/2, w/2
				total := 0.0
				for n := range bs {
					z := make([]float64, 0, cout*oh*ow)
					for co := range cout {
						for py := range oh {
							for px := range ow {
								best := math.Inf(-1)
								for dy := range 2 {
									for dx := range 2 {
										oy, ox := 2*py+dy, 2*px+dx
										s := b[co]
										for kh := range k {
											for kw := range k {
												iy, ix := oy-1+kh, ox-1+kw
												if iy >= 0 && iy < h && ix >= 0 && ix < w {
													s += wt[co*k*k+kh*k+kw] * x[(n*h+iy)*w+ix]
												}
											}
										}
										best = math.Max(best, s)
									}
								}
								z = append(z, math.Max(best, 0))
							}
						}
					}
					total += xent64(z, ls[n])
				}
				return total / bs
			})
	}
}
