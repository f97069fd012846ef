package attack

import (
	"fmt"
	"sort"
	"time"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
)

// AutoAttack is the field's standard ℓ∞ evaluation (Croce & Hein, ICML 2020; RobustBench runs it for every
// leaderboard entry): APGD-CE, then APGD-T on the targeted DLR loss towards each of the 9 highest other classes,
// then FAB-T towards the same targets, then the black-box Square Attack with 5000 queries — each attack only on the
// points still robust, so the robust accuracy it reports after each one is cumulative. For a model with a
// quantizer every gradient attack runs twice, through the soft quantizer's true gradient and through the hard one
// with BPDA (identity backward), and Square queries each deployed classifier itself. Every candidate of every
// attack is judged by the deployed classifier(s) (see deploy.go).
type AutoAttack struct {
	Eps         float32
	Seed        uint64
	Batch       int
	APGDIters   int     // 100
	Targets     int     // APGD-T and FAB-T targets: 9
	FABIters    int     // 100
	SquareIters int     // 5000
	PInit       float64 // 0.8
	// Throughs are the gradient paths of the gradient attacks; nil: quant.Soft, plus quant.BPDAIdentity for a
	// model with a quantizer.
	Throughs []quant.Mode
	// FirstID is the id of the first image given to Run: every attack draws its randomness per example id
	// (FirstID + position), so a shard of a test set gets exactly what the whole run gives its examples.
	FirstID int
}

// StandardAutoAttack returns AutoAttack's "standard" version at radius eps.
func StandardAutoAttack(eps float32, seed uint64, batch int) AutoAttack {
	return AutoAttack{Eps: eps, Seed: seed, Batch: batch, APGDIters: 100, Targets: 9, FABIters: 100,
		SquareIters: 5000, PInit: 0.8}
}

// SmokeAutoAttack is the standard sequence at a token effort (5 iterations, 2 targets, 50 queries): it exercises
// every attack in seconds, for tests and the smoke suite; its numbers mean nothing.
func SmokeAutoAttack(eps float32, seed uint64, batch int) AutoAttack {
	return AutoAttack{Eps: eps, Seed: seed, Batch: batch, APGDIters: 5, Targets: 2, FABIters: 5, SquareIters: 50,
		PInit: 0.8}
}

// AAStep is one attack of the sequence against one deployed classifier.
type AAStep struct {
	Attack   string  `json:"attack"`   // apgd-ce, apgd-t, fab-t (with /bpda through the hard quantizer), square
	Gradient string  `json:"gradient"` // soft, bpda, or none (Square)
	Attacked int     `json:"attacked"` // the points still robust that it ran on
	Broken   int     `json:"broken"`   // of those, the ones it broke
	Robust   int     `json:"robust"`   // robust after it (cumulative)
	Accuracy float64 `json:"robust_accuracy"`
	Seconds  float64 `json:"seconds"`
	// Queries counts the model evaluations the attack spent on these points (forward passes, with or without an
	// input gradient; APGD 1 + iterations per target, FAB 2 per iteration, Square its queries).
	Queries int64 `json:"queries"`
	// Unconfirmed counts the attack's claims that the deployed classifier did not confirm (a candidate outside the
	// ball, or one it classifies correctly); they count for nothing.
	Unconfirmed int `json:"unconfirmed,omitempty"`
}

// AAReport is AutoAttack's outcome against one deployed classifier.
type AAReport struct {
	Deploy        quant.Mode `json:"deploy"`
	N             int        `json:"n"`
	Clean         int        `json:"clean"`
	CleanAccuracy float64    `json:"clean_accuracy"`
	Steps         []AAStep   `json:"steps"`
	Robust        int        `json:"robust"`
	Accuracy      float64    `json:"robust_accuracy"`
	Seconds       float64    `json:"seconds"`
	// RobustFlags, BrokenBy ("" robust, "clean" misclassified unattacked, else the attack) and Adv (the confirmed
	// adversarial example of each broken example, else the clean image) are per example.
	RobustFlags []bool    `json:"-"`
	BrokenBy    []string  `json:"-"`
	Adv         []float32 `json:"-"`
	Pred        []uint32  `json:"-"` // the deployed classifier's prediction on Adv
}

