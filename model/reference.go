package model

import (
	"fmt"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/quant"
)

// Reference runs the architecture on the CPU, composed from the kernels' CPU references, and returns the
// per-example losses, the gradients of scale·Σ loss for every parameter, and the gradient with respect to the input.
// It is the reference path the GPU graph is checked against, layer by layer the same math in plain Go. The
// quantizer, when present, behaves as mode says: quant.Soft (soft forward, true gradients), quant.BPDAIdentity
// (hard forward, identity backward) or quant.BPDASoft (hard forward, soft surrogate backward); threshold gradients
// are returned for Soft only.
func (a Arch) Reference(q *quant.Config, mode quant.Mode, w Weights, x []float32, labels []uint32, b int, scale float32) (
	loss []float32, grads Weights, dx []float32, err error) {
	if err := a.Check(q, w); err != nil {
		return nil, nil, nil, err
	}
	if len(x) != b*a.C*a.H*a.W || len(labels) != b {
		return nil, nil, nil, fmt.Errorf("reference: %d floats and %d labels for a batch of %d", len(x), len(labels), b)
	}
	type saved struct {
		l       Layer
		in      []float32
		c, h, w int // input shape of this layer
		cs      kernels.ConvShape
		idx     []uint32
	}
	var tape []saved
	h, c, hh, ww := x, a.C, a.H, a.W
	var qs kernels.QuantShape
	if q != nil {
		qs = kernels.QuantShape{N: b, C: c, H: hh, W: ww, Levels: q.Levels, PerChannel: q.PerChannel}
		switch mode {
		case quant.Soft:
			h = kernels.SoftQuantRef(x, w[ThresholdsName], qs, q.Alpha)
		case quant.BPDAIdentity, quant.BPDASoft:
			h = kernels.HardQuantRef(x, w[ThresholdsName], qs)
		default:
			return nil, nil, nil, fmt.Errorf("reference: quantizer mode %s has no gradient", mode)
		}
	}
	for _, l := range a.Layers {
		s := saved{l: l, in: h, c: c, h: hh, w: ww}
		switch l.Kind {
		case "conv":
			s.cs = kernels.ConvShape{B: b, Cin: c, H: hh, W: ww, Cout: l.Out, KH: l.Kernel, KW: l.Kernel, StrideH: 1,
				StrideW: 1, PadH: l.Pad, PadW: l.Pad}
			h = kernels.Conv2DRef(h, w[l.Name+".weight"], w[l.Name+".bias"], s.cs, false)
			c, hh, ww = l.Out, s.cs.OH(), s.cs.OW()
		case "relu":
			h = kernels.ReLURef(h)
		case "pool":
			h, s.idx = kernels.MaxPool2x2Ref(h, b, c, hh, ww)
			hh, ww = hh/2, ww/2
		case "flatten": // NCHW flattens to [B, C·H·W] with no copy, as on the GPU
		case "fc":
			h = kernels.GemmRef(h, w[l.Name+".weight"], w[l.Name+".bias"], nil, b, l.Out, l.In,
				kernels.GemmOpts{TransB: true})
		}
		tape = append(tape, s)
	}
	k := a.Classes
	loss = kernels.SoftmaxXentRef(h, labels, b, k)
	d := kernels.SoftmaxXentBackwardRef(h, labels, nil, b, k, scale)
	grads = Weights{}
	for i := len(tape) - 1; i >= 0; i-- {
		s := tape[i]
		switch s.l.Kind {
		case "conv":
			grads[s.l.Name+".weight"] = kernels.Conv2DBackwardFilterRef(s.in, d, s.cs)
			grads[s.l.Name+".bias"] = kernels.BiasGradRef(d, b, s.l.Out, s.cs.OH()*s.cs.OW())
			d = kernels.Conv2DBackwardDataRef(d, w[s.l.Name+".weight"], s.cs)
		case "relu":
			d = kernels.ReLUBackwardRef(s.in, d)
		case "pool":
			d = kernels.MaxPool2x2BackwardRef(s.idx, d, b, s.c, s.h, s.w)
		case "fc":
			in, out := s.l.In, s.l.Out
			grads[s.l.Name+".weight"] = kernels.GemmRef(d, s.in, nil, nil, out, in, b, kernels.GemmOpts{TransA: true})
			grads[s.l.Name+".bias"] = kernels.BiasGradRef(d, b, out, 1)
			d = kernels.GemmRef(d, w[s.l.Name+".weight"], nil, nil, b, in, out, kernels.GemmOpts{})
		}
	}
	if q != nil {
		switch mode {
		case quant.Soft:
			var dthr []float32
			d, dthr = kernels.SoftQuantBackwardRef(x, w[ThresholdsName], d, qs, q.Alpha)
			grads[ThresholdsName] = dthr
		case quant.BPDASoft:
			d, _ = kernels.SoftQuantBackwardRef(x, w[ThresholdsName], d, qs, q.Alpha)
		}
	}
	return loss, grads, d, nil
}
