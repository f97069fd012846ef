package attack

import (
	"fmt"
	"time"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
)

// Speed is what sqnet bench attack reports for one of AutoAttack's attacks.
type Speed struct {
	Attack       string  `json:"attack"`
	Images       int     `json:"images"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_second"`
	Submits      int     `json:"submits"`
	// QueriesPerSec is Square's forward passes per second (one image each).
	QueriesPerSec float64 `json:"queries_per_second,omitempty"`
	// ElsewhereShare is the share of Square's time spent outside the model's forward passes: its own kernels
	// (propose, accept, draw, commit) on the device, and the host's packing, uploads and reads between chunks.
	ElsewhereShare float64 `json:"elsewhere_share"`
}

// APGDSpeed times APGD (c's iterations, no early stop) on the first n images, in batches of c.Batch, after a
// warm-up batch that compiles the pipelines.
func APGDSpeed(lib *kernels.Lib, ck *model.Checkpoint, c APGD, images []float32, labels []uint8, n int) (*Speed, error) {
	p, err := newAPGDProgram(lib, ck, c, nil)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if _, err := p.run(images, labels, idx[:min(n, c.Batch)], nil, 0, nil); err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := p.run(images, labels, idx, nil, 0, nil); err != nil {
		return nil, err
	}
	s := time.Since(start).Seconds()
	return &Speed{Attack: c.Name, Images: n, Seconds: s, ImagesPerSec: float64(n) / s, Submits: (n + c.Batch - 1) / c.Batch}, nil
}

// SquareSpeed times Square's iterations on a full batch of the first images: every row computes whatever its
// state (a batched forward pass costs the same), so chunks × c.Chunk iterations at batch c.Batch give its
// throughput. Its share outside the forward passes is measured against a reference timed in the same run, chunk
// for chunk in turn with it: the deployed classifier's forward pass alone, c.Chunk times in one submit at the same
// batch, so the share counts Square's own kernels (draw, propose, accept, commit) and the host's packing, uploads
// and reads between chunks.
// ImagesPerSec is at c.Iters + 1 queries an image, the cost of a point Square never breaks.
func SquareSpeed(lib *kernels.Lib, ck *model.Checkpoint, c Square, images []float32, labels []uint8, chunks int) (*Speed, error) {
	if c.Chunk == 0 {
		c.Chunk = 100
	}
	if chunks < 1 {
		return nil, fmt.Errorf("square speed: %d chunks", chunks)
	}
	p, err := newSquareProgram(lib, ck, c)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	a := ck.Arch
	sz := a.C * a.H * a.W
	n := min(c.Batch, len(labels))
	if n < c.Batch {
		return nil, fmt.Errorf("square speed: a batch of %d needs as many images, got %d", c.Batch, n)
	}
	y, ids := make([]uint32, n), make([]uint32, n)
	for i := range y {
		y[i], ids[i] = uint32(labels[i]), uint32(i)
	}
	st := make([]float32, n*kernels.SquareState)
	for i := range n {
		st[i*kernels.SquareState+kernels.SquareIt] = 1 // mid-attack: every row proposes squares
	}
	out := make([]float32, n*sz)
	// One chunk as the attack runs one: upload the rows, run, read the best points back.
	chunk := func() error {
		for _, w := range []struct {
			t *graph.Tensor
			u []uint32
		}{{p.y, y}, {p.ids, ids}} {
			if err := graph.Write(p.prog, w.t, w.u); err != nil {
				return err
			}
		}
		for _, w := range []struct {
			t *graph.Tensor
			f []float32
		}{{p.x0, images[:n*sz]}, {p.state, st}, {p.xBest, images[:n*sz]}} {
			if err := graph.Write(p.prog, w.t, w.f); err != nil {
				return err
			}
		}
		if err := p.prog.Run(); err != nil {
			return err
		}
		if err := graph.Read(p.prog, p.state, make([]float32, len(st))); err != nil {
			return err
		}
		return graph.Read(p.prog, p.xBest, out)
	}
	// The reference: the same number of forward passes of the deployed classifier, one submit per chunk.
	g := graph.New(lib)
	net := evalNet(g, a, ck.Quant)
	x := g.Input("x", graph.F32, n, a.C, a.H, a.W)
	g.Repeat(p.chunk, func() { g.Keep(net.Forward(g, x, c.Deploy)) })
	fp, err := compileWith(g, net, ck, "square speed")
	if err != nil {
		return nil, err
	}
	defer fp.Close()
	if err := graph.Write(fp, x, images[:n*sz]); err != nil {
		return nil, err
	}
	// Square's chunks and the reference's alternate, so that a machine whose speed drifts during the
	// measurement slows both alike.
	var total, forward float64
	for _, f := range []func() error{chunk, fp.Run} { // warm-up: pipelines compile, caches fill
		if err := f(); err != nil {
			return nil, err
		}
	}
	for range chunks {
		for _, t := range []struct {
			f   func() error
			sum *float64
		}{{chunk, &total}, {fp.Run, &forward}} {
			start := time.Now()
			if err := t.f(); err != nil {
				return nil, err
			}
			*t.sum += time.Since(start).Seconds()
		}
	}
	queries := float64(n*p.chunk*chunks) / total
	return &Speed{Attack: "square", Images: n, Seconds: total, Submits: chunks, QueriesPerSec: queries,
		ImagesPerSec: queries / float64(c.Iters+1), ElsewhereShare: max(0, 1-forward/total)}, nil
}
