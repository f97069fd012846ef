package graph

import (
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
	g.Add(&Op{Name: "linear", In: []*Tensor{x, w, b}, Out: []*Tensor{y},
		Run: func(r *vk.Recorder, at Binder) error {
			return g.lib.Gemm(r, at(x), at(w), at(y), bs, out, in, kernels.GemmOpts{TransB: true, Bias: at(b)})
		},
		Grad: func(d []*Tensor) ([]*Tensor, error) {
			dy := d[0]
			dx := g.tensor(x.Name+".grad", x.Shape, Temp, F32)
			dw := g.tensor(w.Name+".grad", w.Shape, Temp, F32)
			db := g.tensor(b.Name+".grad", b.Shape, Temp, F32)
			ones := g.ones(bs)
			g.Add(&Op{Name: "linear backward", In: []*Tensor{dy, w, x, ones}, Out: []*Tensor{dx, dw, db},
				Run: func(r *vk.Recorder, at Binder) error {
					// dx = dy·w; dw = dyᵀ·x; db = 1ᵀ·dy (column sums, in a fixed order).
					if err := g.lib.Gemm(r, at(dy), at(w), at(dx), bs, in, out, kernels.GemmOpts{}); err != nil {
						return err
					}
					if err := g.lib.Gemm(r, at(dy), at(x), at(dw), out, in, bs, kernels.GemmOpts{TransA: true}); err != nil {
						return err
					}
					return g.lib.Gemm(r, at(ones), at(dy), at(db), 1, out, bs, kernels.GemmOpts{})
				}})
			return []*Tensor{dx, dw, db}, nil
		}})
	return y
}

// ones returns a constant vector of n ones, shared by every op that needs it.
func (g *Graph) ones(n int) *Tensor {
	if g.onesOf == nil {
		g.onesOf = map[int]*Tensor{}
	}
	if t := g.onesOf[n]; t != nil {
		return t
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	t := g.Const("ones", v, n)
	g.onesOf[n] = t
	return t
}
