package attack

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk"
)

// FAB configures the targeted Fast Adaptive Boundary attack (Croce & Hein, ICML 2020; ℓ∞), AutoAttack's FAB-T: from
// the clean image, each iteration linearises f_t − f_y around the current point, projects both the point and the
// clean image onto that hyperplane inside [0, 1] with the smallest ℓ∞ move, steps to a convex combination of the
// two projections (overshooting by η, the clean one's weight α at most AlphaMax), and after a step that crosses
// the boundary moves back towards the clean image by β. It minimises the distance to the boundary rather than
// maximising a loss inside the ball; its candidates are the iterates that fool a deployed classifier inside ε.
// The gradients and forward passes run on the device, one submit per iteration; the projection runs on the host.
type FAB struct {
	Name     string
	Eps      float32
	Iters    int     // AutoAttack: 100
	AlphaMax float64 // AutoAttack: 0.1
	Eta      float64 // overshoot, AutoAttack: 1.05
	Beta     float32 // backward step, AutoAttack: 0.9
	Through  quant.Mode
	Batch    int
}

// NewFAB returns AutoAttack's FAB-T settings through a gradient path.
func NewFAB(eps float32, through quant.Mode, batch int) FAB {
	name := "fab-t"
	if through != quant.Soft {
		name += "/" + through.String()
	}
	return FAB{Name: name, Eps: eps, Iters: 100, AlphaMax: 0.1, Eta: 1.05, Beta: 0.9, Through: through, Batch: batch}
}

// Validate checks the configuration.
func (c FAB) Validate() error {
	switch {
	case !(c.Eps >= 0) || math.IsInf(float64(c.Eps), 0):
		return fmt.Errorf("%s: ε = %v, must be finite and ≥ 0", c.Name, c.Eps)
	case c.Iters < 1 || c.Batch < 1:
		return fmt.Errorf("%s: %d iterations in batches of %d", c.Name, c.Iters, c.Batch)
	case !(c.AlphaMax >= 0 && c.AlphaMax <= 1) || !(c.Eta >= 1) || !(c.Beta > 0 && c.Beta <= 1):
		return fmt.Errorf("%s: α_max %v, η %v, β %v", c.Name, c.AlphaMax, c.Eta, c.Beta)
	case c.Through == quant.Hard:
		return fmt.Errorf("%s: a hard quantizer passes no gradient; attack through it with bpda", c.Name)
	}
	return nil
}

// fabProgram is one FAB iteration compiled: the predictions at the submitted point, the step back where the
// attack's own classifier is fooled, and there the margin f_t − f_y with its input gradient.
type fabProgram struct {
	cfg            FAB
	ck             *model.Checkpoint
	modes          []quant.Mode
	prog           *graph.Program
	x1, x0, y, tgt *graph.Tensor
	predF          *graph.Tensor   // the attack's own classifier at x1
	preds          []*graph.Tensor // each deployed classifier at x1
	xs, df, dg     *graph.Tensor   // the point after the step back, the margin there and its gradient
}

func newFABProgram(lib *kernels.Lib, ck *model.Checkpoint, cfg FAB, modes []quant.Mode) (*fabProgram, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkDeploy(cfg.Name, modes); err != nil {
		return nil, err
	}
	a := ck.Arch
	p := &fabProgram{cfg: cfg, ck: ck, modes: deployModes(modes)}
	g := graph.New(lib)
	net := evalNet(g, a, ck.Quant)
	b, d := cfg.Batch, a.C*a.H*a.W
	shape := []int{b, a.C, a.H, a.W}
	p.x1, p.x0 = g.Input("x1", graph.F32, shape...), g.Input("x0", graph.F32, shape...)
	p.y, p.tgt = g.Input("labels", graph.U32, b), g.Input("targets", graph.U32, b)
	own := forwardOf(cfg.Through)
	p.predF = g.Argmax(net.Forward(g, p.x1, own))
	for _, m := range p.modes {
		if ck.Quant == nil || m == own {
			p.preds = append(p.preds, p.predF)
		} else {
			p.preds = append(p.preds, g.Argmax(net.Forward(g, p.x1, m)))
		}
	}
	p.xs = g.State("fab.x", shape...)
	g.Copy(p.xs, p.x1)
	beta := cfg.Beta
	g.Add(&graph.Op{Name: "fab backstep", In: []*graph.Tensor{p.predF, p.y, p.x0, p.xs}, Out: []*graph.Tensor{p.xs},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			return lib.FABBackstep(r, at(p.predF), at(p.y), at(p.x0), at(p.xs), b, d, beta)
		}})
	p.df = g.DLRLoss(kernels.TargetMargin, net.Forward(g, p.xs, cfg.Through), p.y, p.tgt)
	g.Keep(p.df)
	if err := g.Backward(p.df, 1, p.xs); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	p.dg = p.xs.Grad
	prog, err := compileWith(g, net, ck, cfg.Name)
	if err != nil {
		return nil, err
	}
	p.prog = prog
	return p, nil
}

