package attack

import (
	"fmt"
	"math"
	"strings"

	"github.com/sqnet/sqnet/graph"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
)

// Check is one item of the gradient-masking audit.
type Check struct {
	Name   string  `json:"name"`
	Pass   bool    `json:"pass"`
	Detail string  `json:"detail"`
	Values []Point `json:"values,omitempty"`
}

// Point is one measured robust accuracy.
type Point struct {
	Attack   string  `json:"attack"`
	Eps      float32 `json:"eps"`
	Accuracy float64 `json:"robust_accuracy"`
}

// AuditOptions sets the audit's threat model and effort.
type AuditOptions struct {
	Eps      float32 // the claimed radius (MNIST 0.3)
	Steps    int     // PGD steps (default 40)
	Step     float32 // PGD step size (default 2.5·ε/steps, Madry et al.'s rule, per ε)
	Restarts int     // PGD restarts
	Samples  int     // random-search samples per example
	Batch    int
	Seed     uint64
	// Surrogate, when set, is a checkpoint to craft transfer attacks on (white-box ≥ transfer).
	Surrogate *model.Checkpoint
	// Deploy is the classifier every check judges candidates by (the checkpoint's when unset: see Deployed).
	Deploy *quant.Mode
	// AutoAttack is the effort of the black-box check (gradient attacks through the true gradient, then Square);
	// nil: AutoAttack's standard version.
	AutoAttack *AutoAttack
}

// AuditReport is the gradient-masking checklist's outcome.
type AuditReport struct {
	Checks []Check `json:"checks"`
	Passed int     `json:"passed"`
	Warned int     `json:"warned"`
}