// Progress reports an evaluation's advance: the attack running (with its target), how far it is, and how many
// points are still robust against some deployed classifier.
type Progress struct {
	Attack      string
	Done, Total int // units of this attack: examples (×targets), or Square's unfinished examples
	Left        int
}

// Validate checks the configuration.
func (c AutoAttack) Validate() error {
	if !(c.Eps >= 0) || c.Batch < 1 || c.APGDIters < 1 || c.Targets < 0 || c.FABIters < 1 || c.SquareIters < 0 {
		return fmt.Errorf("autoattack: ε %v, batch %d, APGD %d iterations, %d targets, FAB %d iterations, Square %d",
			c.Eps, c.Batch, c.APGDIters, c.Targets, c.FABIters, c.SquareIters)
	}
	return nil
}

// throughs returns the gradient paths for ck.
func (c AutoAttack) throughs(ck *model.Checkpoint) []quant.Mode {
	if c.Throughs != nil {
		return c.Throughs
	}
	if ck.Quant == nil {
		return []quant.Mode{quant.Soft}
	}
	return []quant.Mode{quant.Soft, quant.BPDAIdentity}
}

// aaRun is the state of one AutoAttack evaluation.
type aaRun struct {
	cfg      AutoAttack
	lib      *kernels.Lib
	ck       *model.Checkpoint
	modes    []quant.Mode
	images   []float32
	labels   []uint8
	n, sz    int
	reps     []*AAReport
	judge    *classifier            // the deployed classifiers, for confirmation
	clean    map[quant.Mode][][]int // forward mode → each example's classes by decreasing clean logit
	progress func(Progress)
}

// aaStep is one attack of a plan, through a gradient path (Square: quant.Hard, unused).
type aaStep struct {
	attack  string
	through quant.Mode
}

// plan is the standard sequence for ck: APGD-CE, APGD-T, FAB-T (each through every gradient path), Square.
func (c AutoAttack) plan(ck *model.Checkpoint) []aaStep {
	var p []aaStep
	for _, a := range []string{"apgd-ce", "apgd-t", "fab-t"} {
		if a != "apgd-ce" && c.Targets == 0 {
			continue
		}
		for _, t := range c.throughs(ck) {
			p = append(p, aaStep{a, t})
		}
	}
	if c.SquareIters > 0 {
		p = append(p, aaStep{"square", quant.Hard})
	}
	return p
}

// SingleAttacks lists the attacks Single runs.
var SingleAttacks = []string{"apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square"}

// Single runs one attack of the family alone — apgd-ce, apgd-dlr, apgd-t or fab-t (towards each of the Targets
// highest other classes in turn, on the points still robust), or square — through a gradient path (ignored by
// Square), at c's effort, and returns a result per deployed classifier.
func (c AutoAttack) Single(lib *kernels.Lib, ck *model.Checkpoint, attack string, through quant.Mode,
	deploy []quant.Mode, images []float32, labels []uint8, n int, progress func(Progress)) ([]*Result, error) {
	known := false
	for _, a := range SingleAttacks {
		known = known || a == attack
	}
	if !known {
		return nil, fmt.Errorf("unknown attack %q (known: %v)", attack, SingleAttacks)
	}
	if attack == "square" {
		through = quant.Hard
	}
	reps, err := c.run(lib, ck, deploy, images, labels, n, progress, []aaStep{{attack, through}})
	if err != nil {
		return nil, err
	}
	name := stepName(attack, through)
	if attack == "square" {
		name = "square"
	}
	out := make([]*Result, len(reps))
	for i, rep := range reps {
		var queries int64
		for _, s := range rep.Steps {
			queries += s.Queries
		}
		out[i] = &Result{Name: name, Eps: c.Eps, Deploy: rep.Deploy, N: n, Correct: rep.Robust,
			Accuracy: rep.Accuracy, Robust: rep.RobustFlags, Adv: rep.Adv, Pred: rep.Pred, Seconds: rep.Seconds,
			Queries: queries}
	}
	return out, nil
}