func (p *fabProgram) Close() { p.prog.Close() }

// fabOutcome is what a FAB run found: per deployed classifier, the candidates (the closest fooling iterate inside
// ε), and per example the smallest ℓ∞ distance of an iterate that fooled the attack's own classifier (+Inf: none).
type fabOutcome struct {
	cands candidates
	dist  map[int]float64
}

// run attacks the examples idx towards targets (targets[i] for idx[i]) in batches; tick, when set, hears after each
// batch how many examples are done.
func (p *fabProgram) run(images []float32, labels []uint8, idx []int, targets []uint32,
	tick func(done int)) (*fabOutcome, error) {
	if len(targets) != len(idx) {
		return nil, fmt.Errorf("%s: %d targets for %d examples", p.cfg.Name, len(targets), len(idx))
	}
	a := p.ck.Arch
	b, sz := p.cfg.Batch, a.C*a.H*a.W
	out := &fabOutcome{cands: newCandidates(len(p.modes)), dist: map[int]float64{}}
	x0b, x1b, xsb, dgb := make([]float32, b*sz), make([]float32, b*sz), make([]float32, b*sz), make([]float32, b*sz)
	yb, tb, pf, dfb := make([]uint32, b), make([]uint32, b), make([]uint32, b), make([]float32, b)
	pm := make([][]uint32, len(p.modes))
	for i := range pm {
		pm[i] = make([]uint32, b)
	}
	for lo := 0; lo < len(idx); lo += b {
		hi := min(lo+b, len(idx))
		rows := hi - lo
		for r := range b {
			j := min(lo+r, hi-1) // padding rows repeat the batch's last example
			e := idx[j]
			copy(x0b[r*sz:(r+1)*sz], images[e*sz:(e+1)*sz])
			yb[r], tb[r] = uint32(labels[e]), targets[j]
		}
		copy(x1b, x0b)
		best := make([]float64, rows)               // FAB's own record
		candDist := make([][]float64, len(p.modes)) // per mode, the closest candidate so far
		for mi := range candDist {
			candDist[mi] = make([]float64, rows)
			for r := range candDist[mi] {
				candDist[mi][r] = math.Inf(1)
			}
		}
		for r := range best {
			best[r] = math.Inf(1)
		}
		for it := 0; it <= p.cfg.Iters; it++ {
			for _, w := range []struct {
				t *graph.Tensor
				f []float32
				u []uint32
			}{{p.x1, x1b, nil}, {p.x0, x0b, nil}, {p.y, nil, yb}, {p.tgt, nil, tb}} {
				var err error
				if w.f != nil {
					err = graph.Write(p.prog, w.t, w.f)
				} else {
					err = graph.Write(p.prog, w.t, w.u)
				}
				if err != nil {
					return nil, err
				}
			}
			if err := p.prog.Run(); err != nil {
				return nil, err
			}
			if err := graph.Read(p.prog, p.predF, pf); err != nil {
				return nil, err
			}
			for mi := range p.modes {
				if err := graph.Read(p.prog, p.preds[mi], pm[mi]); err != nil {
					return nil, err
				}
			}
			if it > 0 { // the submitted point is an iterate (at it = 0 it is the clean image)
				for r := range rows {
					x1, x0 := x1b[r*sz:(r+1)*sz], x0b[r*sz:(r+1)*sz]
					t := linfDist(x1, x0)
					if pf[r] != yb[r] && t < best[r] {
						best[r] = t
					}
					for mi := range p.modes {
						if pm[mi][r] == yb[r] || t >= candDist[mi][r] || t > float64(p.cfg.Eps)+1e-6 {
							continue
						}
						c := append([]float32(nil), x1...)
						projectBall(c, x0, p.cfg.Eps) // float32 rounding of the bound only
						candDist[mi][r] = t
						out.cands[mi][idx[lo+r]] = c
					}
				}
			}
			if it == p.cfg.Iters {
				break
			}
			if err := graph.Read(p.prog, p.xs, xsb); err != nil {
				return nil, err
			}
			if err := graph.Read(p.prog, p.df, dfb); err != nil {
				return nil, err
			}
			if err := graph.Read(p.prog, p.dg, dgb); err != nil {
				return nil, err
			}
			parallelRows(rows, func(r int) {
				s := r * sz
				fabStep(x1b[s:s+sz], xsb[s:s+sz], x0b[s:s+sz], dgb[s:s+sz], float64(dfb[r]), p.cfg)
			})
		}
		for r := range rows {
			if !math.IsInf(best[r], 1) {
				out.dist[idx[lo+r]] = best[r]
			}
		}
		if tick != nil {
			tick(hi)
		}
	}
	return out, nil
}

