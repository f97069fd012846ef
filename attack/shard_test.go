package attack

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestShardsDrawAsTheWholeRun: every attack draws its randomness per example (Config.FirstID, AutoAttack.FirstID),
// so attacking a test set in one run (batch 4) and in two slices with other batch sizes (3 and 7), each slice told
// the id of its first example, gives every example the same adversarial point bit for bit — PGD's random starts
// and restarts, EOT's draws, random search, and AutoAttack's APGD starts and Square windows — which is what makes
// eval --shard's merged result equal the whole run's.
func TestShardsDrawAsTheWholeRun(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	a, err := model.Lookup("small", 1, 8, 8, 10)
	if err != nil {
		t.Fatal(err)
	}
	q := quant.Config{Levels: 2, Alpha: 5}
	ck := &model.Checkpoint{Arch: a, Quant: &q, Weights: a.Init(&q, 4), Dataset: "synthetic"}
	const n, d, cut = 11, 64, 5
	r := rand.New(rand.NewPCG(8, 9))
	xs, ys := make([]float32, n*d), make([]uint8, n)
	for i := range xs {
		xs[i] = r.Float32()
	}
	both := []quant.Mode{quant.Soft, quant.Hard}
	// Labels = the hard classifier's predictions, so every example is attacked.
	clean := FGSM(0)
	clean.Deploy = []quant.Mode{quant.Hard}
	at, err := New(lib, ck, clean)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := at.Run(xs, ys, nil, n)
	at.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range cr.Pred {
		ys[i] = uint8(p)
	}
	pgd := PGDk(0.3, 3, 2)
	eot := PGDk(0.3, 2, 1)
	eot.Name, eot.EOT, eot.EOTNoise = "eot", 2, 0.15
	search := PGD(0.3, 0, 1, 3)
	search.Name = "random search"
	for _, cfg := range []Config{pgd, eot, search} {
		cfg.Deploy, cfg.Seed = both, 5
		run := func(first, batch int, x []float32, y []uint8) []*Result {
			c := cfg
			c.FirstID, c.Batch = first, batch
			at, err := New(lib, ck, c)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Close()
			rs, err := at.RunAll(x, y, nil, len(y))
			if err != nil {
				t.Fatal(err)
			}
			return rs
		}
		whole := run(0, 4, xs, ys)
		head, tail := run(0, 3, xs[:cut*d], ys[:cut]), run(cut, 7, xs[cut*d:], ys[cut:])
		for k := range whole {
			for e := range n {
				part, i := head[k], e
				if e >= cut {
					part, i = tail[k], e-cut
				}
				what := fmt.Sprintf("%s [%s] example %d", cfg.Name, whole[k].Deploy, e)
				sameFloats(t, what, whole[k].Adv[e*d:(e+1)*d], part.Adv[i*d:(i+1)*d])
				if whole[k].Robust[e] != part.Robust[i] || whole[k].Pred[e] != part.Pred[i] {
					t.Fatalf("%s: robust %v pred %d in the whole run, %v %d in its slice", what, whole[k].Robust[e],
						whole[k].Pred[e], part.Robust[i], part.Pred[i])
				}
			}
		}
	}
	aa := SmokeAutoAttack(0.3, 6, 4)
	aaRun := func(first, batch int, x []float32, y []uint8) []*AAReport {
		c := aa
		c.FirstID, c.Batch = first, batch
		reps, err := c.Run(lib, ck, both, x, y, len(y), nil)
		if err != nil {
			t.Fatal(err)
		}
		return reps
	}
	whole := aaRun(0, 4, xs, ys)
	head, tail := aaRun(0, 3, xs[:cut*d], ys[:cut]), aaRun(cut, 7, xs[cut*d:], ys[cut:])
	broken := 0
	for k := range whole {
		for e := range n {
			part, i := head[k], e
			if e >= cut {
				part, i = tail[k], e-cut
			}
			what := fmt.Sprintf("autoattack [%s] example %d", whole[k].Deploy, e)
			if whole[k].BrokenBy[e] != part.BrokenBy[i] {
				t.Fatalf("%s: broken by %q in the whole run, %q in its slice", what, whole[k].BrokenBy[e], part.BrokenBy[i])
			}
			sameFloats(t, what, whole[k].Adv[e*d:(e+1)*d], part.Adv[i*d:(i+1)*d])
			if by := whole[k].BrokenBy[e]; by == "apgd-ce" || by == "apgd-ce/bpda" {
				broken++
			}
		}
	}
	if broken == 0 {
		t.Fatal("APGD-CE broke nothing: the comparison of its candidates tests nothing")
	}
	// Square's last best point of every example (AutoAttack's cascade hands it only the survivors).
	sq := func(first, batch int, x []float32, y []uint8) *squareOutcome {
		c := NewSquare(0.3, quant.Hard, 7, batch)
		c.Iters, c.FirstID = 30, first
		p, err := newSquareProgram(lib, ck, c)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		idx := make([]int, len(y))
		for i := range idx {
			idx[i] = i
		}
		o, err := p.run(x, y, idx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	sw := sq(0, 4, xs, ys)
	sh, st := sq(0, 3, xs[:cut*d], ys[:cut]), sq(cut, 7, xs[cut*d:], ys[cut:])
	for e := range n {
		part, i := sh, e
		if e >= cut {
			part, i = st, e-cut
		}
		what := fmt.Sprintf("square example %d", e)
		sameFloats(t, what, sw.best[e], part.best[i])
		if sw.queries[e] != part.queries[i] {
			t.Fatalf("%s: %d queries in the whole run, %d in its slice", what, sw.queries[e], part.queries[i])
		}
	}
}

// sameFloats fails unless a and b hold the same bits.
func sameFloats(t *testing.T, what string, a, b []float32) {
	t.Helper()
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s: element %d is %v in the whole run, %v in its slice", what, i, a[i], b[i])
		}
	}
}