// Audit runs Athalye et al.'s and Carlini et al.'s sanity checks for gradient masking on n images, and AutoAttack's
// automatic flags: iterative attacks beat one-step ones, white-box beats random search (and transfer, when a
// surrogate is given), accuracy falls monotonically with ε, an unbounded ε drives accuracy to about zero, a
// quantizer is attacked with BPDA too (a BPDA attack much stronger than the true-gradient attack means the
// gradient is masked), the black-box Square Attack finds nothing the gradient attacks missed, no image has an
// exactly zero gradient at its start, and two identical forward passes agree. Every candidate is judged by the
// deployed classifier. Each check is PASS or WARN with its numbers.
func Audit(lib *kernels.Lib, ck *model.Checkpoint, images []float32, labels []uint8, n int, o AuditOptions) (*AuditReport, error) {
	if o.Steps == 0 {
		o.Steps = 40
	}
	if o.Restarts == 0 {
		o.Restarts = 1
	}
	if o.Samples == 0 {
		o.Samples = 20
	}
	if o.Batch == 0 {
		o.Batch = 100
	}
	deploy := ck.Deploy
	if o.Deploy != nil {
		deploy = *o.Deploy
	}
	if ck.Quant == nil {
		deploy = quant.Soft
	}
	run := func(c Config) (float64, error) {
		c.Batch, c.Seed, c.Deploy = o.Batch, o.Seed, []quant.Mode{deploy}
		a, err := New(lib, ck, c)
		if err != nil {
			return 0, err
		}
		defer a.Close()
		r, err := a.Run(images, labels, nil, n)
		if err != nil {
			return 0, err
		}
		return r.Accuracy, nil
	}
	pgd := func(eps float32, steps int) Config {
		step := o.Step
		if step == 0 {
			step = 2.5 * eps / float32(steps)
		}
		c := PGD(eps, step, steps, o.Restarts)
		c.Name = fmt.Sprintf("pgd-%d", steps)
		return c
	}
	rep := &AuditReport{}
	add := func(c Check) {
		rep.Checks = append(rep.Checks, c)
		if c.Pass {
			rep.Passed++
		} else {
			rep.Warned++
		}
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

	clean, err := run(FGSM(0))
	if err != nil {
		return nil, err
	}
	fgsm, err := run(FGSM(o.Eps))
	if err != nil {
		return nil, err
	}
	white, err := run(pgd(o.Eps, o.Steps))
	if err != nil {
		return nil, err
	}
	add(Check{Name: "iterative ≥ one-step", Pass: white <= fgsm+0.01,
		Detail: fmt.Sprintf("PGD-%d leaves %s, FGSM %s", o.Steps, pct(white), pct(fgsm)),
		Values: []Point{{"fgsm", o.Eps, fgsm}, {fmt.Sprintf("pgd-%d", o.Steps), o.Eps, white}}})

	rs := PGD(o.Eps, 0, 1, o.Samples)
	rs.Name = "random-search"
	random, err := run(rs)
	if err != nil {
		return nil, err
	}
	add(Check{Name: "white-box ≥ random search", Pass: white <= random+0.01,
		Detail: fmt.Sprintf("PGD leaves %s, %d random points in the ε-ball %s", pct(white), o.Samples, pct(random)),
		Values: []Point{{"random-search", o.Eps, random}}})

	if o.Surrogate != nil {
		c := pgd(o.Eps, o.Steps)
		c.Batch, c.Seed, c.Deploy = o.Batch, o.Seed, []quant.Mode{deploy}
		rs, err := Transfer(lib, o.Surrogate, ck, c, images, labels, n)
		if err != nil {
			return nil, err
		}
		tr := rs[0].Accuracy
		add(Check{Name: "white-box ≥ transfer", Pass: white <= tr+0.01,
			Detail: fmt.Sprintf("PGD leaves %s, transfer from the surrogate %s", pct(white), pct(tr)),
			Values: []Point{{"transfer", o.Eps, tr}}})
	}

	curve := []Point{{"clean", 0, clean}}
	mono := true
	for _, f := range []float32{0.25, 0.5, 0.75, 1} {
		acc, err := run(pgd(o.Eps*f, o.Steps))
		if err != nil {
			return nil, err
		}
		if acc > curve[len(curve)-1].Accuracy+0.02 {
			mono = false
		}
		curve = append(curve, Point{fmt.Sprintf("pgd-%d", o.Steps), o.Eps * f, acc})
	}
	add(Check{Name: "accuracy falls monotonically with ε", Pass: mono, Detail: describeCurve(curve), Values: curve})

	ub := max(2*o.Steps, 20)
	unbounded, err := run(pgd(1, ub))
	if err != nil {
		return nil, err
	}
	add(Check{Name: "unbounded ε drives accuracy to ~0", Pass: unbounded <= 0.05,
		Detail: fmt.Sprintf("PGD-%d with ε = 1 (the whole image box) leaves %s", ub, pct(unbounded)),
		Values: []Point{{fmt.Sprintf("pgd-%d", ub), 1, unbounded}}})

	if ck.Quant != nil {
		b := pgd(o.Eps, o.Steps)
		b.Name, b.Through = "bpda", quant.BPDAIdentity
		bpda, err := run(b)
		if err != nil {
			return nil, err
		}
		add(Check{Name: "quantizer attacked with BPDA", Pass: white <= bpda+0.05,
			Detail: fmt.Sprintf("true-gradient PGD leaves %s; BPDA (identity backward) leaves %s — a much stronger "+
				"BPDA means the true gradient is masked", pct(white), pct(bpda)),
			Values: []Point{{"bpda", o.Eps, bpda}}})
	}
	if err := blackBoxChecks(lib, ck, deploy, images, labels, n, o, add); err != nil {
		return nil, err
	}
	return rep, nil
}

// blackBoxChecks adds AutoAttack's automatic flags: Square beating the gradient attacks, zero gradients at the
// start point, and a randomised classifier.
func blackBoxChecks(lib *kernels.Lib, ck *model.Checkpoint, deploy quant.Mode, images []float32, labels []uint8,
	n int, o AuditOptions, add func(Check)) error {
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }
	aa := StandardAutoAttack(o.Eps, o.Seed, o.Batch)
	if o.AutoAttack != nil {
		aa = *o.AutoAttack
	}
	// White-box means the model's own gradient here: through the soft quantizer, never BPDA (the BPDA check
	// above covers that path), so a masked gradient shows as Square breaking what the gradient attacks left.
	aa.Throughs = []quant.Mode{quant.Soft}
	reps, err := aa.Run(lib, ck, []quant.Mode{deploy}, images, labels, n, nil)
	if err != nil {
		return err
	}
	rep := reps[0]
	white, square := rep.CleanAccuracy, rep.Accuracy
	var names []string
	for _, s := range rep.Steps {
		if s.Attack == "square" {
			continue
		}
		white = min(white, s.Accuracy)
		names = append(names, s.Attack)
	}
	// AutoAttack's own threshold: Square lowering the robust accuracy by more than 0.2 points.
	add(Check{Name: "Square finds nothing the gradient attacks missed", Pass: square >= white-0.002,
		Detail: fmt.Sprintf("%s through the true gradient leave %s; the black-box Square Attack (%d queries) on "+
			"what they left takes it to %s — a black-box attack beating white-box ones means the gradient is masked",
			strings.Join(names, ", "), pct(white), aa.SquareIters, pct(square)),
		Values: []Point{{"white-box", o.Eps, white}, {"square", o.Eps, square}}})

	zero, withGrad, err := zeroGradients(lib, ck, images, labels, n, o.Batch)
	if err != nil {
		return err
	}
	add(Check{Name: "no zero gradient at the start point", Pass: zero == 0,
		Detail: fmt.Sprintf("%d of %d correctly classified images have an input gradient of exactly zero (the %s "+
			"loss through the true gradient, at the clean image): gradient attacks cannot move them", zero, withGrad,
			dlrOrCE(ck))})

	differ, err := randomised(lib, ck, deploy, images, n, o.Batch)
	if err != nil {
		return err
	}
	add(Check{Name: "deterministic classifier", Pass: differ == 0,
		Detail: fmt.Sprintf("%d of %d images get different logits from two identical forward passes (a randomised "+
			"defence needs EOT attacks)", differ, n)})
	return nil
}

