package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// The AutoAttack kernels are compares, clamps, selects and single roundings (each written with `precise` in the
// shaders and explicit float32 conversions in the references), so every one must match its reference bit for bit.

func seqIDs(b int, from uint32) []uint32 {
	ids := make([]uint32, b)
	for i := range ids {
		ids[i] = from + uint32(3*i)
	}
	return ids
}

func TestAPGDInit(t *testing.T) {
	l := openLib(t)
	for _, c := range []struct{ b, d int }{{1, 1}, {3, 17}, {5, 64}, {2, 257}} {
		t.Run(fmt.Sprintf("B%d_D%d", c.b, c.d), func(t *testing.T) {
			x0 := uniform(rng(uint64(c.d)), c.b*c.d, 0, 1)
			ids := seqIDs(c.b, 7)
			g := ExampleRNG{Seed: 0x1234_5678_9abc, Stream: 5, Attempt: 2}
			bx0, bid, bx := upload(t, l, x0), uploadU32(t, l, ids), zeros(t, l, c.b*c.d)
			run(t, l, func(r *vk.Recorder) error { return l.APGDInit(r, bx0.All(), bid.All(), bx.All(), c.b, c.d, 0.3, g) })
			got := download(t, bx, c.b*c.d)
			compare(t, "apgd init", got, APGDInitRef(x0, ids, c.b, c.d, 0.3, g), exact)
			// Every row's largest move is ε exactly where the box allows it, and no move exceeds it.
			for i, v := range got {
				if v < 0 || v > 1 || math.Abs(float64(v-x0[i])) > 0.3+1e-6 {
					t.Fatalf("x[%d] = %v from %v: outside [0, 1] or the ε-ball", i, v, x0[i])
				}
			}
			// The start depends on the example's id, not its row: row 0 alone gives the same values.
			one := APGDInitRef(x0[:c.d], ids[:1], 1, c.d, 0.3, g)
			compare(t, "row 0 alone", got[:c.d], one, exact)
		})
	}
}

func TestAPGDStep(t *testing.T) {
	l := openLib(t)
	for _, d := range []int{33, 36} { // the scalar variant, and apgd_step4
		t.Run(fmt.Sprintf("d=%d", d), func(t *testing.T) { testAPGDStep(t, l, d) })
	}
}

func testAPGDStep(t *testing.T, l *Lib, d int) {
	const b, eps = 4, 0.25
	r := rng(41)
	x0 := uniform(r, b*d, 0, 1)
	x, xOld, g := make([]float32, b*d), make([]float32, b*d), uniform(r, b*d, -1, 1)
	for i := range x {
		x[i] = clip01(x0[i] + uniform(r, 1, -eps, eps)[0])
		xOld[i] = clip01(x0[i] + uniform(r, 1, -eps, eps)[0])
		if i%7 == 0 {
			g[i] = 0 // sign(0) = 0
		}
	}
	state := make([]float32, b*APGDState)
	for i := range b {
		state[i*APGDState+APGDEta] = []float32{0.5, 0.25, 0.0625, 0.01}[i]
	}
	for _, a := range []float32{1, 0.75} {
		bx0, bg, bs, bx, bo := upload(t, l, x0), upload(t, l, g), upload(t, l, state), upload(t, l, x), upload(t, l, xOld)
		run(t, l, func(rec *vk.Recorder) error {
			return l.APGDStep(rec, bx0.All(), bg.All(), bs.All(), bx.All(), bo.All(), b, d, eps, a)
		})
		wx, wo := APGDStepRef(x0, g, state, x, xOld, b, d, eps, a)
		compare(t, fmt.Sprintf("apgd step x (a = %v)", a), download(t, bx, b*d), wx, exact)
		compare(t, fmt.Sprintf("apgd step x_old (a = %v)", a), download(t, bo, b*d), wo, exact)
	}
}