// fabStep writes FAB's next point into x1 from the point after the step back xs, the clean image x0, and the
// linearisation of f_t − f_y at xs: value f, gradient w (the hyperplane ⟨w, x⟩ = ⟨w, xs⟩ − f).
func fabStep(x1, xs, x0, w []float32, f float64, c FAB) {
	bh := -f
	for i, v := range w {
		bh += float64(v) * float64(xs[i])
	}
	d1, d2 := projectLinf(xs, w, bh), projectLinf(x0, w, bh)
	a1, a2 := max(linfNorm(d1), 1e-8), max(linfNorm(d2), 1e-8)
	alpha := min(max(a1/(a1+a2), 0), c.AlphaMax)
	for i := range x1 {
		v := (float64(xs[i])+c.Eta*d1[i])*(1-alpha) + (float64(x0[i])+c.Eta*d2[i])*alpha
		x1[i] = float32(min(max(v, 0), 1))
	}
}

// projectLinf returns the smallest ℓ∞ move d (in float64) that puts t + d on the hyperplane ⟨w, x⟩ = b inside
// [0, 1]^D: each coordinate moves by min(λ, its room) towards the side that changes ⟨w, x⟩ the right way, with λ
// the least value closing the gap; where the box cannot close it, every coordinate moves its whole room (the
// closest the box allows, as FAB's reference projection does).
func projectLinf(t, w []float32, b float64) []float64 {
	d := make([]float64, len(t))
	c := b
	for i, v := range w {
		c -= float64(v) * float64(t[i])
	}
	if c == 0 {
		return d
	}
	type coord struct {
		room, weight float64
		i            int
	}
	cs := make([]coord, 0, len(t))
	total, gap := 0.0, math.Abs(c)
	for i, v := range w {
		s := float64(v)
		if c < 0 {
			s = -s
		}
		switch {
		case s > 0:
			cs = append(cs, coord{1 - float64(t[i]), s, i})
		case s < 0:
			cs = append(cs, coord{float64(t[i]), -s, i})
		default:
			continue
		}
		total += math.Abs(s)
	}
	sort.Slice(cs, func(a, b int) bool { return cs[a].room < cs[b].room })
	lambda, acc, rest := math.Inf(1), 0.0, total
	for _, k := range cs {
		if acc+k.room*rest >= gap {
			lambda = (gap - acc) / rest
			break
		}
		acc += k.weight * k.room
		rest -= k.weight
	}
	for _, k := range cs {
		m := min(lambda, k.room)
		s := float64(w[k.i])
		if c < 0 {
			s = -s
		}
		if s < 0 {
			m = -m
		}
		d[k.i] = m
	}
	return d
}

// linfDist is max_i |a_i − b_i| in float64.
func linfDist(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func linfNorm(d []float64) float64 {
	m := 0.0
	for _, v := range d {
		m = max(m, math.Abs(v))
	}
	return m
}

// parallelRows runs fn for rows 0..n−1 on every core (the host side of an attack: independent per example).
func parallelRows(n int, fn func(r int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := w; r < n; r += workers {
				fn(r)
			}
		}()
	}
	wg.Wait()
}
