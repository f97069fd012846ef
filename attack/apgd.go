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

// APGD configures Auto-PGD (Croce & Hein, ICML 2020, Algorithm 1, ℓ∞), AutoAttack's gradient attack: a random
// start in the ball, steps of size η (2ε at first) with momentum 0.75, and checkpoints after 22%, then ever shorter
// stretches (−3% each, at least 6%) of the iterations, at which an example's η halves if fewer than ρ of the steps
// since the last checkpoint raised its loss, or if η was not halved last time and its best loss has not improved
// since; a halving restarts the example from its best point. Every iterate is a candidate, judged by the deployed
// classifiers; the whole attack on a batch is one command buffer, one submit.
//
// Departures from AutoAttack's reference code, taken from the paper: the first checkpoint counts the first step's
// increase over the start point's loss (the code compares it with 0), and "fewer than ρ·k" is strict (the code
// halves at exactly ρ·k, which differs only when ρ·k is a whole number: k = 16).
type APGD struct {
	Name    string
	Loss    string  // "ce", "dlr" or "dlr-t" (the targeted DLR loss; the targets are given to the run)
	Eps     float32 // ℓ∞ radius
	Iters   int     // AutoAttack: 100
	Rho     float32 // AutoAttack: 0.75
	Through quant.Mode
	Seed    uint64
	Batch   int
	FirstID int // the id of images[0]: example e draws from the stream of id FirstID + e (see kernels.ExampleRNG)
}

// APGDLosses lists the losses APGD takes.
var APGDLosses = []string{"ce", "dlr", "dlr-t"}

// NewAPGD returns AutoAttack's APGD on a loss, through a gradient path.
func NewAPGD(loss string, eps float32, through quant.Mode, seed uint64, batch int) APGD {
	name := map[string]string{"ce": "apgd-ce", "dlr": "apgd-dlr", "dlr-t": "apgd-t"}[loss]
	if through != quant.Soft {
		name += "/" + through.String()
	}
	return APGD{Name: name, Loss: loss, Eps: eps, Iters: 100, Rho: 0.75, Through: through, Seed: seed, Batch: batch}
}

// Validate checks the configuration against a model with k classes.
func (c APGD) Validate(classes int) error {
	switch {
	case !(c.Eps >= 0) || math.IsInf(float64(c.Eps), 0):
		return fmt.Errorf("%s: ε = %v, must be finite and ≥ 0", c.Name, c.Eps)
	case c.Iters < 1:
		return fmt.Errorf("%s: %d iterations, need at least 1", c.Name, c.Iters)
	case !(c.Rho > 0 && c.Rho <= 1):
		return fmt.Errorf("%s: ρ = %v, want 0 < ρ ≤ 1", c.Name, c.Rho)
	case c.Batch < 1:
		return fmt.Errorf("%s: batch %d", c.Name, c.Batch)
	case c.Through == quant.Hard:
		return fmt.Errorf("%s: a hard quantizer passes no gradient; attack through it with bpda", c.Name)
	}
	kind, ok := apgdKinds[c.Loss]
	switch {
	case !ok:
		return fmt.Errorf("%s: loss %q, want ce, dlr or dlr-t", c.Name, c.Loss)
	case c.Loss != "ce" && classes < kind.MinClasses():
		return fmt.Errorf("%s: the %s loss needs at least %d classes, the model has %d", c.Name, kind,
			kind.MinClasses(), classes)
	}
	return nil
}

var apgdKinds = map[string]kernels.DLRKind{"ce": kernels.DLR, "dlr": kernels.DLR, "dlr-t": kernels.DLRTargeted}

// Targeted reports whether the loss aims at given targets.
func (c APGD) Targeted() bool { return c.Loss == "dlr-t" }

// Checkpoints returns APGD's checkpoints for n iterations: iteration i (0-based) → the length of the interval it
// closes; AutoAttack's n_iter_2 = max(⌊0.22n⌋, 1), then shorter by max(⌊0.03n⌋, 1), at least max(⌊0.06n⌋, 1).
func Checkpoints(n int) map[int]int {
	first, least, decr := max(int(0.22*float64(n)), 1), max(int(0.06*float64(n)), 1), max(int(0.03*float64(n)), 1)
	out := map[int]int{}
	for i, k := first-1, first; i < n; {
		out[i] = k
		k = max(k-decr, least)
		i += k
	}
	return out
}