// TestAPGDTrack replays a made-up loss sequence through the bookkeeping — initialisation, steps, checkpoints of
// several lengths, NaN and equal losses — and compares state and trace with the reference after every call.
func TestAPGDTrack(t *testing.T) {
	l := openLib(t)
	const b, calls = 9, 40
	r := rng(43)
	state := make([]float32, b*APGDState)
	bs, btr := upload(t, l, state), zeros(t, l, calls*b*APGDTraceWidth)
	var trace []float32
	for it := range calls {
		loss := uniform(r, b, -1, 1)
		loss[0] = float32(it) // always rising: never halved for oscillation
		loss[1] = 0.5         // flat: halved at every checkpoint
		if it%5 == 3 {
			loss[2] = float32(math.NaN())
		}
		c := APGDCheck{Init: it == 0, Rho: 0.75, Eta0: 0.6, Iter: it}
		if it > 0 && it%8 == 0 {
			c.Interval = 8
		}
		if it == 36 {
			c.Interval = 3
		}
		bl := upload(t, l, loss)
		run(t, l, func(rec *vk.Recorder) error { return l.APGDTrack(rec, bl.All(), bs.All(), btr.All(), b, c) })
		var row []float32
		state, row = APGDTrackRef(loss, state, b, c)
		trace = append(trace, row...)
		compare(t, fmt.Sprintf("state after call %d", it), download(t, bs, b*APGDState), state, exact)
	}
	compare(t, "trace", download(t, btr, calls*b*APGDTraceWidth), trace, exact)
	if eta := state[0*APGDState+APGDEta]; eta != 0.6 {
		t.Errorf("a row whose loss rises every step has η = %v, want 0.6 (never halved)", eta)
	}
	if eta := state[1*APGDState+APGDEta]; eta >= 0.6/8 {
		t.Errorf("a row whose loss never moves has η = %v, want it halved at each of 5 checkpoints", eta)
	}
}

// TestRowKernels checks rowselect, witness and fab_backstep exactly against their references, on rows of 19 values
// (the scalar variants) and of 20 (the VEC4 ones).
func TestRowKernels(t *testing.T) {
	l := openLib(t)
	for _, d := range []int{19, 20} {
		t.Run(fmt.Sprintf("d=%d", d), func(t *testing.T) { testRowKernels(t, l, d) })
	}
}

func testRowKernels(t *testing.T, l *Lib, d int) {
	const b = 5
	r := rng(47)
	src, dst, x0 := uniform(r, b*d, 0, 1), uniform(r, b*d, 0, 1), uniform(r, b*d, 0, 1)
	flags := make([]float32, b*3)
	for i := range b {
		flags[i*3+2] = float32(i % 2)
	}
	pred, labels := []uint32{1, 2, 3, 4, 5}, []uint32{1, 0, 3, 0, 0}
	fooled := []float32{0, 0, 0, 1, 0}
	bf, bsrc, bdst := upload(t, l, flags), upload(t, l, src), upload(t, l, dst)
	bp, by, bx0, badv, bfo, bx := uploadU32(t, l, pred), uploadU32(t, l, labels), upload(t, l, x0), upload(t, l, dst),
		upload(t, l, fooled), upload(t, l, src)
	run(t, l, func(rec *vk.Recorder) error {
		if err := l.RowSelect(rec, bf.All(), bsrc.All(), bdst.All(), b, d, 3, 2); err != nil {
			return err
		}
		if err := l.Witness(rec, bp.All(), by.All(), bsrc.All(), badv.All(), bfo.All(), b, d); err != nil {
			return err
		}
		return l.FABBackstep(rec, bp.All(), by.All(), bx0.All(), bx.All(), b, d, 0.9)
	})
	compare(t, "row select", download(t, bdst, b*d), RowSelectRef(flags, src, dst, b, d, 3, 2), exact)
	wa, wf := WitnessRef(pred, labels, src, dst, fooled, b, d)
	compare(t, "witness adv", download(t, badv, b*d), wa, exact)
	compare(t, "witness fooled", download(t, bfo, b), wf, exact)
	compare(t, "fab backstep", download(t, bx, b*d), FABBackstepRef(pred, labels, x0, src, b, d, 0.9), exact)

	rec := newRecorder(t, l)
	expectErr(t, "flag column out of its row", l.RowSelect(rec, bf.All(), bsrc.All(), bdst.All(), b, d, 3, 3))
	expectErr(t, "short flags", l.RowSelect(rec, bf.All(), bsrc.All(), bdst.All(), b+1, d, 3, 2))
	expectErr(t, "src is dst", l.RowSelect(rec, bf.All(), bsrc.All(), bsrc.All(), b, d, 3, 2))
	expectErr(t, "β > 1", l.FABBackstep(rec, bp.All(), by.All(), bx0.All(), bx.All(), b, d, 1.5))
	expectErr(t, "short fooled", l.Witness(rec, bp.All(), by.All(), bsrc.All(), badv.All(), bfo.All(), b+1, d))
}

