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
//   - standard: clean, FGSM, PGD-40, PGD-100×10 restarts, CW-PGD-100, BPDA-100×2 (hard forward, identity
//     backward), and random search (20 points in the ε-ball).
//   - quick: clean, FGSM, PGD-40, BPDA-40, random search (10 points), for make run and quick reproductions.
//   - smoke: clean, FGSM, PGD-5, BPDA-5, random search (2 points): exercises everything in seconds, for tests.
func SuiteConfigs(name string, ck *model.Checkpoint, eps float32, batch int, seed uint64) ([]Config, error) {
	pgd := func(steps, restarts int) Config {
		c := PGD(eps, max(0.01, 2.5*eps/float32(steps)), steps, restarts)
		c.Name = fmt.Sprintf("pgd-%d×%d", steps, restarts)
		return c
	}
	clean := FGSM(0)
	clean.Name = "clean"
	var cs []Config
	switch name {
	case "standard":
		cw := pgd(100, 1)
		cw.Name, cw.Loss = "cw-pgd-100", "cw"
		cs = []Config{clean, FGSM(eps), pgd(40, 1), pgd(100, 10), cw}
		if ck.Quant != nil {
			b := pgd(100, 2)
			b.Name, b.Through, b.Eval = "bpda-100×2", quant.BPDAIdentity, quant.Hard
			cs = append(cs, b)
		}
		rs := PGD(eps, 0, 1, 20)
		rs.Name = "random-search×20"
		cs = append(cs, rs)
	case "quick":
		cs = []Config{clean, FGSM(eps), pgd(40, 1)}
		if ck.Quant != nil {
			b := pgd(40, 1)
			b.Name, b.Through, b.Eval = "bpda-40", quant.BPDAIdentity, quant.Hard
			cs = append(cs, b)
		}
		rs := PGD(eps, 0, 1, 10)
		rs.Name = "random-search×10"
		cs = append(cs, rs)
	case "smoke":
		cs = []Config{clean, FGSM(eps), pgd(5, 1)}
		if ck.Quant != nil {
			b := pgd(5, 1)
			b.Name, b.Through, b.Eval = "bpda-5", quant.BPDAIdentity, quant.Hard
			cs = append(cs, b)
		}
		rs := PGD(eps, 0, 1, 2)
		rs.Name = "random-search×2"
		cs = append(cs, rs)
	default:
		return nil, fmt.Errorf("unknown suite %q (known: %v)", name, Suites)
	}
	for i := range cs {
		cs[i].Batch, cs[i].Seed = batch, seed
	}
	return cs, nil
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

// RunSuite runs the attacks in order on n images and combines them per example.
func RunSuite(lib *kernels.Lib, ck *model.Checkpoint, cs []Config, images []float32, labels []uint8, n int,
	progress func(*Result)) (*SuiteReport, error) {
	start := time.Now()
	rep := &SuiteReport{N: n}
	worst := make([]bool, n)
	for i := range worst {
		worst[i] = true
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
		for i, ok := range r.Robust {
			worst[i] = worst[i] && ok
		}
		rep.Results = append(rep.Results, r)
		if progress != nil {
			progress(r)
		}
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
