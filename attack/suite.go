package attack

import (
	"fmt"
	"time"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
)

// Suites lists the evaluation suites NewSuite knows, strongest first.
var Suites = []string{"standard", "autoattack", "quick", "smoke"}

// Suite is an evaluation: a clean pass, AutoAttack's cascade when the suite has it, and standalone attacks that
// each run on every example.
type Suite struct {
	Name       string
	Attacks    []Config    // the clean pass first
	AutoAttack *AutoAttack // nil: none
	// SquareRestarts is how many more Square attacks (other seeds) run, last, against every deployed classifier on
	// the points still robust to everything: AutoAttack's documented remedy when its Square flag fires ("run Square
	// Attack with higher budget: more queries, random restarts"). They run whether or not the flag fired, so that
	// what an example faces never depends on the other examples — a shard of the test set then gets exactly the
	// whole run's attacks — and a flag that happens not to fire on one sample cannot weaken the evaluation.
	SquareRestarts int
}

// SetFirstID makes the suite's attacks draw their randomness as examples FirstID, FirstID + 1, … for the images
// given to RunSuite: a shard starting at that offset then gets what the whole run gives those examples.
func (s *Suite) SetFirstID(id int) {
	for i := range s.Attacks {
		s.Attacks[i].FirstID = id
	}
	if s.AutoAttack != nil {
		s.AutoAttack.FirstID = id
	}
}

// HasAutoAttack reports whether the suite runs AutoAttack at its full (standard) effort.
func (s *Suite) HasAutoAttack() bool { return s.AutoAttack != nil && s.Name != "smoke" }

// NewSuite returns an evaluation suite at radius eps for a model (BPDA and EOT only where it has a quantizer):
//
//   - standard: clean, AutoAttack (standard version), FGSM, PGD-40, PGD-100×10 restarts, CW-PGD-100,
//     BPDA-100×10 (hard forward, identity backward) and EOT-PGD-40 over 4 noise draws for quantized models, random
//     search (20 points), and 2 more Square restarts on what survived all of them.
//   - autoattack: clean and AutoAttack alone (RobustBench's protocol).
//   - quick: clean, FGSM, PGD-40, BPDA-40, random search (10 points), for make run and quick reproductions; no
//     AutoAttack, so its numbers are weaker upper bounds.
//   - smoke: clean, AutoAttack at a token effort, FGSM, PGD-5, BPDA-5, random search (2 points): exercises
//     everything in seconds, for tests.
func NewSuite(name string, ck *model.Checkpoint, eps float32, batch int, seed uint64) (*Suite, error) {
	spec, ok := suiteSpecs[name]
	if !ok {
		return nil, fmt.Errorf("unknown suite %q (known: %v)", name, Suites)
	}
	pgd := func(steps, restarts int) Config { return PGDk(eps, steps, restarts) }
	clean := FGSM(0)
	clean.Name = "clean"
	s := &Suite{Name: name, Attacks: []Config{clean}}
	switch spec.aa {
	case "standard":
		aa := StandardAutoAttack(eps, seed, batch)
		s.AutoAttack = &aa
		s.SquareRestarts = spec.squareRestarts
	case "smoke":
		aa := SmokeAutoAttack(eps, seed, batch)
		s.AutoAttack = &aa
		s.SquareRestarts = spec.squareRestarts
	}
	if spec.fgsm {
		s.Attacks = append(s.Attacks, FGSM(eps))
	}
	for _, p := range spec.pgd {
		s.Attacks = append(s.Attacks, pgd(p[0], p[1]))
	}
	if spec.cw > 0 {
		cw := pgd(spec.cw, 1)
		cw.Name, cw.Loss = fmt.Sprintf("cw-pgd-%d", spec.cw), "cw"
		s.Attacks = append(s.Attacks, cw)
	}
	if ck.Quant != nil && spec.bpda[0] > 0 {
		b := pgd(spec.bpda[0], spec.bpda[1])
		b.Name, b.Through = fmt.Sprintf("bpda-%d×%d", spec.bpda[0], spec.bpda[1]), quant.BPDAIdentity
		s.Attacks = append(s.Attacks, b)
		if spec.eot[0] > 0 {
			// EOT over noise of half the radius smooths the quantizer's steep gradient (its own form of masking).
			e := pgd(spec.eot[0], 1)
			e.Name, e.EOT, e.EOTNoise = fmt.Sprintf("eot-pgd-%d×%d", spec.eot[0], spec.eot[1]), spec.eot[1], eps/2
			s.Attacks = append(s.Attacks, e)
		}
	}
	if spec.samples > 0 {
		rs := PGD(eps, 0, 1, spec.samples)
		rs.Name = fmt.Sprintf("random-search×%d", spec.samples)
		s.Attacks = append(s.Attacks, rs)
	}
	for i := range s.Attacks {
		s.Attacks[i].Batch, s.Attacks[i].Seed = batch, seed
	}
	return s, nil
}

