package graph

import (
	"fmt"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk"
)

// Linear returns x·wᵀ + b for x [B, in], w [out, in] (PyTorch's layout), b [out].
func (g *Graph) Linear(x, w, b *Tensor) *Tensor {
	if len(x.Shape) != 2 || len(w.Shape) != 2 || w.Shape[1] != x.Shape[1] || len(b.Shape) != 1 || b.Shape[0] != w.Shape[0] {
		return g.fail("linear: x %s, w %s, b %s: want x [B, in], w [out, in], b [out]", x, w, b)
	}
	bs, in, out := x.Shape[0], x.Shape[1], w.Shape[0]
	y := g.tensor(w.Name+".out", []int{bs, out}, Temp, F32)
	mac := 2 * float64(bs) * float64(in) * float64(out)
	g.Add(&Op{Name: "linear", In: []*Tensor{x, w, b}, Out: []*Tensor{y}, Flops: mac,
		Run: func(r *vk.Recorder, at Binder) error {
			return g.lib.Gemm(r, at(x), at(w), at(y), bs, out, in, kernels.GemmOpts{TransB: true, Bias: at(b)})
		},
		Grad: func(d []*Tensor) ([]*Tensor, error) {
			dy := d[0]
			dx, dw, db := g.gradOf(x), g.gradOf(w), g.gradOf(b)
			g.Add(&Op{Name: "linear backward", In: []*Tensor{dy, w, x}, Out: NonNil(dx, dw, db),
				Flops: mac * float64(len(NonNil(dx, dw))),
				Run: func(r *vk.Recorder, at Binder) error {
					// dx = dy·w; dw = dyᵀ·x; db = column sums of dy, in a fixed order.
					if dx != nil {
						if err := g.lib.Gemm(r, at(dy), at(w), at(dx), bs, in, out, kernels.GemmOpts{}); err != nil {
							return err
						}
					}
					if dw != nil {
						if err := g.lib.Gemm(r, at(dy), at(x), at(dw), out, in, bs, kernels.GemmOpts{TransA: true}); err != nil {
							return err
						}
					}
					if db == nil {
						return nil
					}
					return g.lib.BiasGrad(r, at(dy), at(db), bs, out, 1, false)
				}})
			return []*Tensor{dx, dw, db}, nil
		}})
	return y
}

// Conv2D returns the convolution of x [B, Cin, H, W] with w [Cout, Cin, KH, KW] (PyTorch's layout) plus b [Cout]
// (nil: no bias, as before a batch norm), with the given stride and zero padding on every side.
func (g *Graph) Conv2D(x, w, b *Tensor, stride, pad int) *Tensor {
	if len(x.Shape) != 4 || len(w.Shape) != 4 || w.Shape[1] != x.Shape[1] ||
		(b != nil && (len(b.Shape) != 1 || b.Shape[0] != w.Shape[0])) {
		return g.fail("conv2d: x %s, w %s, b %s: want x [B, Cin, H, W], w [Cout, Cin, KH, KW], b [Cout]", x, w, b)
	}
	s := convShape(x, w, stride, pad)
	if stride < 1 || pad < 0 || s.OH() < 1 || s.OW() < 1 {
		return g.fail("conv2d: x %s with a %d×%d kernel, stride %d, padding %d has no output", x, s.KH, s.KW, stride, pad)
	}
	y := g.tensor(w.Name+".out", []int{s.B, s.Cout, s.OH(), s.OW()}, Temp, F32)
	mac := s.Flops()
	// On CPU drivers the kernel reads its weights packed into a scratch tensor (see kernels.ConvFwdScratch).
	var wp *Tensor
	if n := g.lib.ConvFwdScratch(s); n > 0 {
		wp = g.tensor(w.Name+".packed", []int{n}, Temp, F32)
	}
	g.Add(&Op{Name: "conv2d", In: NonNil(x, w, b), Out: NonNil(y, wp), Flops: mac,
		Run: func(r *vk.Recorder, at Binder) error {
			var o kernels.ConvOpts
			if b != nil {
				o.Bias = at(b)
			}
			if wp != nil {
				o.Scratch = at(wp)
			}
			return g.lib.Conv2D(r, at(x), at(w), at(y), s, o)
		},
		Grad: func(d []*Tensor) ([]*Tensor, error) { return g.conv2DBackward(x, w, b, s, mac, d[0]), nil }})
	return y
}