// RNG streams of the AutoAttack family (per-example Philox streams; see kernels.ExampleRNG).
const (
	streamAPGD   = 16
	streamSquare = 18 // and 19 for the squares
)

// apgdProgram is APGD compiled for a checkpoint, a batch and the deployed classifiers it judges candidates by.
type apgdProgram struct {
	cfg        APGD
	ck         *model.Checkpoint
	modes      []quant.Mode
	prog       *graph.Program
	x0, y, tgt *graph.Tensor
	ids        *graph.Tensor
	state      *graph.Tensor
	trace      *graph.Tensor
	adv        []*graph.Tensor // per mode: the latest point that fooled it
	fooled     []*graph.Tensor // per mode [B]: 1 where some iterate fooled it
	attempt    uint32          // the random start's counter word 3, read when recording
}

// newAPGDProgram builds and compiles APGD (apgd.comp's kernels around the model's forward and input gradient).
func newAPGDProgram(lib *kernels.Lib, ck *model.Checkpoint, cfg APGD, modes []quant.Mode) (*apgdProgram, error) {
	a := ck.Arch
	if err := cfg.Validate(a.Classes); err != nil {
		return nil, err
	}
	if err := checkDeploy(cfg.Name, modes); err != nil {
		return nil, err
	}
	p := &apgdProgram{cfg: cfg, ck: ck, modes: deployModes(modes)}
	g := graph.New(lib)
	net := evalNet(g, a, ck.Quant)
	b, d := cfg.Batch, a.C*a.H*a.W
	shape := []int{b, a.C, a.H, a.W}
	p.x0 = g.Input("x0", graph.F32, shape...)
	p.y = g.Input("labels", graph.U32, b)
	p.ids = g.Input("ids", graph.U32, b)
	if cfg.Targeted() {
		p.tgt = g.Input("targets", graph.U32, b)
	}
	x := g.State("apgd.x", shape...)
	xOld, xBest := g.State("apgd.x_old", shape...), g.State("apgd.x_best", shape...)
	grad, gBest := g.State("apgd.grad", shape...), g.State("apgd.grad_best", shape...)
	p.state = g.State("apgd.state", b, kernels.APGDState)
	p.trace = g.State("apgd.trace", cfg.Iters+1, b, kernels.APGDTraceWidth)
	zeros := g.Const("zeros", make([]float32, b), b)
	for range p.modes {
		adv, fooled := g.State("apgd.adv", shape...), g.State("apgd.fooled", b)
		g.Copy(fooled, zeros)
		p.adv, p.fooled = append(p.adv, adv), append(p.fooled, fooled)
	}
	eps := cfg.Eps
	// The attempt (a restart, or APGD-T's target rank) is a push constant: rerecorded when it changes.
	g.Add(&graph.Op{Name: "apgd init", In: []*graph.Tensor{p.x0, p.ids}, Out: []*graph.Tensor{x},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			rng := kernels.ExampleRNG{Seed: cfg.Seed, Stream: streamAPGD, Attempt: p.attempt}
			return lib.APGDInit(r, at(p.x0), at(p.ids), at(x), b, d, eps, rng)
		}})
	g.Copy(xOld, x)
	// evaluate adds the loss at x, its gradient into grad, and the witnesses of every deployed classifier.
	evaluate := func() (*graph.Tensor, error) {
		logits := net.Forward(g, x, cfg.Through)
		loss := p.loss(g, logits)
		if err := g.Backward(loss, 1, x); err != nil {
			return nil, err
		}
		g.Copy(grad, x.Grad)
		p.witness(g, net, x, logits)
		return loss, g.Err()
	}
	loss, err := evaluate()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	g.Copy(gBest, grad)
	g.Copy(xBest, x)
	p.track(g, loss, kernels.APGDCheck{Init: true, Rho: cfg.Rho, Eta0: 2 * eps})
	checks := Checkpoints(cfg.Iters)
	g.Repeat(cfg.Iters, func() {
		g.Add(&graph.Op{Name: "apgd step", In: []*graph.Tensor{p.x0, grad, p.state, x, xOld},
			Out: []*graph.Tensor{x, xOld},
			Run: func(r *vk.Recorder, at graph.Binder) error {
				a := float32(0.75)
				if g.Iteration() == 0 {
					a = 1
				}
				return lib.APGDStep(r, at(p.x0), at(grad), at(p.state), at(x), at(xOld), b, d, eps, a)
			}})
		l, e := evaluate()
		if e != nil {
			err = e
			return
		}
		p.trackStep(g, l, checks)
		p.rowSelect(g, kernels.APGDImproved, x, xBest, nil)
		p.rowSelect(g, kernels.APGDImproved, grad, gBest, nil)
		p.rowSelect(g, kernels.APGDHalve, xBest, x, checks)
		p.rowSelect(g, kernels.APGDHalve, gBest, grad, checks)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	prog, err := compileWith(g, net, ck, cfg.Name)
	if err != nil {
		return nil, err
	}
	p.prog = prog
	return p, nil
}

// loss adds the configured loss of logits against the labels (or the targets).
func (p *apgdProgram) loss(g *graph.Graph, logits *graph.Tensor) *graph.Tensor {
	switch p.cfg.Loss {
	case "ce":
		return g.SoftmaxCrossEntropy(logits, p.y)
	case "dlr":
		return g.DLRLoss(kernels.DLR, logits, p.y, nil)
	}
	return g.DLRLoss(kernels.DLRTargeted, logits, p.y, p.tgt)
}

// witness adds, for every deployed classifier, the check of the point x (whose logits through the attack's path
// are given): a classifier equal to the path's forward pass reuses them, another gets its own forward pass.
func (p *apgdProgram) witness(g *graph.Graph, net *model.Net, x, logits *graph.Tensor) {
	addWitness(g, p.ck, net, p.modes, p.cfg.Through, x, logits, p.y, p.adv, p.fooled)
}

// addWitness adds the witness kernels of every deployed classifier for the point x.
func addWitness(g *graph.Graph, ck *model.Checkpoint, net *model.Net, modes []quant.Mode, through quant.Mode,
	x, logits, y *graph.Tensor, adv, fooled []*graph.Tensor) {
	lib := g.Lib()
	b, d := x.Shape[0], x.Elems()/x.Shape[0]
	var shared *graph.Tensor // predictions of the path's own forward pass, computed once
	for mi, m := range modes {
		var pred *graph.Tensor
		if ck.Quant == nil || m == forwardOf(through) {
			if shared == nil {
				shared = g.Argmax(logits)
			}
			pred = shared
		} else {
			pred = g.Argmax(net.Forward(g, x, m))
		}
		a, f := adv[mi], fooled[mi]
		g.Add(&graph.Op{Name: "witness " + m.String(), In: []*graph.Tensor{pred, y, x, a, f},
			Out: []*graph.Tensor{a, f},
			Run: func(r *vk.Recorder, at graph.Binder) error {
				return lib.Witness(r, at(pred), at(y), at(x), at(a), at(f), b, d)
			}})
	}
}

// track adds the bookkeeping after the start point's loss.
func (p *apgdProgram) track(g *graph.Graph, loss *graph.Tensor, c kernels.APGDCheck) {
	lib, b := g.Lib(), p.cfg.Batch
	g.Add(&graph.Op{Name: "apgd track", In: []*graph.Tensor{loss, p.state}, Out: []*graph.Tensor{p.state, p.trace},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			return lib.APGDTrack(r, at(loss), at(p.state), at(p.trace), b, c)
		}})
}