// suiteSpec is a suite's effort: AutoAttack's version (""), its standalone attacks — PGD (steps, restarts),
// CW-PGD steps (0: none), BPDA and EOT-PGD (steps, restarts or draws; quantized models only) — and random-search
// samples.
type suiteSpec struct {
	aa      string
	fgsm    bool
	pgd     [][2]int
	cw      int
	bpda    [2]int
	eot     [2]int
	samples int
	// squareRestarts: more Square restarts on what survived every attack (see Suite.SquareRestarts).
	squareRestarts int
}

var suiteSpecs = map[string]suiteSpec{
	"standard": {aa: "standard", fgsm: true, pgd: [][2]int{{40, 1}, {100, 10}}, cw: 100, bpda: [2]int{100, 10},
		eot: [2]int{40, 4}, samples: 20, squareRestarts: 2},
	"autoattack": {aa: "standard"},
	"quick":      {fgsm: true, pgd: [][2]int{{40, 1}}, bpda: [2]int{40, 1}, samples: 10},
	"smoke":      {aa: "smoke", fgsm: true, pgd: [][2]int{{5, 1}}, bpda: [2]int{5, 1}, samples: 2, squareRestarts: 1},
}

// SuiteReport is an evaluation suite's outcome against one deployed classifier.
type SuiteReport struct {
	Suite      string     `json:"suite"`
	Deploy     quant.Mode `json:"deploy"`
	Results    []*Result  `json:"attacks"`              // the standalone attacks (clean first), each on every example
	AutoAttack *AAReport  `json:"autoattack,omitempty"` // AutoAttack's cumulative sequence
	// Worst is the per-example worst case: an example counts only if it survived every attack.
	WorstCorrect  int     `json:"worst_case_robust"`
	WorstAccuracy float64 `json:"worst_case_accuracy"`
	N             int     `json:"n"`
	Seconds       float64 `json:"seconds"`
	// BrokenBy names, per example, the first attack in the suite's order that broke it: "clean" for a clean
	// misclassification, AutoAttack's attacks by their names, then the standalone ones; "" for a robust example.
	BrokenBy []string `json:"broken_by"`
}

// SuiteHooks hear an evaluation's progress.
type SuiteHooks struct {
	Result     func(*Result)   // after each standalone attack, once per deployed classifier
	AutoAttack func(*AAReport) // after AutoAttack, once per deployed classifier
	Progress   func(Progress)  // during AutoAttack
}