// TestSquareKernels runs the Square Attack's three kernels through a made-up query sequence — random logits per
// iteration, some rows misclassified along the way, a few out of iterations — on one- and three-channel images
// (non-square too), and compares state and both images with the references after every call.
func TestSquareKernels(t *testing.T) {
	l := openLib(t)
	// 8 and 12 wide: four pixels per invocation (square_propose4); 7: one.
	for _, s := range []SquareShape{{B: 6, C: 1, H: 8, W: 8}, {B: 3, C: 3, H: 5, W: 7}, {B: 4, C: 3, H: 6, W: 12}} {
		t.Run(fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W), func(t *testing.T) {
			const k, iters, eps = 4, 12, 0.2
			n := s.B * s.C * s.H * s.W
			r := rng(53 + uint64(s.C))
			x0 := uniform(r, n, 0, 1)
			ids := seqIDs(s.B, 100)
			labels := make([]uint32, s.B)
			for i := range labels {
				labels[i] = uint32(i % k)
			}
			sizes := SquareSizes(0.8, iters, s.H, s.W)
			g := ExampleRNG{Seed: 99, Stream: 11}
			state, xb, xn := make([]float32, s.B*SquareState), append([]float32(nil), x0...), make([]float32, n)
			bx0, bid, by, bsz := upload(t, l, x0), uploadU32(t, l, ids), uploadU32(t, l, labels), upload(t, l, sizes)
			bst, bxb, bxn := upload(t, l, state), upload(t, l, xb), upload(t, l, xn)
			for it := 0; it <= iters+1; it++ {
				logits := uniform(r, s.B*k, -1, 1)
				for i := range s.B { // rows 0 and 1 stay correctly classified; the others drift
					if i < 2 || it < 3*i {
						logits[i*k+int(labels[i])] = 5
					}
				}
				bz := upload(t, l, logits)
				run(t, l, func(rec *vk.Recorder) error {
					if it == 1 {
						if err := l.SquareDraw(rec, bid.All(), bsz.All(), bst.All(), s, iters, g); err != nil {
							return err
						}
					}
					if err := l.SquarePropose(rec, bx0.All(), bid.All(), bst.All(), bxb.All(), bxn.All(), s, eps, g); err != nil {
						return err
					}
					return l.SquareAccept(rec, bz.All(), by.All(), bid.All(), bsz.All(), bst.All(), s, k, iters, g)
				})
				if it == 1 {
					state = SquareDrawRef(ids, sizes, state, s, g)
				}
				xb, xn = SquareProposeRef(x0, ids, state, xb, xn, s, eps, g)
				state = SquareAcceptRef(logits, labels, ids, sizes, state, s, k, iters, g)
				compare(t, fmt.Sprintf("x_best after query %d", it), download(t, bxb, n), xb, exact)
				compare(t, fmt.Sprintf("x_new after query %d", it), download(t, bxn, n), xn, exact)
				compare(t, fmt.Sprintf("state after query %d", it), download(t, bst, s.B*SquareState), state, exact)
			}
			if state[SquareIt] != iters+1 || state[SquareDone] != 1 {
				t.Errorf("row 0 (never fooled) made %v queries, done %v; want %d and done", state[SquareIt],
					state[SquareDone], iters+1)
			}
			for i, v := range xn {
				if v < 0 || v > 1 || math.Abs(float64(v-x0[i])) > eps+1e-6 {
					t.Fatalf("proposal value %d = %v from %v: outside [0, 1] or the ε-ball", i, v, x0[i])
				}
			}
		})
	}
}

// TestSquareSizes: AutoAttack's schedule on MNIST (28×28, p_init 0.8) gives 25 then 18, 13, 9, 6, 4, 3, 2 after
// the halvings at 10, 50, 200, 500, 1000, 2000 and 4000 iterations.
func TestSquareSizes(t *testing.T) {
	s := SquareSizes(0.8, 5000, 28, 28)
	for _, c := range []struct{ it, want int }{{0, 25}, {10, 25}, {11, 18}, {51, 13}, {201, 9}, {501, 6}, {1001, 4},
		{2001, 3}, {4001, 2}, {4999, 2}} {
		if got := int(s[c.it]); got != c.want {
			t.Errorf("iteration %d: side %d, want %d", c.it, got, c.want)
		}
	}
}