// dlrOrCE names the loss zeroGradients differentiates: DLR where the model has the classes for it, else CE.
func dlrOrCE(ck *model.Checkpoint) string {
	if ck.Arch.Classes >= kernels.DLR.MinClasses() {
		return "DLR"
	}
	return "cross-entropy"
}

// zeroGradients counts, of the images the model (through the soft quantizer) classifies correctly, those whose
// input gradient of the DLR loss (CE for fewer than 3 classes) is exactly zero at the clean image, and returns
// both counts. Misclassified images are left out: there DLR can be constant (it is 1 when the label ranks third),
// and no attack needs to move them.
func zeroGradients(lib *kernels.Lib, ck *model.Checkpoint, images []float32, labels []uint8, n, batch int) (int, int, error) {
	a := ck.Arch
	g := graph.New(lib)
	net := evalNet(g, a, ck.Quant)
	x := g.Input("x", graph.F32, batch, a.C, a.H, a.W)
	y := g.Input("labels", graph.U32, batch)
	logits := net.Forward(g, x, quant.Soft)
	g.Keep(logits)
	var loss *graph.Tensor
	if a.Classes >= kernels.DLR.MinClasses() {
		loss = g.DLRLoss(kernels.DLR, logits, y, nil)
	} else {
		loss = g.SoftmaxCrossEntropy(logits, y)
	}
	if err := g.Backward(loss, 1, x); err != nil {
		return 0, 0, err
	}
	p, err := compileWith(g, net, ck, "zero-gradient check")
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	sz, k := a.C*a.H*a.W, a.Classes
	xb, yb, gb, zb := make([]float32, batch*sz), make([]uint32, batch), make([]float32, batch*sz), make([]float32, batch*k)
	zero, correct := 0, 0
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		for r := range batch {
			e := min(lo+r, hi-1)
			copy(xb[r*sz:(r+1)*sz], images[e*sz:(e+1)*sz])
			yb[r] = uint32(labels[e])
		}
		if err := graph.Write(p, x, xb); err != nil {
			return 0, 0, err
		}
		if err := graph.Write(p, y, yb); err != nil {
			return 0, 0, err
		}
		if err := p.Run(); err != nil {
			return 0, 0, err
		}
		if err := graph.Read(p, x.Grad, gb); err != nil {
			return 0, 0, err
		}
		if err := graph.Read(p, logits, zb); err != nil {
			return 0, 0, err
		}
		for r := range hi - lo {
			if argmaxRow(zb[r*k:(r+1)*k]) != int(yb[r]) {
				continue
			}
			correct++
			allZero := true
			for _, v := range gb[r*sz : (r+1)*sz] {
				if v != 0 {
					allZero = false
					break
				}
			}
			if allZero {
				zero++
			}
		}
	}
	return zero, correct, nil
}

// randomised counts the images whose logits differ, bit for bit, between two identical forward passes of the
// deployed classifier.
func randomised(lib *kernels.Lib, ck *model.Checkpoint, deploy quant.Mode, images []float32, n, batch int) (int, error) {
	cl, err := newClassifier(lib, ck, []quant.Mode{deploy}, batch)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	z1, err := cl.run(images, n)
	if err != nil {
		return 0, err
	}
	z2, err := cl.run(images, n)
	if err != nil {
		return 0, err
	}
	k, differ := ck.Arch.Classes, 0
	for i := range n {
		for j := i * k; j < (i+1)*k; j++ {
			if math.Float32bits(z1[0][j]) != math.Float32bits(z2[0][j]) {
				differ++
				break
			}
		}
	}
	return differ, nil
}

func describeCurve(c []Point) string {
	s := ""
	for i, p := range c {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("ε=%.3g: %.1f%%", p.Eps, 100*p.Accuracy)
	}
	return s
}

// Transfer crafts adversarial examples with cfg on the surrogate checkpoint and classifies them with the target's
// deployed classifiers (cfg.Deploy): the black-box attack a white-box attack must beat (if it does not, the
// target's gradients are masked). It returns a result per deployed classifier.
func Transfer(lib *kernels.Lib, surrogate, target *model.Checkpoint, cfg Config, images []float32, labels []uint8,
	n int) ([]*Result, error) {
	craft := cfg
	craft.Deploy = nil // the surrogate's own verdict does not matter
	a, err := New(lib, surrogate, craft)
	if err != nil {
		return nil, err
	}
	crafted, err := a.Run(images, labels, nil, n)
	a.Close()
	if err != nil {
		return nil, err
	}
	clean := FGSM(0)
	clean.Batch, clean.Deploy = cfg.Batch, cfg.Deploy
	e, err := New(lib, target, clean)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	rs, err := e.RunAll(crafted.Adv, labels, nil, n)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		r.Name, r.Eps, r.Seconds, r.Submits = "transfer-"+cfg.Name, cfg.Eps, r.Seconds+crafted.Seconds,
			r.Submits+crafted.Submits
	}
	return rs, nil
}
