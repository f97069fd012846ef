package attack

import (
	"fmt"
	"math"
	"sort"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
)

// classifier is a checkpoint's forward pass compiled for a batch in one or more quantizer modes: the clean
// predictions an evaluation starts from, the targets of the targeted attacks, and the confirmation of every
// candidate by the deployed classifier.
type classifier struct {
	ck     *model.Checkpoint
	b, sz  int
	modes  []quant.Mode
	prog   *graph.Program
	x      *graph.Tensor
	logits []*graph.Tensor // per mode (one shared when the model has no quantizer)
}

func newClassifier(lib *kernels.Lib, ck *model.Checkpoint, modes []quant.Mode, batch int) (*classifier, error) {
	a := ck.Arch
	c := &classifier{ck: ck, b: batch, sz: a.C * a.H * a.W, modes: modes}
	g := graph.New(lib)
	net := evalNet(g, a, ck.Quant)
	c.x = g.Input("x", graph.F32, batch, a.C, a.H, a.W)
	for _, m := range distinctModes(ck, modes) {
		z := net.Forward(g, c.x, m)
		g.Keep(z)
		c.logits = append(c.logits, z)
	}
	p, err := compileWith(g, net, ck, "classifier")
	if err != nil {
		return nil, err
	}
	c.prog = p
	return c, nil
}

// compileWith compiles g, whose model net is declared for ck, and loads ck's weights into it; errors name what.
func compileWith(g *graph.Graph, net *model.Net, ck *model.Checkpoint, what string) (*graph.Program, error) {
	p, err := g.Compile()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := net.Load(p, ck.Weights); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (c *classifier) Close() { c.prog.Close() }

// run returns, per mode, the logits [n, K] of the n images xs (NCHW, n·sz floats).
func (c *classifier) run(xs []float32, n int) ([][]float32, error) {
	k := c.ck.Arch.Classes
	out := make([][]float32, len(c.modes))
	for i := range out {
		out[i] = make([]float32, n*k)
	}
	xb, zb := make([]float32, c.b*c.sz), make([]float32, c.b*k)
	for lo := 0; lo < n; lo += c.b {
		hi := min(lo+c.b, n)
		copy(xb, xs[lo*c.sz:hi*c.sz])
		for i := hi - lo; i < c.b; i++ { // padding rows repeat the first
			copy(xb[i*c.sz:(i+1)*c.sz], xs[lo*c.sz:(lo+1)*c.sz])
		}
		if err := graph.Write(c.prog, c.x, xb); err != nil {
			return nil, err
		}
		if err := c.prog.Run(); err != nil {
			return nil, err
		}
		for mi := range c.modes {
			if err := graph.Read(c.prog, c.logits[min(mi, len(c.logits)-1)], zb); err != nil {
				return nil, err
			}
			copy(out[mi][lo*k:hi*k], zb[:(hi-lo)*k])
		}
	}
	return out, nil
}

// predictions returns, per mode, the argmax of each of the n images xs (ties to the lower index, as the device).
func (c *classifier) predictions(xs []float32, n int) ([][]uint32, error) {
	zs, err := c.run(xs, n)
	if err != nil {
		return nil, err
	}
	k := c.ck.Arch.Classes
	out := make([][]uint32, len(zs))
	for mi, z := range zs {
		out[mi] = make([]uint32, n)
		for i := range n {
			out[mi][i] = uint32(argmaxRow(z[i*k : (i+1)*k]))
		}
	}
	return out, nil
}

// argmaxRow is the index of the largest value, the lower index on ties and NaN the largest (kernels.ArgmaxRef).
func argmaxRow(z []float32) int {
	jb := 0
	for j := 1; j < len(z); j++ {
		if z[j] > z[jb] || (z[j] != z[j] && z[jb] == z[jb]) {
			jb = j
		}
	}
	return jb
}

// ranked returns the classes of a row of logits by decreasing value (ties: lower index first): ranked[0] is the
// prediction, ranked[r] the target of AutoAttack's targeted attacks at rank r + 1.
func ranked(z []float32) []int {
	idx := make([]int, len(z))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		va, vb := z[idx[a]], z[idx[b]]
		return va > vb || (math.IsNaN(float64(va)) && !math.IsNaN(float64(vb)))
	})
	return idx
}

// inBall reports whether x lies in the ε-ball around x0 and in [0, 1], with the bounds rounded to float32 as the
// attacks' projections round them — so a projected point is inside, and nothing outside counts.
func inBall(x, x0 []float32, eps float32) bool {
	for i, v := range x {
		lo, hi := max(float32(x0[i]-eps), 0), min(float32(x0[i]+eps), 1)
		if !(v >= lo && v <= hi) {
			return false
		}
	}
	return true
}

// projectBall clamps x in place into the ε-ball around x0 and [0, 1] (inBall's bounds).
func projectBall(x, x0 []float32, eps float32) {
	for i, v := range x {
		lo, hi := max(float32(x0[i]-eps), 0), min(float32(x0[i]+eps), 1)
		x[i] = min(max(v, lo), hi)
	}
}

// evalNet declares the attacked network in eval mode — batch norm normalising with its running statistics, never
// its batch's — as every attack and evaluation must run it: an attack's batch is not the model's business, and a
// batch-statistics forward would let one example's perturbation move another's logits.
func evalNet(g *graph.Graph, a model.Arch, q *quant.Config) *model.Net {
	net := model.Declare(g, a, q)
	net.Training = false
	return net
}