// convShape is the shape of the convolution of x [B, Cin, H, W] with w [Cout, Cin, KH, KW] (checked by the
// caller), with the given stride and padding on every side.
func convShape(x, w *Tensor, stride, pad int) kernels.ConvShape {
	return kernels.ConvShape{B: x.Shape[0], Cin: x.Shape[1], H: x.Shape[2], W: x.Shape[3], Cout: w.Shape[0],
		KH: w.Shape[2], KW: w.Shape[3], StrideH: stride, StrideW: stride, PadH: pad, PadW: pad}
}

// conv2DBackward adds the backward of the convolution s of x with w (+ b), whose forward does mac flops, given its
// output's gradient dy, and returns the gradients of x, w and b (those that need one; b's only with a bias).
func (g *Graph) conv2DBackward(x, w, b *Tensor, s kernels.ConvShape, mac float64, dy *Tensor) []*Tensor {
	dx, dw := g.gradOf(x), g.gradOf(w)
	var db *Tensor
	if b != nil {
		db = g.gradOf(b)
	}
	// The input gradient reads packed weights from a scratch tensor on CPU drivers (an attack's first
	// layer through conv_direct), or, with few input channels and strides, runs in two passes through one
	// (kernels.ConvDataScratch).
	var cols, wcols *Tensor
	if n := g.lib.ConvDataScratch(s); dx != nil && n > 0 {
		cols = g.tensor(x.Name+".grad.cols", []int{n}, Temp, F32)
	}
	// So does the weight gradient of a layer with few weights (a first layer).
	if n := g.lib.ConvFilterScratch(s); dw != nil && n > 0 {
		wcols = g.tensor(w.Name+".grad.cols", []int{n}, Temp, F32)
	}
	g.Add(&Op{Name: "conv2d backward", In: []*Tensor{dy, w, x}, Out: NonNil(dx, dw, db, cols, wcols),
		Flops: mac * float64(len(NonNil(dx, dw))),
		Run: func(r *vk.Recorder, at Binder) error {
			// The input image needs no gradient in training: skip the (slow, one-channel) data pass.
			if dx != nil {
				var o kernels.ConvOpts
				if cols != nil {
					o.Scratch = at(cols)
				}
				if err := g.lib.Conv2DBackwardData(r, at(dy), at(w), at(dx), s, o); err != nil {
					return err
				}
			}
			if dw != nil {
				var o kernels.ConvOpts
				if wcols != nil {
					o.Scratch = at(wcols)
				}
				if err := g.lib.Conv2DBackwardFilter(r, at(x), at(dy), at(dw), s, o); err != nil {
					return err
				}
			}
			if db == nil {
				return nil
			}
			return g.lib.BiasGrad(r, at(dy), at(db), s.B, s.Cout, s.OH()*s.OW(), false)
		}})
	if b == nil {
		return []*Tensor{dx, dw}
	}
	return []*Tensor{dx, dw, db}
}