// trackStep adds the bookkeeping after a step's loss: a checkpoint at the iterations checks names.
func (p *apgdProgram) trackStep(g *graph.Graph, loss *graph.Tensor, checks map[int]int) {
	lib, b := g.Lib(), p.cfg.Batch
	g.Add(&graph.Op{Name: "apgd track", In: []*graph.Tensor{loss, p.state}, Out: []*graph.Tensor{p.state, p.trace},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			i := g.Iteration()
			c := kernels.APGDCheck{Interval: checks[i], Rho: p.cfg.Rho, Eta0: 2 * p.cfg.Eps, Iter: i + 1}
			return lib.APGDTrack(r, at(loss), at(p.state), at(p.trace), b, c)
		}})
}

// rowSelect adds dst ← src for the rows whose state flag col is set; with only, just at the iterations it names
// (the checkpoints: elsewhere the op records nothing).
func (p *apgdProgram) rowSelect(g *graph.Graph, col int, src, dst *graph.Tensor, only map[int]int) {
	lib, b, d := g.Lib(), src.Shape[0], src.Elems()/src.Shape[0]
	g.Add(&graph.Op{Name: "apgd keep", In: []*graph.Tensor{p.state, src, dst}, Out: []*graph.Tensor{dst},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			if only != nil && only[g.Iteration()] == 0 {
				return nil
			}
			return lib.RowSelect(r, at(p.state), at(src), at(dst), b, d, kernels.APGDState, col)
		}})
}

