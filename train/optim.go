package train

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk"
)

// Optimizer names the update rule and its settings.
type Optimizer struct {
	Kind        string // "adam" or "sgd"
	LR          float32
	Momentum    float32 // sgd
	Nesterov    bool    // sgd: Nesterov momentum
	WeightDecay float32
	// Schedule shapes the learning rate over the run's steps: "constant" (or ""), "cosine" (PyTorch's
	// CosineAnnealingLR stepped every iteration: lr·½(1 + cos(π·t/T)) at step t of T from 0) or "piecewise" (×0.1 at half the steps,
	// ×0.01 at three quarters: the decay of Madry et al. and Rice et al.).
	Schedule string
	total    int // the run's steps, which the schedule spans (set by Run)
}

// Schedules lists the learning-rate schedules.
var Schedules = []string{"constant", "cosine", "piecewise"}

// lrAt is the learning rate of step t (1-based) of total.
func (o Optimizer) lrAt(t, total int) float32 {
	if total <= 0 {
		return o.LR
	}
	done := float64(t-1) / float64(total) // the fraction of the run before this step
	switch o.Schedule {
	case "cosine":
		return float32(float64(o.LR) * 0.5 * (1 + math.Cos(math.Pi*done)))
	case "piecewise":
		switch {
		case done >= 0.75:
			return o.LR * 0.01
		case done >= 0.5:
			return o.LR * 0.1
		}
	}
	return o.LR
}

// Validate checks the optimizer's settings.
func (o Optimizer) Validate() error {
	switch {
	case o.Kind != "adam" && o.Kind != "sgd":
		return fmt.Errorf("optimizer %q: want adam or sgd", o.Kind)
	case !(o.LR > 0):
		return fmt.Errorf("learning rate %v: must be > 0", o.LR)
	case o.Momentum < 0 || o.Momentum >= 1:
		return fmt.Errorf("momentum %v: must be in [0, 1)", o.Momentum)
	case o.WeightDecay < 0:
		return fmt.Errorf("weight decay %v: must be ≥ 0", o.WeightDecay)
	case o.Nesterov && (o.Kind != "sgd" || o.Momentum == 0):
		return fmt.Errorf("Nesterov momentum: only with --optimizer sgd and --momentum > 0")
	case o.Schedule != "" && o.Schedule != "constant" && o.Schedule != "cosine" && o.Schedule != "piecewise":
		return fmt.Errorf("learning-rate schedule %q: want constant, cosine or piecewise", o.Schedule)
	}
	return nil
}

func (o Optimizer) adam() kernels.AdamParams {
	p := kernels.DefaultAdam(o.LR)
	p.WeightDecay = o.WeightDecay
	return p
}

// updates holds the optimizer's graph tensors: its per-parameter state and the input the host rewrites before
// every step, so the recorded step replays with t advancing — Adam's bias corrections (the scheduled rate inside),
// SGD's scheduled learning rate.
type updates struct {
	opt   Optimizer
	corr  *graph.Tensor            // adam: the bias corrections; sgd: the learning rate
	state map[string]*graph.Tensor // "<param>.m", "<param>.v" (adam), "<param>.momentum" (sgd)
}

// addOptimizer appends one in-place update op per parameter that has a gradient.
func addOptimizer(g *graph.Graph, params []*graph.Tensor, o Optimizer) *updates {
	u := &updates{opt: o, state: map[string]*graph.Tensor{}}
	lib := g.Lib()
	if o.Kind == "adam" {
		u.corr = g.Input("adam.corrections", graph.F32, 2)
	} else {
		u.corr = g.Input("sgd.lr", graph.F32, 1)
	}
	for _, p := range params {
		if p.Grad == nil {
			continue // e.g. thresholds behind a hard quantizer
		}
		p, grad, n := p, p.Grad, p.Elems()
		switch o.Kind {
		case "adam":
			m, v := g.State(p.Name+".m", p.Shape...), g.State(p.Name+".v", p.Shape...)
			u.state[p.Name+".m"], u.state[p.Name+".v"] = m, v
			ap := o.adam()
			g.Add(&graph.Op{Name: "adam " + p.Name, In: []*graph.Tensor{p, grad, m, v, u.corr},
				Out: []*graph.Tensor{p, m, v},
				Run: func(r *vk.Recorder, at graph.Binder) error {
					return lib.AdamStepDynamic(r, at(p), at(grad), at(m), at(v), at(u.corr), n, ap)
				}})
		case "sgd":
			mom := g.State(p.Name+".momentum", p.Shape...)
			u.state[p.Name+".momentum"] = mom
			sp := kernels.SGDParams{Momentum: o.Momentum, WeightDecay: o.WeightDecay, Nesterov: o.Nesterov}
			g.Add(&graph.Op{Name: "sgd " + p.Name, In: []*graph.Tensor{p, grad, mom, u.corr},
				Out: []*graph.Tensor{p, mom},
				Run: func(r *vk.Recorder, at graph.Binder) error {
					return lib.SGDStepDynamic(r, at(p), at(grad), at(mom), at(u.corr), n, sp)
				}})
		}
	}
	return u
}

// prepare writes what step t (1-based) needs before it is submitted.
func (u *updates) prepare(p *graph.Program, t int) error {
	lr := u.opt.lrAt(t, u.opt.total)
	if u.opt.Kind == "sgd" {
		return graph.Write(p, u.corr, []float32{lr})
	}
	a := u.opt.adam()
	a.LR = lr
	c := kernels.AdamCorrections(a, t)
	return graph.Write(p, u.corr, c[:])
}

// save reads the optimizer state back for a checkpoint.
func (u *updates) save(p *graph.Program) (map[string][]float32, error) {
	out := map[string][]float32{}
	for name, t := range u.state {
		v := make([]float32, t.Elems())
		if err := graph.Read(p, t, v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// load restores optimizer state from a checkpoint; every state tensor must be present.
func (u *updates) load(p *graph.Program, st map[string][]float32) error {
	for name, t := range u.state {
		v, ok := st[name]
		if !ok {
			return fmt.Errorf("checkpoint has no optimizer state %s (was it trained with another optimizer?)", name)
		}
		if err := graph.Write(p, t, v); err != nil {
			return err
		}
	}
	return nil
}
