package attack

import (
	"fmt"
	"math"

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
}

// AuditReport is the gradient-masking checklist's outcome.
type AuditReport struct {
	Checks []Check `json:"checks"`
	Passed int     `json:"passed"`
	Warned int     `json:"warned"`
}

// Audit runs Athalye et al.'s and Carlini et al.'s sanity checks for gradient masking on n images: iterative
// attacks beat one-step ones, white-box beats random search (and transfer, when a surrogate is given), accuracy
// falls monotonically with ε, an unbounded ε drives accuracy to about zero, and a quantizer is attacked with BPDA
// too (a BPDA attack much stronger than the true-gradient attack means the gradient is masked). Each check is
// PASS or WARN with its numbers.
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
	run := func(c Config) (float64, error) {
		c.Batch, c.Seed = o.Batch, o.Seed
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
		c.Batch, c.Seed = o.Batch, o.Seed
		r, err := Transfer(lib, o.Surrogate, ck, c, images, labels, n)
		if err != nil {
			return nil, err
		}
		tr := r.Accuracy
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
		b.Name, b.Through, b.Eval = "bpda", quant.BPDAIdentity, quant.Hard
		bpda, err := run(b)
		if err != nil {
			return nil, err
		}
		bs := b
		bs.Name, bs.Through, bs.Eval = "bpda-soft-eval", quant.BPDAIdentity, quant.Soft
		bpdaSoft, err := run(bs)
		if err != nil {
			return nil, err
		}
		worst := math.Min(bpda, bpdaSoft)
		add(Check{Name: "quantizer attacked with BPDA", Pass: white <= worst+0.05,
			Detail: fmt.Sprintf("true-gradient PGD leaves %s; BPDA (identity backward) leaves %s against the hard "+
				"quantizer, %s against the soft one — a much stronger BPDA means the true gradient is masked",
				pct(white), pct(bpda), pct(bpdaSoft)),
			Values: []Point{{"bpda-hard", o.Eps, bpda}, {"bpda-soft", o.Eps, bpdaSoft}}})
	}
	return rep, nil
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

// Transfer crafts adversarial examples with cfg on the surrogate checkpoint and classifies them with the target:
// the black-box attack a white-box attack must beat (if it does not, the target's gradients are masked).
func Transfer(lib *kernels.Lib, surrogate, target *model.Checkpoint, cfg Config, images []float32, labels []uint8,
	n int) (*Result, error) {
	a, err := New(lib, surrogate, cfg)
	if err != nil {
		return nil, err
	}
	crafted, err := a.Run(images, labels, nil, n)
	a.Close()
	if err != nil {
		return nil, err
	}
	clean := FGSM(0)
	clean.Batch, clean.Eval = cfg.Batch, cfg.Eval
	e, err := New(lib, target, clean)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	r, err := e.Run(crafted.Adv, labels, nil, n)
	if err != nil {
		return nil, err
	}
	r.Name, r.Eps, r.Seconds, r.Submits = "transfer-"+cfg.Name, cfg.Eps, r.Seconds+crafted.Seconds, r.Submits+crafted.Submits
	return r, nil
}