func (p *apgdProgram) Close() { p.prog.Close() }

// run attacks the examples idx (indices into images and labels, which hold every example) in batches, attempt
// numbering the random start (a restart, or APGD-T's target rank), with targets[i] the target of example idx[i]
// for the targeted loss. It returns, per deployed classifier, the candidates: example → the latest iterate that
// fooled it. tick, when set, hears after each batch how many examples are done.
func (p *apgdProgram) run(images []float32, labels []uint8, idx []int, targets []uint32, attempt uint32,
	tick func(done int)) (candidates, error) {
	if p.cfg.Targeted() && len(targets) != len(idx) {
		return nil, fmt.Errorf("%s: %d targets for %d examples", p.cfg.Name, len(targets), len(idx))
	}
	if err := p.setAttempt(attempt); err != nil {
		return nil, err
	}
	a := p.ck.Arch
	b, sz := p.cfg.Batch, a.C*a.H*a.W
	cands := newCandidates(len(p.modes))
	xb, yb, ib, tb := make([]float32, b*sz), make([]uint32, b), make([]uint32, b), make([]uint32, b)
	fb, ab := make([]float32, b), make([]float32, b*sz)
	for lo := 0; lo < len(idx); lo += b {
		hi := min(lo+b, len(idx))
		for r := range b {
			j := lo + r
			if j >= hi { // padding rows repeat the batch's first example
				j = lo
			}
			e := idx[j]
			copy(xb[r*sz:(r+1)*sz], images[e*sz:(e+1)*sz])
			yb[r], ib[r] = uint32(labels[e]), uint32(p.cfg.FirstID+e)
			if targets != nil {
				tb[r] = targets[j]
			}
		}
		ws := []struct {
			t *graph.Tensor
			u []uint32
		}{{p.y, yb}, {p.ids, ib}}
		if p.tgt != nil {
			ws = append(ws, struct {
				t *graph.Tensor
				u []uint32
			}{p.tgt, tb})
		}
		for _, w := range ws {
			if err := graph.Write(p.prog, w.t, w.u); err != nil {
				return nil, err
			}
		}
		if err := graph.Write(p.prog, p.x0, xb); err != nil {
			return nil, err
		}
		if err := p.prog.Run(); err != nil {
			return nil, err
		}
		for mi := range p.modes {
			if err := graph.Read(p.prog, p.fooled[mi], fb); err != nil {
				return nil, err
			}
			if err := graph.Read(p.prog, p.adv[mi], ab); err != nil {
				return nil, err
			}
			for r := range hi - lo {
				if fb[r] != 0 {
					cands[mi][idx[lo+r]] = append([]float32(nil), ab[r*sz:(r+1)*sz]...)
				}
			}
		}
		if tick != nil {
			tick(hi)
		}
	}
	return cands, nil
}

// setAttempt rerecords the program when the random start's attempt number changes (it is a push constant).
func (p *apgdProgram) setAttempt(attempt uint32) error {
	if p.attempt == attempt {
		return nil
	}
	p.attempt = attempt
	return p.prog.Rerecord()
}

// traceOf returns the last batch's trace [Iters + 1, B, 3]: (loss, η, best loss) per iteration and row.
func (p *apgdProgram) traceOf() ([]float32, error) {
	out := make([]float32, p.trace.Elems())
	return out, graph.Read(p.prog, p.trace, out)
}

// candidates holds what an attack claims, per deployed classifier (in its run's order): example → a point that
// fools it. confirm decides what the claims are worth.
type candidates []map[int][]float32

func newCandidates(modes int) candidates {
	c := make(candidates, modes)
	for i := range c {
		c[i] = map[int][]float32{}
	}
	return c
}