// Conv2DReLUMaxPool returns ReLUMaxPool2x2(Conv2D(x, w, b, stride, pad)), a model's conv → ReLU → pool. Where the
// device computes the three in one pass (kernels.Lib.ConvPoolOK: CPU drivers, even output sides) it does, keeping
// codes of each window's maximum for the backward instead of the convolution's output (an MNIST network's largest
// activations, which a CPU driver stores one SIMD lane at a time); elsewhere it adds the two ops. The values are
// the same bits either way.
func (g *Graph) Conv2DReLUMaxPool(x, w, b *Tensor, stride, pad int) *Tensor {
	if len(x.Shape) != 4 || len(w.Shape) != 4 || w.Shape[1] != x.Shape[1] || stride < 1 || pad < 0 {
		return g.ReLUMaxPool2x2(g.Conv2D(x, w, b, stride, pad)) // (which reports what is wrong)
	}
	s := convShape(x, w, stride, pad)
	// (ConvPoolOK holds only for a valid shape with even output sides and packed weights, ConvFwdScratch > 0.)
	if (b != nil && (len(b.Shape) != 1 || b.Shape[0] != w.Shape[0])) || !g.lib.ConvPoolOK(s) {
		return g.ReLUMaxPool2x2(g.Conv2D(x, w, b, stride, pad))
	}
	oh, ow := s.OH(), s.OW()
	y := g.tensor(w.Name+".out.relu.pool", []int{s.B, s.Cout, oh / 2, ow / 2}, Temp, F32)
	codes := g.tensor(w.Name+".out.pool.codes", []int{g.lib.PoolCodesLen(s)}, Temp, F32)
	wp := g.tensor(w.Name+".packed", []int{g.lib.ConvFwdScratch(s)}, Temp, F32)
	mac := s.Flops()
	g.Add(&Op{Name: "conv2d+relu+maxpool", In: NonNil(x, w, b), Out: []*Tensor{y, codes, wp}, Flops: mac,
		Run: func(r *vk.Recorder, at Binder) error {
			o := kernels.ConvOpts{Scratch: at(wp)}
			if b != nil {
				o.Bias = at(b)
			}
			return g.lib.Conv2DReLUMaxPool(r, at(x), at(w), at(y), at(codes), s, o)
		},
		Grad: func(d []*Tensor) ([]*Tensor, error) {
			// The convolution's output gradient, unpooled from the codes; then the convolution's backward.
			dconv := g.tensor(w.Name+".out.grad", []int{s.B, s.Cout, oh, ow}, Temp, F32)
			g.Add(&Op{Name: "relu+maxpool backward", In: []*Tensor{codes, d[0]}, Out: []*Tensor{dconv},
				Run: func(r *vk.Recorder, at Binder) error {
					return g.lib.Conv2DReLUMaxPoolBackward(r, at(codes), at(d[0]), at(dconv), s)
				}})
			return g.conv2DBackward(x, w, b, s, mac, dconv), nil
		}})
	return y
}

// gradOf declares the gradient tensor of t, or returns nil when t needs none.
func (g *Graph) gradOf(t *Tensor) *Tensor {
	if !g.NeedsGrad(t) {
		return nil
	}
	return g.tensor(t.Name+".grad", t.Shape, Temp, F32)
}