// Run evaluates ck on n images against every deployed classifier in deploy and returns a report for each.
func (c AutoAttack) Run(lib *kernels.Lib, ck *model.Checkpoint, deploy []quant.Mode, images []float32,
	labels []uint8, n int, progress func(Progress)) ([]*AAReport, error) {
	return c.run(lib, ck, deploy, images, labels, n, progress, c.plan(ck))
}

func (c AutoAttack) run(lib *kernels.Lib, ck *model.Checkpoint, deploy []quant.Mode, images []float32,
	labels []uint8, n int, progress func(Progress), plan []aaStep) ([]*AAReport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	modes := deployModes(deploy)
	if err := checkDeploy("autoattack", modes); err != nil {
		return nil, err
	}
	a := ck.Arch
	sz := a.C * a.H * a.W
	if n <= 0 || len(images) < n*sz || len(labels) < n {
		return nil, fmt.Errorf("autoattack: %d examples need %d floats and %d labels", n, n*sz, n)
	}
	start := time.Now()
	r := &aaRun{cfg: c, lib: lib, ck: ck, modes: modes, images: images, labels: labels, n: n, sz: sz,
		clean: map[quant.Mode][][]int{}, progress: progress}
	judge, err := newClassifier(lib, ck, modes, batchFor(n, c.Batch))
	if err != nil {
		return nil, err
	}
	defer judge.Close()
	r.judge = judge
	preds, err := judge.predictions(images, n)
	if err != nil {
		return nil, err
	}
	for mi, m := range modes {
		rep := &AAReport{Deploy: m, N: n, RobustFlags: make([]bool, n), BrokenBy: make([]string, n),
			Adv: append([]float32(nil), images[:n*sz]...), Pred: preds[mi]}
		for i := range n {
			if preds[mi][i] == uint32(labels[i]) {
				rep.RobustFlags[i] = true
				rep.Clean++
			} else {
				rep.BrokenBy[i] = "clean"
			}
		}
		rep.CleanAccuracy = float64(rep.Clean) / float64(n)
		r.reps = append(r.reps, rep)
	}
	for _, st := range plan {
		var err error
		switch st.attack {
		case "apgd-ce", "apgd-dlr":
			err = r.untargeted(st.attack, st.through)
		case "apgd-t", "fab-t":
			err = r.targeted(st.attack, st.through)
		case "square":
			for mi := range modes {
				if err = r.square(mi); err != nil {
					break
				}
			}
		default:
			err = fmt.Errorf("autoattack: unknown attack %q", st.attack)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, rep := range r.reps {
		for _, ok := range rep.RobustFlags {
			if ok {
				rep.Robust++
			}
		}
		rep.Accuracy = float64(rep.Robust) / float64(n)
		rep.Seconds = time.Since(start).Seconds()
	}
	return r.reps, nil
}

// batchFor is the batch an attack on points examples runs with, at most most: the fewest batches of at most most
// rows, evened out (780 points in batches of 100 run as 8 of 98), so a batch carries few padding rows — at worst
// one fewer than the batches — and an attack on 20 points does not pay for 100. Every attack draws its randomness
// per example, never per batch, so the batch changes no result.
func batchFor(points, most int) int {
	if points < 1 {
		return most
	}
	k := (points + most - 1) / most
	return (points + k - 1) / k
}

// active lists the examples still robust against some deployed classifier.
func (r *aaRun) active() []int {
	var idx []int
	for i := range r.n {
		for _, rep := range r.reps {
			if rep.RobustFlags[i] {
				idx = append(idx, i)
				break
			}
		}
	}
	return idx
}

// stepName names a gradient attack through a path.
func stepName(attack string, through quant.Mode) string {
	if through == quant.Soft {
		return attack
	}
	return attack + "/" + through.String()
}

// beginSteps opens one step per deployed classifier, counting the points it is about to attack.
func (r *aaRun) beginSteps(name, gradient string) []*AAStep {
	steps := make([]*AAStep, len(r.reps))
	for mi, rep := range r.reps {
		s := &AAStep{Attack: name, Gradient: gradient}
		for _, ok := range rep.RobustFlags {
			if ok {
				s.Attacked++
			}
		}
		steps[mi] = s
	}
	return steps
}

// endSteps closes the steps: cumulative robust counts, time, queries.
func (r *aaRun) endSteps(steps []*AAStep, start time.Time, queries int64) {
	for mi, rep := range r.reps {
		s := steps[mi]
		for _, ok := range rep.RobustFlags {
			if ok {
				s.Robust++
			}
		}
		s.Accuracy = float64(s.Robust) / float64(r.n)
		s.Seconds, s.Queries = time.Since(start).Seconds(), queries
		rep.Steps = append(rep.Steps, *s)
	}
}

// record confirms candidates with the deployed classifiers and marks what they break (only points still robust
// against that classifier count).
func (r *aaRun) record(name string, cands candidates, steps []*AAStep) error {
	broken, unconfirmed, err := confirm(r.judge, cands, r.images, r.labels, r.cfg.Eps, r.sz)
	if err != nil {
		return err
	}
	for mi, rep := range r.reps {
		steps[mi].Unconfirmed += unconfirmed[mi]
		for e, c := range broken[mi] {
			if !rep.RobustFlags[e] {
				continue
			}
			rep.RobustFlags[e] = false
			rep.BrokenBy[e] = name
			copy(rep.Adv[e*r.sz:(e+1)*r.sz], c.x)
			rep.Pred[e] = c.pred
			steps[mi].Broken++
		}
	}
	return nil
}

func (r *aaRun) report(attack string, done, total int) {
	if r.progress != nil {
		r.progress(Progress{Attack: attack, Done: done, Total: total, Left: len(r.active())})
	}
}

// untargeted runs APGD-CE or APGD-DLR through a gradient path on the points still robust.
func (r *aaRun) untargeted(attack string, through quant.Mode) error {
	name := stepName(attack, through)
	idx := r.active()
	steps := r.beginSteps(name, through.String())
	start := time.Now()
	if len(idx) == 0 {
		r.endSteps(steps, start, 0)
		return nil
	}
	loss := map[string]string{"apgd-ce": "ce", "apgd-dlr": "dlr"}[attack]
	cfg := NewAPGD(loss, r.cfg.Eps, through, r.cfg.Seed, batchFor(len(idx), r.cfg.Batch))
	cfg.Iters, cfg.FirstID = r.cfg.APGDIters, r.cfg.FirstID
	p, err := newAPGDProgram(r.lib, r.ck, cfg, r.modes)
	if err != nil {
		return err
	}
	defer p.Close()
	cands, err := p.run(r.images, r.labels, idx, nil, 0, func(done int) { r.report(name, done, len(idx)) })
	if err != nil {
		return err
	}
	if err := r.record(name, cands, steps); err != nil {
		return err
	}
	r.endSteps(steps, start, int64(len(idx))*int64(cfg.Iters+1))
	return nil
}

// targetsOf returns the target of rank `rank` (1: the highest class other than the top one) of each example
// under the clean logits of a forward mode.
func (r *aaRun) targetsOf(mode quant.Mode, idx []int, rank int) ([]uint32, error) {
	if _, ok := r.clean[mode]; !ok {
		cl, err := newClassifier(r.lib, r.ck, []quant.Mode{mode}, batchFor(r.n, r.cfg.Batch))
		if err != nil {
			return nil, err
		}
		z, err := cl.run(r.images, r.n)
		cl.Close()
		if err != nil {
			return nil, err
		}
		k := r.ck.Arch.Classes
		order := make([][]int, r.n)
		for i := range order {
			order[i] = ranked(z[0][i*k : (i+1)*k])
		}
		r.clean[mode] = order
	}
	t := make([]uint32, len(idx))
	for i, e := range idx {
		t[i] = uint32(r.clean[mode][e][rank])
	}
	return t, nil
}

// targeted runs APGD-T or FAB-T through a path: towards each target rank in turn, on the points still robust.
func (r *aaRun) targeted(attack string, through quant.Mode) error {
	name := stepName(attack, through)
	steps := r.beginSteps(name, through.String())
	start := time.Now()
	var queries int64
	targets := min(r.cfg.Targets, r.ck.Arch.Classes-1)
	batch := batchFor(len(r.active()), r.cfg.Batch) // the first target has the most points
	var apgd *apgdProgram
	var fab *fabProgram
	var err error
	if attack == "apgd-t" {
		cfg := NewAPGD("dlr-t", r.cfg.Eps, through, r.cfg.Seed, batch)
		cfg.Iters, cfg.FirstID = r.cfg.APGDIters, r.cfg.FirstID
		if r.ck.Arch.Classes < kernels.DLRTargeted.MinClasses() {
			r.endSteps(steps, start, 0) // too few classes for the targeted DLR loss: AutoAttack skips it too
			return nil
		}
		apgd, err = newAPGDProgram(r.lib, r.ck, cfg, r.modes)
	} else {
		cfg := NewFAB(r.cfg.Eps, through, batch)
		cfg.Iters = r.cfg.FABIters
		fab, err = newFABProgram(r.lib, r.ck, cfg, r.modes)
	}
	if err != nil {
		return err
	}
	for rank := 1; rank <= targets; rank++ {
		idx := r.active()
		if len(idx) == 0 {
			break
		}
		tg, err := r.targetsOf(forwardOf(through), idx, rank)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("%s (target %d/%d)", name, rank, targets)
		tick := func(done int) { r.report(label, done, len(idx)) }
		var cands candidates
		if apgd != nil {
			cands, err = apgd.run(r.images, r.labels, idx, tg, uint32(rank), tick)
			queries += int64(len(idx)) * int64(r.cfg.APGDIters+1)
		} else {
			var o *fabOutcome
			o, err = fab.run(r.images, r.labels, idx, tg, tick)
			if o != nil {
				cands = o.cands
			}
			queries += int64(len(idx)) * int64(2*r.cfg.FABIters+1)
		}
		if err != nil {
			return err
		}
		if err := r.record(name, cands, steps); err != nil {
			return err
		}
	}
	if apgd != nil {
		apgd.Close()
	}
	if fab != nil {
		fab.Close()
	}
	r.endSteps(steps, start, queries)
	return nil
}

// square runs the Square Attack against deployed classifier mi on the points still robust against it.
func (r *aaRun) square(mi int) error {
	m := r.modes[mi]
	name := "square"
	rep := r.reps[mi]
	var idx []int
	for i, ok := range rep.RobustFlags {
		if ok {
			idx = append(idx, i)
		}
	}
	start := time.Now()
	step := &AAStep{Attack: name, Gradient: "none", Attacked: len(idx)}
	if len(idx) > 0 {
		cfg := NewSquare(r.cfg.Eps, m, r.cfg.Seed, batchFor(len(idx), r.cfg.Batch))
		cfg.Iters, cfg.PInit, cfg.FirstID = r.cfg.SquareIters, r.cfg.PInit, r.cfg.FirstID
		p, err := newSquareProgram(r.lib, r.ck, cfg)
		if err != nil {
			return err
		}
		label := name
		if len(r.modes) > 1 {
			label += " (" + m.String() + ")"
		}
		o, err := p.run(r.images, r.labels, idx, func(left int) { r.report(label, len(idx)-left, len(idx)) })
		p.Close()
		if err != nil {
			return err
		}
		cands := newCandidates(len(r.modes))
		for e, x := range o.best {
			cands[mi][e] = x
			step.Queries += int64(o.queries[e])
		}
		steps := make([]*AAStep, len(r.reps))
		for i := range steps {
			steps[i] = &AAStep{}
		}
		steps[mi] = step
		if err := r.record(name, cands, steps); err != nil {
			return err
		}
		// Square's best point is a candidate for every example; those the classifier still gets right are not
		// claims, so they are not counted as unconfirmed.
		step.Unconfirmed = 0
	}
	for _, ok := range rep.RobustFlags {
		if ok {
			step.Robust++
		}
	}
	step.Accuracy = float64(step.Robust) / float64(r.n)
	step.Seconds = time.Since(start).Seconds()
	rep.Steps = append(rep.Steps, *step)
	return nil
}

// SquareRestarts runs restarts more Square attacks at c's effort (seeds c.Seed+1, c.Seed+2, …) against the
// deployed classifier m on the examples idx, each restart on the points the earlier ones left: the higher budget
// AutoAttack's documentation asks for when its flag fires (Square breaking points the gradient attacks left). It
// returns the examples broken, each with its confirmed candidate and the classifier's prediction there, and the
// queries spent.
func (c AutoAttack) SquareRestarts(lib *kernels.Lib, ck *model.Checkpoint, m quant.Mode, images []float32,
	labels []uint8, idx []int, restarts int, progress func(Progress)) (map[int]confirmed, int64, error) {
	if err := c.Validate(); err != nil {
		return nil, 0, err
	}
	sz := ck.Arch.C * ck.Arch.H * ck.Arch.W
	judge, err := newClassifier(lib, ck, []quant.Mode{m}, batchFor(len(idx), c.Batch))
	if err != nil {
		return nil, 0, err
	}
	defer judge.Close()
	broken := map[int]confirmed{}
	var queries int64
	left := append([]int(nil), idx...)
	for k := 1; k <= restarts && len(left) > 0; k++ {
		cfg := NewSquare(c.Eps, m, c.Seed+uint64(k), batchFor(len(left), c.Batch))
		cfg.Iters, cfg.PInit, cfg.FirstID = c.SquareIters, c.PInit, c.FirstID
		p, err := newSquareProgram(lib, ck, cfg)
		if err != nil {
			return nil, 0, err
		}
		label := fmt.Sprintf("square restart %d/%d (%s)", k, restarts, m)
		n := len(left)
		o, err := p.run(images, labels, left, func(rest int) {
			if progress != nil {
				progress(Progress{Attack: label, Done: n - rest, Total: n, Left: n - len(broken)})
			}
		})
		p.Close()
		if err != nil {
			return nil, 0, err
		}
		cands := newCandidates(1)
		for e, x := range o.best {
			cands[0][e] = x
			queries += int64(o.queries[e])
		}
		got, _, err := confirm(judge, cands, images, labels, c.Eps, sz)
		if err != nil {
			return nil, 0, err
		}
		var still []int
		for _, e := range left {
			if b, ok := got[0][e]; ok {
				broken[e] = b
			} else {
				still = append(still, e)
			}
		}
		left = still
	}
	return broken, queries, nil
}

// confirmed is a candidate the deployed classifier misclassifies inside the ball, and its prediction.
type confirmed struct {
	x    []float32
	pred uint32
}

// confirm judges candidates: for each deployed classifier of judge (in cands' order), the examples whose candidate
// lies in the ε-ball and [0, 1] and is misclassified by it — the only way an example stops being robust. The
// other claims are counted as unconfirmed.
func confirm(judge *classifier, cands candidates, images []float32, labels []uint8, eps float32, sz int) (
	[]map[int]confirmed, []int, error) {
	broken := make([]map[int]confirmed, len(cands))
	unconfirmed := make([]int, len(cands))
	for mi, cm := range cands {
		broken[mi] = map[int]confirmed{}
		var es []int
		for e, x := range cm {
			if inBall(x, images[e*sz:(e+1)*sz], eps) {
				es = append(es, e)
			} else {
				unconfirmed[mi]++
			}
		}
		if len(es) == 0 {
			continue
		}
		sort.Ints(es)
		xs := make([]float32, 0, len(es)*sz)
		for _, e := range es {
			xs = append(xs, cm[e]...)
		}
		preds, err := judge.predictions(xs, len(es))
		if err != nil {
			return nil, nil, err
		}
		for i, e := range es {
			if p := preds[mi][i]; p != uint32(labels[e]) {
				broken[mi][e] = confirmed{x: cm[e], pred: p}
			} else {
				unconfirmed[mi]++
			}
		}
	}
	return broken, unconfirmed, nil
}
