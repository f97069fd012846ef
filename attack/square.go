package attack

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk"
)

// Square configures the Square Attack (Andriushchenko et al., ECCV 2020; ℓ∞) as AutoAttack runs it: a black-box
// random search that never looks at a gradient. It starts from vertical stripes at ±ε, then each iteration moves
// one random square window (side from AutoAttack's p schedule, p_init 0.8) to x₀ ± 2ε per channel, projected on the
// ball, and keeps the proposal if it lowers the margin z_y − max_{j≠y} z_j or misclassifies. It queries the deployed
// classifier itself, so a quantizer's vanishing gradient cannot hide anything from it.
//
// Every example draws its windows from its own Philox stream (seed, example index, iteration), so a seed
// reproduces every query bit for bit whatever the batch. All unfinished examples' proposals of an iteration go
// through one batched forward pass; a command buffer records Chunk iterations; between chunks the host retires
// the examples that are done and fills their rows with waiting ones. Departure from AutoAttack's code: a window's
// corner is uniform over every position (the code never places it on the last row or column) and each example
// draws its own window (the code shares one per batch and iteration, which makes a result depend on its batch).
type Square struct {
	Name   string
	Eps    float32
	Iters  int     // iterations after the start; AutoAttack: 5000 (so up to 5001 queries an example)
	PInit  float64 // AutoAttack: 0.8
	Deploy quant.Mode
	Seed   uint64
	Batch  int
	Chunk  int // iterations per submit (default 100)
	// FirstID is the id of images[0]: example e draws its windows from the stream of id FirstID + e.
	FirstID int
}

// NewSquare returns AutoAttack's Square settings against a deployed classifier.
func NewSquare(eps float32, deploy quant.Mode, seed uint64, batch int) Square {
	return Square{Name: "square", Eps: eps, Iters: 5000, PInit: 0.8, Deploy: deploy, Seed: seed, Batch: batch}
}

// Validate checks the configuration for images of c channels.
func (c Square) Validate(channels int) error {
	switch {
	case !(c.Eps >= 0) || math.IsInf(float64(c.Eps), 0):
		return fmt.Errorf("%s: ε = %v, must be finite and ≥ 0", c.Name, c.Eps)
	case c.Iters < 1 || c.Batch < 1 || c.Chunk < 0:
		return fmt.Errorf("%s: %d iterations in batches of %d, chunks of %d", c.Name, c.Iters, c.Batch, c.Chunk)
	case !(c.PInit > 0 && c.PInit <= 1):
		return fmt.Errorf("%s: p_init %v, want 0 < p ≤ 1", c.Name, c.PInit)
	case channels > kernels.SquareMaxChannels:
		return fmt.Errorf("%s: %d channels; the attack supports at most %d", c.Name, channels, kernels.SquareMaxChannels)
	}
	return checkDeploy(c.Name, []quant.Mode{c.Deploy})
}

// squareProgram is a chunk of Square iterations compiled for a batch.
type squareProgram struct {
	cfg                Square
	ck                 *model.Checkpoint
	prog               *graph.Program
	x0, y, ids         *graph.Tensor
	state, xBest, xNew *graph.Tensor
	chunk              int
}

func newSquareProgram(lib *kernels.Lib, ck *model.Checkpoint, cfg Square) (*squareProgram, error) {
	a := ck.Arch
	if err := cfg.Validate(a.C); err != nil {
		return nil, err
	}
	p := &squareProgram{cfg: cfg, ck: ck, chunk: cfg.Chunk}
	if p.chunk == 0 {
		p.chunk = 100
	}
	p.chunk = min(p.chunk, cfg.Iters+1)
	g := graph.New(lib)
	net := evalNet(g, a, ck.Quant)
	b := cfg.Batch
	shape := []int{b, a.C, a.H, a.W}
	p.x0 = g.Input("x0", graph.F32, shape...)
	p.y, p.ids = g.Input("labels", graph.U32, b), g.Input("ids", graph.U32, b)
	p.state = g.State("square.state", b, kernels.SquareState)
	p.xBest, p.xNew = g.State("square.x_best", shape...), g.State("square.x_new", shape...)
	sizes := g.Const("square.sizes", kernels.SquareSizes(cfg.PInit, cfg.Iters, a.H, a.W), cfg.Iters)
	s := kernels.SquareShape{B: b, C: a.C, H: a.H, W: a.W}
	rng := kernels.ExampleRNG{Seed: cfg.Seed, Stream: streamSquare}
	g.Add(&graph.Op{Name: "square draw", In: []*graph.Tensor{p.ids, sizes, p.state}, Out: []*graph.Tensor{p.state},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			return lib.SquareDraw(r, at(p.ids), at(sizes), at(p.state), s, cfg.Iters, rng)
		}})
	g.Repeat(p.chunk, func() {
		g.Add(&graph.Op{Name: "square propose", In: []*graph.Tensor{p.x0, p.ids, p.state, p.xBest, p.xNew},
			Out: []*graph.Tensor{p.xBest, p.xNew},
			Run: func(r *vk.Recorder, at graph.Binder) error {
				return lib.SquarePropose(r, at(p.x0), at(p.ids), at(p.state), at(p.xBest), at(p.xNew), s, cfg.Eps, rng)
			}})
		logits := net.Forward(g, p.xNew, cfg.Deploy)
		g.Add(&graph.Op{Name: "square accept", In: []*graph.Tensor{logits, p.y, p.ids, sizes, p.state},
			Out: []*graph.Tensor{p.state},
			Run: func(r *vk.Recorder, at graph.Binder) error {
				return lib.SquareAccept(r, at(logits), at(p.y), at(p.ids), at(sizes), at(p.state), s, a.Classes,
					cfg.Iters, rng)
			}})
	})
	d := a.C * a.H * a.W
	g.Add(&graph.Op{Name: "square commit", In: []*graph.Tensor{p.state, p.xNew, p.xBest}, Out: []*graph.Tensor{p.xBest},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			return lib.RowSelect(r, at(p.state), at(p.xNew), at(p.xBest), b, d, kernels.SquareState, kernels.SquareAccept)
		}})
	prog, err := compileWith(g, net, ck, cfg.Name)
	if err != nil {
		return nil, err
	}
	p.prog = prog
	return p, nil
}

