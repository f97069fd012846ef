package attack

import (
	"math"
	"testing"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestCheckpointsAreAutoAttacks: for 100 iterations the checkpoints close after steps 22, 41, 57, 70, 80, 87, 93
// and 99 (AutoAttack's n_iter_2 = 22, shrinking by 3 down to 6).
func TestCheckpointsAreAutoAttacks(t *testing.T) {
	c := Checkpoints(100)
	want := map[int]int{21: 22, 40: 19, 56: 16, 69: 13, 79: 10, 86: 7, 92: 6, 98: 6}
	if len(c) != len(want) {
		t.Fatalf("checkpoints %v, want %v", c, want)
	}
	for i, k := range want {
		if c[i] != k {
			t.Errorf("checkpoint after iteration %d: interval %d, want %d (all: %v)", i, c[i], k, c)
		}
	}
}

// TestAPGDStepSizeSchedule replays the device's loss sequence of every example through a host reference of
// APGD's schedule — count the increases, keep the best, halve η at a checkpoint when fewer than ρ·k steps raised the
// loss or when the step was not halved last time and the best has not improved — and requires the device's η and
// best loss to match it iteration by iteration.
func TestAPGDStepSizeSchedule(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	ck := mlpCheckpoint(6)
	const eps, n = 0.05, 24
	xs, ys, _ := cfBatch(t, ck, 0.02, n, 4)
	cfg := NewAPGD("ce", eps, quant.Soft, 7, n)
	p, err := newAPGDProgram(lib, ck, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if _, err := p.run(xs, ys, idx, nil, 0, nil); err != nil {
		t.Fatal(err)
	}
	tr, err := p.traceOf()
	if err != nil {
		t.Fatal(err)
	}
	at := func(it, row, col int) float32 { return tr[(it*n+row)*kernels.APGDTraceWidth+col] }
	checks := Checkpoints(cfg.Iters)
	halved, never := 0, 0
	for row := range n {
		eta, best := 2*float32(eps), at(0, row, 0)
		prev, cnt := best, float32(0)
		lastBest, reducedLast := best, true
		rowHalved := false
		for it := 0; it <= cfg.Iters; it++ {
			if it > 0 {
				l := at(it, row, 0)
				if l > prev {
					cnt++
				}
				prev = l
				if l > best {
					best = l
				}
				if k := checks[it-1]; k > 0 {
					halve := cnt < float32(cfg.Rho*float32(k)) || (!reducedLast && lastBest >= best)
					reducedLast, lastBest, cnt = halve, best, 0
					if halve {
						eta /= 2
						rowHalved = true
					}
				}
			}
			if got := at(it, row, 1); got != eta {
				t.Fatalf("example %d, iteration %d: η = %v on the device, %v in the reference", row, it, got, eta)
			}
			if got := at(it, row, 2); got != best {
				t.Fatalf("example %d, iteration %d: best loss %v on the device, %v in the reference", row, it, got, best)
			}
		}
		if rowHalved {
			halved++
		} else {
			never++
		}
	}
	t.Logf("%d examples had η halved at some checkpoint, %d never", halved, never)
	if halved == 0 {
		t.Error("no example's step size was ever halved: the schedule went untested")
	}
}

// TestSquareReproducible: a seed reproduces Square's queries and points bit for bit, whatever the batch (every
// example draws from its own stream), and another seed draws other squares.
func TestSquareReproducible(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	ck := linearCheckpoint(5)
	const eps, n = 0.02, 30
	xs, ys, _ := cfBatch(t, ck, eps, n, 9)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	run := func(seed uint64, batch int) *squareOutcome {
		cfg := NewSquare(eps, quant.Soft, seed, batch)
		cfg.Iters, cfg.Chunk = 400, 37
		p, err := newSquareProgram(lib, ck, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		o, err := p.run(xs, ys, idx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	a, b, c := run(3, 32), run(3, 7), run(4, 32)
	differ := 0
	for e := range n {
		if a.queries[e] != b.queries[e] {
			t.Fatalf("example %d: %d queries in batches of 32, %d in batches of 7", e, a.queries[e], b.queries[e])
		}
		for i, v := range a.best[e] {
			if math.Float32bits(v) != math.Float32bits(b.best[e][i]) {
				t.Fatalf("example %d: its point differs at %d between batch sizes", e, i)
			}
		}
		if a.queries[e] != c.queries[e] {
			differ++
		}
	}
	if b.submits <= a.submits {
		t.Errorf("batches of 7 took %d submits, of 32 %d: the smaller batch should need more", b.submits, a.submits)
	}
	if differ == 0 {
		t.Error("another seed gave every example the same number of queries: the seed is not used")
	}
}

// TestBatchFor: the fewest batches of at most the given size, evened out, so padding rows stay fewer than the
// batches.
func TestBatchFor(t *testing.T) {
	for _, c := range []struct{ points, most, want int }{
		{780, 100, 98}, {800, 100, 100}, {801, 100, 89}, {20, 100, 20}, {1, 100, 1}, {0, 100, 100}, {7, 3, 3},
	} {
		got := batchFor(c.points, c.most)
		batches := (c.points + got - 1) / got
		if got != c.want || got > c.most || (c.points > 0 && batches*got-c.points >= max(batches, 1)) {
			t.Errorf("batchFor(%d, %d) = %d, want %d", c.points, c.most, got, c.want)
		}
	}
}

// TestSquareRestarts: the suite's extra Square restarts on a linear model, with too few queries for one restart to
// find every non-robust example: more restarts break a superset of what fewer break, never an example the closed
// form calls robust, every candidate lies in the ball and fools the classifier, and a seed reproduces them.
func TestSquareRestarts(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	ck := linearCheckpoint(5)
	const eps, n = 0.02, 40
	xs, ys, ex := cfBatch(t, ck, eps, n, 9)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	aa := SmokeAutoAttack(eps, 1, 16)
	aa.SquareIters = 3
	run := func(restarts int) map[int]confirmed {
		broken, queries, err := aa.SquareRestarts(lib, ck, quant.Soft, xs, ys, idx, restarts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if queries <= 0 {
			t.Fatalf("%d restarts counted %d queries", restarts, queries)
		}
		return broken
	}
	one, three, again := run(1), run(3), run(3)
	nonRobust := 0
	for e := range n {
		if !ex[e].robust {
			nonRobust++
		}
	}
	if len(one) == 0 || len(one) >= nonRobust || len(three) <= len(one) {
		t.Fatalf("1 restart broke %d, 3 broke %d, of %d non-robust examples: want 0 < one < three, one short of all",
			len(one), len(three), nonRobust)
	}
	for e, b := range three {
		if ex[e].robust {
			t.Fatalf("example %d: broken, but robust in closed form", e)
		}
		if !inBall(b.x, xs[e*64:(e+1)*64], eps) || b.pred == uint32(ys[e]) {
			t.Fatalf("example %d: its candidate leaves the ball or does not fool (pred %d, label %d)", e, b.pred, ys[e])
		}
		if _, ok := again[e]; !ok {
			t.Fatalf("example %d: broken in one run of the seed, not in the other", e)
		}
	}
	for e := range one {
		if _, ok := three[e]; !ok {
			t.Fatalf("example %d: broken by the first restart alone, not when two more follow it", e)
		}
	}
}
