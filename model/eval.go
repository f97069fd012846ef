package model

import (
	"fmt"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/quant"
)

// Evaluator runs a network forward on batches and counts correct predictions: one compiled program, replayed per
// batch, with the next batch uploaded while the current one runs.
type Evaluator struct {
	net    *Net
	prog   *graph.Program
	x, y   *graph.Tensor
	logits *graph.Tensor
	count  *graph.Tensor
	batch  int
}

// NewEvaluator compiles a forward pass of a for batches of batch images; mode is the quantizer's behaviour (Hard
// for the deployed defence, Soft for the trained function).
func NewEvaluator(lib *kernels.Lib, a Arch, q *quant.Config, mode quant.Mode, batch int) (*Evaluator, error) {
	g := graph.New(lib)
	e := &Evaluator{batch: batch, net: Declare(g, a, q)}
	e.x = g.Input("x", graph.F32, batch, a.C, a.H, a.W)
	e.y = g.Input("labels", graph.U32, batch)
	e.logits = e.net.Forward(g, e.x, mode)
	e.count = g.Correct(e.logits, e.y)
	p, err := g.Compile()
	if err != nil {
		return nil, fmt.Errorf("evaluator: %w", err)
	}
	e.prog = p
	return e, nil
}

// SetWeights loads the network's weights.
func (e *Evaluator) SetWeights(w Weights) error { return e.net.Load(e.prog, w) }

// Accuracy returns how many of the n images (NCHW floats) are classified as their labels. The last partial batch
// is padded with copies of the first image under an impossible label, so padding never counts as correct.
func (e *Evaluator) Accuracy(images []float32, labels []uint8, n int) (int, error) {
	sz := e.net.Arch.C * e.net.Arch.H * e.net.Arch.W
	if len(images) < n*sz || len(labels) < n || n <= 0 {
		return 0, fmt.Errorf("accuracy: %d images of %d floats need %d floats and %d labels, got %d and %d", n, sz,
			n*sz, n, len(images), len(labels))
	}
	xb, yb := make([]float32, e.batch*sz), make([]uint32, e.batch)
	total := 0
	cnt := make([]uint32, 1)
	for lo := 0; lo < n; lo += e.batch {
		hi := min(lo+e.batch, n)
		copy(xb, images[lo*sz:hi*sz])
		for i := lo; i < hi; i++ {
			yb[i-lo] = uint32(labels[i])
		}
		// Padding rows get label k = Classes, which no prediction equals, so they never count as correct.
		for i := hi - lo; i < e.batch; i++ {
			copy(xb[i*sz:(i+1)*sz], images[:sz])
			yb[i] = uint32(e.net.Arch.Classes)
		}
		if err := graph.Write(e.prog, e.x, xb); err != nil {
			return 0, err
		}
		if err := graph.Write(e.prog, e.y, yb); err != nil {
			return 0, err
		}
		if err := e.prog.Run(); err != nil {
			return 0, err
		}
		if err := graph.Read(e.prog, e.count, cnt); err != nil {
			return 0, err
		}
		total += int(cnt[0])
	}
	return total, nil
}

// Close frees the evaluator's device memory.
func (e *Evaluator) Close() { e.prog.Close() }