func (p *squareProgram) Close() { p.prog.Close() }

// squareOutcome is a Square run's end: each example's last best point (a candidate for every example: confirm
// keeps the ones that fool) and its queries.
type squareOutcome struct {
	best    map[int][]float32
	queries map[int]int
	submits int
}

// run attacks the examples idx; progress, when set, hears after each chunk how many are still running.
func (p *squareProgram) run(images []float32, labels []uint8, idx []int, progress func(left int)) (*squareOutcome, error) {
	a := p.ck.Arch
	b, sz, w := p.cfg.Batch, a.C*a.H*a.W, kernels.SquareState
	out := &squareOutcome{best: map[int][]float32{}, queries: map[int]int{}}
	type row struct {
		e     int
		st    []float32
		xBest []float32
	}
	waiting := make([]*row, len(idx))
	for i, e := range idx {
		waiting[i] = &row{e: e, st: make([]float32, w), xBest: append([]float32(nil), images[e*sz:(e+1)*sz]...)}
	}
	x0b, xbb, stb := make([]float32, b*sz), make([]float32, b*sz), make([]float32, b*w)
	yb, ib := make([]uint32, b), make([]uint32, b)
	for len(waiting) > 0 {
		slots := waiting[:min(b, len(waiting))]
		for r := range b {
			k := r
			pad := k >= len(slots)
			if pad {
				k = 0
			}
			s := slots[k]
			copy(x0b[r*sz:(r+1)*sz], images[s.e*sz:(s.e+1)*sz])
			copy(xbb[r*sz:(r+1)*sz], s.xBest)
			copy(stb[r*w:(r+1)*w], s.st)
			stb[r*w+kernels.SquareAccept] = 0
			if pad { // a padding row repeats the first and is done: it changes nothing
				stb[r*w+kernels.SquareDone] = 1
			}
			yb[r], ib[r] = uint32(labels[s.e]), uint32(p.cfg.FirstID+s.e)
		}
		if err := graph.Write(p.prog, p.x0, x0b); err != nil {
			return nil, err
		}
		if err := graph.Write(p.prog, p.y, yb); err != nil {
			return nil, err
		}
		if err := graph.Write(p.prog, p.ids, ib); err != nil {
			return nil, err
		}
		if err := graph.Write(p.prog, p.xBest, xbb); err != nil {
			return nil, err
		}
		if err := graph.Write(p.prog, p.state, stb); err != nil {
			return nil, err
		}
		if err := p.prog.Run(); err != nil {
			return nil, err
		}
		out.submits++
		if err := graph.Read(p.prog, p.xBest, xbb); err != nil {
			return nil, err
		}
		if err := graph.Read(p.prog, p.state, stb); err != nil {
			return nil, err
		}
		var still []*row
		for r, s := range slots {
			copy(s.xBest, xbb[r*sz:(r+1)*sz])
			copy(s.st, stb[r*w:(r+1)*w])
			if s.st[kernels.SquareDone] == 0 {
				still = append(still, s)
				continue
			}
			out.best[s.e] = s.xBest
			out.queries[s.e] = int(s.st[kernels.SquareIt])
		}
		waiting = append(still, waiting[len(slots):]...)
		if progress != nil {
			progress(len(waiting))
		}
	}
	return out, nil
}
