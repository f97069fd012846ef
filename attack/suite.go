package attack

import (
	"fmt"
	"time"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
)

// Suites lists the evaluation suites SuiteConfigs knows.
var Suites = []string{"standard", "quick", "smoke"}

// SuiteConfigs returns the attacks of an evaluation suite at radius eps for a model (BPDA only where it has a
// quantizer):
//
//   - standard: clean, FGSM, PGD-40, PGD-100×10 restarts, CW-PGD-100, BPDA-100×10 (hard forward, identity
//     backward) and EOT-PGD-40 over 4 noise draws for quantized models, and random search (20 points).
//   - quick: clean, FGSM, PGD-40, BPDA-40, random search (10 points), for make run and quick reproductions.
//   - smoke: clean, FGSM, PGD-5, BPDA-5, random search (2 points): exercises everything in seconds, for tests.
func SuiteConfigs(name string, ck *model.Checkpoint, eps float32, batch int, seed uint64) ([]Config, error) {
	pgd := func(steps, restarts int) Config { return PGDk(eps, steps, restarts) }
	clean := FGSM(0)
	clean.Name = "clean"
	spec, ok := suiteSpecs[name]
	if !ok {
		return nil, fmt.Errorf("unknown suite %q (known: %v)", name, Suites)
	}
	cs := []Config{clean, FGSM(eps)}
	for _, p := range spec.pgd {
		cs = append(cs, pgd(p[0], p[1]))
	}
	if spec.cw > 0 {
		cw := pgd(spec.cw, 1)
		cw.Name, cw.Loss = fmt.Sprintf("cw-pgd-%d", spec.cw), "cw"
		cs = append(cs, cw)
	}
	if ck.Quant != nil {
		b := pgd(spec.bpda[0], spec.bpda[1])
		b.Name, b.Through, b.Eval = fmt.Sprintf("bpda-%d×%d", spec.bpda[0], spec.bpda[1]), quant.BPDAIdentity, quant.Hard
		cs = append(cs, b)
		if spec.eot[0] > 0 {
			// EOT over noise of half the radius smooths the quantizer's steep gradient (its own form of masking).
			e := pgd(spec.eot[0], 1)
			e.Name, e.EOT, e.EOTNoise = fmt.Sprintf("eot-pgd-%d×%d", spec.eot[0], spec.eot[1]), spec.eot[1], eps/2
			cs = append(cs, e)
		}
	}
	rs := PGD(eps, 0, 1, spec.samples)
	rs.Name = fmt.Sprintf("random-search×%d", spec.samples)
	cs = append(cs, rs)
	for i := range cs {
		cs[i].Batch, cs[i].Seed = batch, seed
	}
	return cs, nil
}

// suiteSpec is a suite's effort: its PGD attacks (steps, restarts), CW-PGD steps (0: none), BPDA (steps,
// restarts; only for quantized models) and random-search samples.
type suiteSpec struct {
	pgd     [][2]int
	cw      int
	bpda    [2]int
	eot     [2]int // EOT-PGD steps and noise draws (0: none), against quantized models
	samples int
}

var suiteSpecs = map[string]suiteSpec{
	"standard": {pgd: [][2]int{{40, 1}, {100, 10}}, cw: 100, bpda: [2]int{100, 10}, eot: [2]int{40, 4}, samples: 20},
	"quick":    {pgd: [][2]int{{40, 1}}, bpda: [2]int{40, 1}, samples: 10},
	"smoke":    {pgd: [][2]int{{5, 1}}, bpda: [2]int{5, 1}, samples: 2},
}

// SuiteReport is an evaluation suite's outcome.
type SuiteReport struct {
	Results []*Result `json:"attacks"`
	// Worst is the per-example worst case: an example counts only if it survived every attack.
	WorstCorrect  int     `json:"worst_case_robust"`
	WorstAccuracy float64 `json:"worst_case_accuracy"`
	N             int     `json:"n"`
	Seconds       float64 `json:"seconds"`
}

// RunSuite runs the attacks in order on n images — and, with a surrogate checkpoint, a transfer attack (PGD-40
// crafted on the surrogate) — and combines them per example.
func RunSuite(lib *kernels.Lib, ck, surrogate *model.Checkpoint, cs []Config, images []float32, labels []uint8, n int,
	progress func(*Result)) (*SuiteReport, error) {
	start := time.Now()
	rep := &SuiteReport{N: n}
	worst := make([]bool, n)
	for i := range worst {
		worst[i] = true
	}
	record := func(r *Result) {
		for i, ok := range r.Robust {
			worst[i] = worst[i] && ok
		}
		rep.Results = append(rep.Results, r)
		if progress != nil {
			progress(r)
		}
	}
	for _, c := range cs {
		a, err := New(lib, ck, c)
		if err != nil {
			return nil, err
		}
		r, err := a.Run(images, labels, nil, n)
		a.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		record(r)
	}
	if surrogate != nil && len(cs) > 0 {
		// The suite's radius: every attack but the clean pass uses it.
		var eps float32
		for _, x := range cs {
			eps = max(eps, x.Eps)
		}
		c := PGDk(eps, 40, 1)
		c.Name, c.Batch, c.Seed = "pgd-40", cs[0].Batch, cs[0].Seed
		r, err := Transfer(lib, surrogate, ck, c, images, labels, n)
		if err != nil {
			return nil, fmt.Errorf("transfer: %w", err)
		}
		record(r)
	}
	for _, ok := range worst {
		if ok {
			rep.WorstCorrect++
		}
	}
	rep.WorstAccuracy = float64(rep.WorstCorrect) / float64(n)
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}