// RunSuite runs a suite on n images against every deployed classifier in deploy — and, with a surrogate
// checkpoint, a transfer attack (PGD-40 crafted on the surrogate) — and combines everything per example. It
// returns one report per deployed classifier, in deploy's order.
func RunSuite(lib *kernels.Lib, ck, surrogate *model.Checkpoint, s *Suite, deploy []quant.Mode, images []float32,
	labels []uint8, n int, hooks SuiteHooks) ([]*SuiteReport, error) {
	start := time.Now()
	modes := deployModes(deploy)
	reps := make([]*SuiteReport, len(modes))
	for i, m := range modes {
		reps[i] = &SuiteReport{Suite: s.Name, Deploy: m, N: n, BrokenBy: make([]string, n)}
	}
	record := func(rs []*Result) {
		for i, r := range rs {
			recordOne(reps[i], r, hooks)
		}
	}
	run := func(c Config) error {
		c.Deploy = modes
		a, err := New(lib, ck, c)
		if err != nil {
			return err
		}
		rs, err := a.RunAll(images, labels, nil, n)
		a.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		record(rs)
		return nil
	}
	for i, c := range s.Attacks {
		if err := run(c); err != nil {
			return nil, err
		}
		if i > 0 || s.AutoAttack == nil {
			continue
		}
		// AutoAttack right after the clean pass, so its broken examples are named by its attacks.
		aas, err := s.AutoAttack.Run(lib, ck, modes, images, labels, n, hooks.Progress)
		if err != nil {
			return nil, fmt.Errorf("autoattack: %w", err)
		}
		for mi, aa := range aas {
			reps[mi].AutoAttack = aa
			for e, by := range aa.BrokenBy {
				if by != "" && reps[mi].BrokenBy[e] == "" {
					reps[mi].BrokenBy[e] = by
				}
			}
			if hooks.AutoAttack != nil {
				hooks.AutoAttack(aa)
			}
		}
	}
	if surrogate != nil && len(s.Attacks) > 0 {
		// The suite's radius: every attack but the clean pass uses it.
		var eps float32
		for _, x := range s.Attacks {
			eps = max(eps, x.Eps)
		}
		c := PGDk(eps, 40, 1)
		c.Name, c.Batch, c.Seed, c.Deploy = "pgd-40", s.Attacks[0].Batch, s.Attacks[0].Seed, modes
		rs, err := Transfer(lib, surrogate, ck, c, images, labels, n)
		if err != nil {
			return nil, fmt.Errorf("transfer: %w", err)
		}
		record(rs)
	}
	if s.AutoAttack != nil && s.SquareRestarts > 0 {
		for _, rep := range reps {
			r, err := squareRestarts(lib, ck, *s.AutoAttack, s.SquareRestarts, rep, images, labels, hooks.Progress)
			if err != nil {
				return nil, fmt.Errorf("square restarts: %w", err)
			}
			recordOne(rep, r, hooks)
		}
	}
	for _, rep := range reps {
		for _, by := range rep.BrokenBy {
			if by == "" {
				rep.WorstCorrect++
			}
		}
		rep.WorstAccuracy = float64(rep.WorstCorrect) / float64(n)
		rep.Seconds = time.Since(start).Seconds()
	}
	return reps, nil
}

// recordOne adds an attack's result to a classifier's report: the examples it broke that nothing broke before are
// named after it.
func recordOne(rep *SuiteReport, r *Result, hooks SuiteHooks) {
	for e, ok := range r.Robust {
		if !ok && rep.BrokenBy[e] == "" {
			rep.BrokenBy[e] = r.Name
		}
	}
	rep.Results = append(rep.Results, r)
	if hooks.Result != nil {
		hooks.Result(r)
	}
}

// squareRestarts runs the suite's extra Square restarts against rep's classifier on the examples robust to every
// attack so far. Its result is cumulative: an example is robust under it only if it was robust before and the
// restarts did not break it.
func squareRestarts(lib *kernels.Lib, ck *model.Checkpoint, aa AutoAttack, restarts int, rep *SuiteReport,
	images []float32, labels []uint8, progress func(Progress)) (*Result, error) {
	start := time.Now()
	n, sz := rep.N, ck.Arch.C*ck.Arch.H*ck.Arch.W
	r := &Result{Name: fmt.Sprintf("square-restarts×%d", restarts), Eps: aa.Eps, Deploy: rep.Deploy, N: n,
		Robust: make([]bool, n), Adv: append([]float32(nil), images[:n*sz]...), Pred: make([]uint32, n)}
	var idx []int
	for e, by := range rep.BrokenBy {
		if by == "" {
			idx = append(idx, e)
		}
	}
	broken, queries, err := aa.SquareRestarts(lib, ck, rep.Deploy, images, labels, idx, restarts, progress)
	if err != nil {
		return nil, err
	}
	for _, e := range idx {
		if b, ok := broken[e]; ok {
			copy(r.Adv[e*sz:(e+1)*sz], b.x)
			r.Pred[e] = b.pred
			continue
		}
		r.Robust[e] = true
		r.Pred[e] = uint32(labels[e])
		r.Correct++
	}
	r.Accuracy = float64(r.Correct) / float64(n)
	r.Seconds, r.Queries = time.Since(start).Seconds(), queries
	return r, nil
}

// Strongest returns the standalone attack with the lowest robust accuracy (nil for a suite of the clean pass
// alone), for pictures of what it does.
func (r *SuiteReport) Strongest() *Result {
	var best *Result
	for _, x := range r.Results {
		if x.Name != "clean" && (best == nil || x.Accuracy < best.Accuracy) {
			best = x
		}
	}
	return best
}