// TestMergeReports adds two hand-made shard reports: counts, queries and seconds add up, accuracies are
// recomputed over the whole, broken_by is concatenated in shard order; shards that ran different attacks are refused.
func TestMergeReports(t *testing.T) {
	shard := func(n, robust, worst int, by ...string) *SuiteReport {
		return &SuiteReport{Suite: "standard", Deploy: quant.Hard, N: n, WorstCorrect: worst, Seconds: 1, BrokenBy: by,
			Results: []*Result{{Name: "pgd-40", Eps: 0.3, Deploy: quant.Hard, N: n, Correct: robust, Seconds: 2, Submits: 1}},
			AutoAttack: &AAReport{Deploy: quant.Hard, N: n, Clean: n, Robust: worst, Seconds: 3,
				Steps: []AAStep{{Attack: "square", Gradient: "none", Attacked: n, Broken: n - worst, Robust: worst, Queries: 10}}}}
	}
	got, err := MergeReports([][]*SuiteReport{{shard(2, 2, 1, "", "square")}, {shard(3, 1, 1, "square", "", "square")}})
	if err != nil {
		t.Fatal(err)
	}
	m := got[0]
	aa, r := m.AutoAttack, m.Results[0]
	if m.N != 5 || m.WorstCorrect != 2 || m.WorstAccuracy != 0.4 || r.Correct != 3 || r.Accuracy != 0.6 ||
		r.Seconds != 4 || r.Submits != 2 || aa.Robust != 2 || aa.Accuracy != 0.4 || aa.CleanAccuracy != 1 ||
		aa.Steps[0].Broken != 3 || aa.Steps[0].Queries != 20 || aa.Steps[0].Accuracy != 0.4 ||
		fmt.Sprint(m.BrokenBy) != fmt.Sprint([]string{"", "square", "square", "", "square"}) {
		t.Fatalf("merged: %+v, attack %+v, autoattack %+v", m, r, aa)
	}
	other := shard(3, 1, 1, "square", "", "square")
	other.Results[0].Name = "pgd-100×10"
	if _, err := MergeReports([][]*SuiteReport{{shard(2, 2, 1, "", "square")}, {other}}); err == nil {
		t.Error("shards that ran different attacks were merged")
	}
	short := shard(3, 1, 1, "square")
	if _, err := MergeReports([][]*SuiteReport{{short}}); err == nil {
		t.Error("a shard whose broken_by misses examples was merged")
	}
}