// nonNil drops the nil tensors from a list of op outputs.
func NonNil(ts ...*Tensor) []*Tensor {
	var out []*Tensor
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// BatchNorm2D returns BatchNorm2d of x [B, C, H, W] (or [B, C]) with weight gamma and bias beta [C] (PyTorch's
// weight and bias) and the running estimates runMean and runVar [C] (State tensors, PyTorch's running_mean and
// running_var buffers). In training mode it normalises with the batch's statistics and moves the running
// estimates by momentum (every time the op runs); in eval mode it normalises with the running estimates and leaves
// them alone. Its gradient flows to x, gamma and beta — through the batch statistics in training mode.
func (g *Graph) BatchNorm2D(x, gamma, beta, runMean, runVar *Tensor, training bool, eps, momentum float32) *Tensor {
	if len(x.Shape) != 4 && len(x.Shape) != 2 {
		return g.fail("batchnorm: x %s: want [B, C, H, W] or [B, C]", x)
	}
	c := x.Shape[1]
	for _, t := range []*Tensor{gamma, beta, runMean, runVar} {
		if len(t.Shape) != 1 || t.Shape[0] != c {
			return g.fail("batchnorm: x %s, %s %s: want [%d]", x, t.Name, t, c)
		}
	}
	s := kernels.BatchNormShape{N: x.Shape[0], C: c, P: x.Elems() / (x.Shape[0] * c), Eps: eps, Momentum: momentum}
	y := g.tensor(gamma.Name+".bn", x.Shape, Temp, F32)
	stats := g.tensor(gamma.Name+".bn.stats", []int{c, kernels.BatchNormStatsWidth}, Temp, F32)
	op := &Op{In: []*Tensor{x, gamma, beta, runMean, runVar}, Out: []*Tensor{y, stats}}
	if training {
		op.Name, op.Out = "batchnorm (train)", append(op.Out, runMean, runVar)
		op.Run = func(r *vk.Recorder, at Binder) error {
			if err := g.lib.BatchNormStats(r, at(x), at(gamma), at(beta), at(runMean), at(runVar), at(stats), s,
				true); err != nil {
				return err
			}
			return g.lib.BatchNormApply(r, at(x), at(stats), at(y), s)
		}
	} else {
		op.Name = "batchnorm (eval)"
		op.Run = func(r *vk.Recorder, at Binder) error {
			if err := g.lib.BatchNormEvalStats(r, at(gamma), at(beta), at(runMean), at(runVar), at(stats), s); err != nil {
				return err
			}
			return g.lib.BatchNormApply(r, at(x), at(stats), at(y), s)
		}
	}
	op.Grad = func(d []*Tensor) ([]*Tensor, error) {
		dy := d[0]
		if dy == nil {
			return nil, nil
		}
		if _, ok := g.SeedScale(dy); ok {
			return nil, fmt.Errorf("batchnorm output %s used as a loss", y)
		}
		dx, dgamma, dbeta := g.gradOf(x), g.gradOf(gamma), g.gradOf(beta)
		// The kernels always produce all three; what nobody asked for lands in scratch tensors.
		kx, kg, kb := dx, dgamma, dbeta
		if kx == nil {
			kx = g.tensor(x.Name+".grad.unused", x.Shape, Temp, F32)
		}
		if kg == nil {
			kg = g.tensor(gamma.Name+".grad.unused", gamma.Shape, Temp, F32)
		}
		if kb == nil {
			kb = g.tensor(beta.Name+".grad.unused", beta.Shape, Temp, F32)
		}
		g.Add(&Op{Name: "batchnorm backward", In: []*Tensor{x, dy, stats}, Out: []*Tensor{kx, kg, kb},
			Run: func(r *vk.Recorder, at Binder) error {
				return g.lib.BatchNormBackward(r, at(x), at(dy), at(stats), at(kg), at(kb), at(kx), s, training)
			}})
		return []*Tensor{dx, dgamma, dbeta}, nil
	}
	g.Add(op)
	return y
}

// Sum returns a + b (same shapes): a residual block's join. Its gradient reaches both inputs, as two tensors (a
// copy for b), since the gradient of an input may later be accumulated into in place.
func (g *Graph) Sum(a, b *Tensor) *Tensor {
	if !same(a, b) {
		return g.fail("sum: %s and %s differ in shape", a, b)
	}
	y := g.tensor(a.Name+".sum", a.Shape, Temp, F32)
	n := a.Elems()
	g.Add(&Op{Name: "sum", In: []*Tensor{a, b}, Out: []*Tensor{y},
		Run: func(r *vk.Recorder, at Binder) error {
			if err := r.Copy(at(y), at(a)); err != nil {
				return err
			}
			return g.lib.Axpy(r, at(b), at(y), n, 1)
		},
		Grad: func(d []*Tensor) ([]*Tensor, error) {
			dy := d[0]
			if _, ok := g.SeedScale(dy); ok {
				return nil, fmt.Errorf("sum %s used as a loss", y)
			}
			var db *Tensor
			if g.NeedsGrad(b) {
				db = g.tensor(b.Name+".grad", b.Shape, Temp, F32)
				g.Copy(db, dy)
			}
			return []*Tensor{dy, db}, nil
		}})
	return y
}

// GlobalAvgPool returns the mean of x [B, C, H, W] over each H×W plane, as [B, C].
func (g *Graph) GlobalAvgPool(x *Tensor) *Tensor {
	if len(x.Shape) != 4 {
		return g.fail("global average pool: x %s: want [B, C, H, W]", x)
	}
	rows, d := x.Shape[0]*x.Shape[1], x.Shape[2]*x.Shape[3]
	y := g.tensor(x.Name+".gap", x.Shape[:2], Temp, F32)
	g.Add(&Op{Name: "global average pool", In: []*Tensor{x}, Out: []*Tensor{y},
		Run: func(r *vk.Recorder, at Binder) error { return g.lib.RowMean(r, at(x), at(y), rows, d) },
		Grad: func(dd []*Tensor) ([]*Tensor, error) {
			if _, ok := g.SeedScale(dd[0]); ok {
				return nil, fmt.Errorf("global average pool %s used as a loss", y)
			}
			dx := g.tensor(x.Name+".grad", x.Shape, Temp, F32)
			g.Add(&Op{Name: "global average pool backward", In: []*Tensor{dd[0]}, Out: []*Tensor{dx},
				Run: func(r *vk.Recorder, at Binder) error {
					return g.lib.RowBroadcast(r, at(dd[0]), at(dx), rows, d, 1/float32(d))
				}})
			return []*Tensor{dx}, nil
		}})
	return y
}
