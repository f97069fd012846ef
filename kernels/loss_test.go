package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// Softmax cross-entropy tolerance. The kernel works in float32: Vulkan lets exp err by (3 + 2|x|) ulp and log by
// 3 ulp (2⁻²¹ absolute near 1), the serial sum of K terms adds K/2 ulp at most in practice, and division 2.5 ulp.
// Against the float64 reference that is ~1e-6 relative for the sum; 2e-5 absolute plus 1e-5 relative covers
// K = 257 with room and still catches any real mistake (a wrong max, label or sign errs by ≳ 1e-2).
var xentTol = tol{Abs: 2e-5, Rel: 1e-5}

// lossCase is one logits/labels input for the loss tests.
type lossCase struct {
	b, k   int
	logits []float32
	labels []uint32
}

// lossCases returns batches 1 and 131 for every edge size of K (K ≥ minK), plus logits scaled by 500 (the
// max-subtraction must keep the loss finite and accurate) and logits on a coarse grid (ties).
func lossCases(minK int) []lossCase {
	var cs []lossCase
	for _, k := range edgeSizes {
		if k < minK {
			continue
		}
		for _, b := range []int{1, 131} {
			r := rng(uint64(1000*k + b))
			c := lossCase{b: b, k: k, logits: uniform(r, b*k, -2, 2), labels: make([]uint32, b)}
			for i := range c.labels {
				c.labels[i] = uint32(r.IntN(k))
			}
			cs = append(cs, c)
		}
	}
	big := cs[len(cs)-3] // K = 64, B = 131
	scaled := lossCase{b: big.b, k: big.k, logits: make([]float32, len(big.logits)), labels: big.labels}
	grid := lossCase{b: big.b, k: big.k, logits: make([]float32, len(big.logits)), labels: big.labels}
	for i, v := range big.logits {
		scaled.logits[i] = 500 * v
		grid.logits[i] = float32(math.Round(float64(v)))
	}
	return append(cs, scaled, grid)
}

func TestSoftmaxXent(t *testing.T) {
	l := openLib(t)
	for ci, c := range lossCases(1) {
		t.Run(fmt.Sprintf("%d_B%d_K%d", ci, c.b, c.k), func(t *testing.T) {
			dloss := uniform(rng(uint64(ci)), c.b, -2, 2)
			bz, by, bd := upload(t, l, c.logits), uploadU32(t, l, c.labels), upload(t, l, dloss)
			bl, bg, bgu := zeros(t, l, c.b), zeros(t, l, c.b*c.k), zeros(t, l, c.b*c.k)
			scale := 1 / float32(c.b)
			run(t, l, func(r *vk.Recorder) error {
				if err := l.SoftmaxXent(r, bz.All(), by.All(), bl.All(), c.b, c.k); err != nil {
					return err
				}
				if err := l.SoftmaxXentBackward(r, bz.All(), by.All(), vk.Range{}, bg.All(), c.b, c.k, scale); err != nil {
					return err
				}
				return l.SoftmaxXentBackward(r, bz.All(), by.All(), bd.All(), bgu.All(), c.b, c.k, 0.5)
			})
			loss := download(t, bl, c.b)
			for i, v := range loss {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("loss[%d] = %v", i, v)
				}
			}
			compare(t, "xent forward", loss, SoftmaxXentRef(c.logits, c.labels, c.b, c.k), xentTol)
			compare(t, "xent backward (scale)", download(t, bg, c.b*c.k),
				SoftmaxXentBackwardRef(c.logits, c.labels, nil, c.b, c.k, scale), xentTol)
			compare(t, "xent backward (upstream)", download(t, bgu, c.b*c.k),
				SoftmaxXentBackwardRef(c.logits, c.labels, dloss, c.b, c.k, 0.5), xentTol)
		})
	}
}

// TestSoftmaxXentGradient checks the backward kernel (with per-example upstream gradients w) against central
// differences of the float64 core of the forward reference, loss = Σ_i w_i·xent_i. With h = 1e-3 the truncation
// error is ~h²·|f⁽³⁾| ≲ 1e-6; the kernel's float32 error is ≲ 1e-6; tolerance 1e-5 + 1e-4 relative.
func TestSoftmaxXentGradient(t *testing.T) {
	l := openLib(t)
	const b, k = 5, 17
	r := rng(21)
	z := uniform(r, b*k, -2, 2)
	w := uniform(r, b, -1, 1)
	labels := make([]uint32, b)
	for i := range labels {
		labels[i] = uint32(r.IntN(k))
	}
	bz, by, bw, bg := upload(t, l, z), uploadU32(t, l, labels), upload(t, l, w), zeros(t, l, b*k)
	run(t, l, func(rec *vk.Recorder) error {
		return l.SoftmaxXentBackward(rec, bz.All(), by.All(), bw.All(), bg.All(), b, k, 1)
	})
	loss := func(zs []float64) float64 {
		s := 0.0
		for i := range b {
			v, _ := xentRow64(zs[i*k:(i+1)*k], int(labels[i]))
			s += float64(w[i]) * v
		}
		return s
	}
	gradCheck(t, "xent", download(t, bg, b*k), numericGrad(loss, to64s(z), 1e-3), tol{Abs: 1e-5, Rel: 1e-4})
}

// CW loss and its gradient involve one float32 subtraction, a comparison and a multiplication, all correctly
// rounded in Vulkan as in Go, so both directions must match the reference exactly, ties included.
func TestCWLoss(t *testing.T) {
	l := openLib(t)
	inf := float32(math.Inf(1))
	for ci, c := range lossCases(2) {
		for _, kappa := range []float32{inf, 0.25, -0.5} {
			t.Run(fmt.Sprintf("%d_B%d_K%d_kappa%v", ci, c.b, c.k, kappa), func(t *testing.T) {
				dloss := uniform(rng(uint64(ci)+50), c.b, -2, 2)
				bz, by, bd := upload(t, l, c.logits), uploadU32(t, l, c.labels), upload(t, l, dloss)
				bl, bg, bgu := zeros(t, l, c.b), zeros(t, l, c.b*c.k), zeros(t, l, c.b*c.k)
				scale := 1 / float32(c.b)
				run(t, l, func(r *vk.Recorder) error {
					if err := l.CWLoss(r, bz.All(), by.All(), bl.All(), c.b, c.k, kappa); err != nil {
						return err
					}
					if err := l.CWLossBackward(r, bz.All(), by.All(), vk.Range{}, bg.All(), c.b, c.k, kappa,
						scale); err != nil {
						return err
					}
					return l.CWLossBackward(r, bz.All(), by.All(), bd.All(), bgu.All(), c.b, c.k, kappa, 2)
				})
				compare(t, "cw forward", download(t, bl, c.b), CWLossRef(c.logits, c.labels, c.b, c.k, kappa), exact)
				compare(t, "cw backward (scale)", download(t, bg, c.b*c.k),
					CWLossBackwardRef(c.logits, c.labels, nil, c.b, c.k, kappa, scale), exact)
				compare(t, "cw backward (upstream)", download(t, bgu, c.b*c.k),
					CWLossBackwardRef(c.logits, c.labels, dloss, c.b, c.k, kappa, 2), exact)
			})
		}
	}
}

// TestCWTies pins the tie rule with a hand-made row: two runners-up tie, the first gets the gradient.
func TestCWTies(t *testing.T) {
	l := openLib(t)
	z := []float32{0.5, 1, 3, 1, 3, -1} // label 1; runners-up 2 and 4 tie at 3 → j* = 2, margin 2
	bz, by, bl, bg := upload(t, l, z), uploadU32(t, l, []uint32{1}), zeros(t, l, 1), zeros(t, l, 6)
	run(t, l, func(r *vk.Recorder) error {
		if err := l.CWLoss(r, bz.All(), by.All(), bl.All(), 1, 6, float32(math.Inf(1))); err != nil {
			return err
		}
		return l.CWLossBackward(r, bz.All(), by.All(), vk.Range{}, bg.All(), 1, 6, float32(math.Inf(1)), 1)
	})
	compare(t, "cw tie loss", download(t, bl, 1), []float32{2}, exact)
	compare(t, "cw tie gradient", download(t, bg, 6), []float32{0, -1, 1, 0, 0, 0}, exact)
}

// TestCWGradient checks the CW backward kernel against central differences of CWLossRef, loss = Σ_i w_i·cw_i. Each
// row is a permutation of values 0.4 apart and κ = 1 sits 0.2 from every possible margin, so a step of
// h = 1e-2 never crosses a kink: the quotient is exact up to float32 rounding of z ± h (≈ 1e-5 relative).
func TestCWGradient(t *testing.T) {
	l := openLib(t)
	const b, k = 6, 10
	const kappa = 1
	r := rng(31)
	z := make([]float32, b*k)
	labels := make([]uint32, b)
	for i := range b {
		for j, p := range r.Perm(k) {
			z[i*k+j] = -2 + 0.4*float32(p)
		}
		labels[i] = uint32(r.IntN(k))
	}
	w := uniform(r, b, -1, 1)
	bz, by, bw, bg := upload(t, l, z), uploadU32(t, l, labels), upload(t, l, w), zeros(t, l, b*k)
	run(t, l, func(rec *vk.Recorder) error {
		return l.CWLossBackward(rec, bz.All(), by.All(), bw.All(), bg.All(), b, k, kappa, 1)
	})
	loss := func(zs []float64) float64 {
		z32 := make([]float32, len(zs))
		for i, v := range zs {
			z32[i] = float32(v)
		}
		s := 0.0
		for i, v := range CWLossRef(z32, labels, b, k, kappa) {
			s += float64(w[i]) * float64(v)
		}
		return s
	}
	clamped := 0
	for _, v := range CWLossRef(z, labels, b, k, kappa) {
		if v == kappa {
			clamped++
		}
	}
	if clamped == 0 || clamped == b {
		t.Fatalf("%d of %d rows clamped: the check should cover both pieces", clamped, b)
	}
	gradCheck(t, "cw", download(t, bg, b*k), numericGrad(loss, to64s(z), 1e-2), tol{Abs: 1e-4, Rel: 1e-4})
}

// TestLossBadLabel: a label ≥ K cannot be checked on the host; both losses must flag it with NaN, never fault.
func TestLossBadLabel(t *testing.T) {
	l := openLib(t)
	const b, k = 3, 4
	z := uniform(rng(41), b*k, -2, 2)
	labels := []uint32{1, k, 1 << 31}
	bz, by := upload(t, l, z), uploadU32(t, l, labels)
	bx, bc, bgx, bgc := zeros(t, l, b), zeros(t, l, b), zeros(t, l, b*k), zeros(t, l, b*k)
	run(t, l, func(r *vk.Recorder) error {
		for _, err := range []error{
			l.SoftmaxXent(r, bz.All(), by.All(), bx.All(), b, k),
			l.CWLoss(r, bz.All(), by.All(), bc.All(), b, k, 1),
			l.SoftmaxXentBackward(r, bz.All(), by.All(), vk.Range{}, bgx.All(), b, k, 1),
			l.CWLossBackward(r, bz.All(), by.All(), vk.Range{}, bgc.All(), b, k, 1, 1),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range []struct {
		what      string
		got, want []float32
		tl        tol
	}{
		{"xent", download(t, bx, b), SoftmaxXentRef(z, labels, b, k), xentTol},
		{"cw", download(t, bc, b), CWLossRef(z, labels, b, k, 1), exact},
		{"xent backward", download(t, bgx, b*k), SoftmaxXentBackwardRef(z, labels, nil, b, k, 1), xentTol},
		{"cw backward", download(t, bgc, b*k), CWLossBackwardRef(z, labels, nil, b, k, 1, 1), exact},
	} {
		per := len(c.got) / b
		if math.IsNaN(float64(c.got[0])) || !math.IsNaN(float64(c.got[per])) || !math.IsNaN(float64(c.got[2*per])) {
			t.Errorf("%s: rows with bad labels should be NaN and only those: %v", c.what, c.got)
		}
		if m := mismatch(c.got[:per], c.want[:per], c.tl); m != "" {
			t.Errorf("%s, good row: %s", c.what, m)
		}
		if !math.IsNaN(float64(c.want[per])) {
			t.Errorf("%s: reference does not flag the bad label", c.what)
		}
	}
}

func TestLossBadInput(t *testing.T) {
	l := openLib(t)
	small, z, lab, out := zeros(t, l, 4), zeros(t, l, 64), uploadU32(t, l, make([]uint32, 8)), zeros(t, l, 64)
	rec := newRecorder(t, l)
	nan := float32(math.NaN())
	Z, L, O, none := z.All(), lab.All(), out.All(), vk.Range{}
	for _, c := range []struct {
		what string
		err  error
	}{
		{"xent zero batch", l.SoftmaxXent(rec, Z, L, O, 0, 8)},
		{"xent zero classes", l.SoftmaxXent(rec, Z, L, O, 8, 0)},
		{"xent negative classes", l.SoftmaxXent(rec, Z, L, O, 8, -8)},
		{"xent logits too small", l.SoftmaxXent(rec, small.All(), L, O, 8, 8)},
		{"xent labels too small", l.SoftmaxXent(rec, Z, small.Range(0, 8), O, 8, 8)},
		{"xent loss too small", l.SoftmaxXent(rec, Z, L, small.Range(0, 4), 8, 8)},
		{"xent nil labels", l.SoftmaxXent(rec, Z, none, O, 8, 8)},
		{"xent loss aliases logits", l.SoftmaxXent(rec, Z, L, z.Range(0, 32), 8, 8)},
		{"xent overflow", l.SoftmaxXent(rec, Z, L, O, 1<<20, 1<<20)},
		{"xent backward dlogits too small", l.SoftmaxXentBackward(rec, Z, L, none, small.All(), 8, 8, 1)},
		{"xent backward dloss too small", l.SoftmaxXentBackward(rec, Z, L, small.Range(0, 4), O, 8, 8, 1)},
		{"xent backward in place", l.SoftmaxXentBackward(rec, Z, L, none, Z, 8, 8, 1)},
		{"cw one class", l.CWLoss(rec, Z, L, O, 8, 1, 1)},
		{"cw zero batch", l.CWLoss(rec, Z, L, O, 0, 8, 1)},
		{"cw NaN kappa", l.CWLoss(rec, Z, L, O, 8, 8, nan)},
		{"cw logits too small", l.CWLoss(rec, small.All(), L, O, 8, 8, 1)},
		{"cw labels too small", l.CWLoss(rec, Z, small.Range(0, 8), O, 8, 8, 1)},
		{"cw backward one class", l.CWLossBackward(rec, Z, L, none, O, 8, 1, 1, 1)},
		{"cw backward NaN kappa", l.CWLossBackward(rec, Z, L, none, O, 8, 8, nan, 1)},
		{"cw backward dlogits too small", l.CWLossBackward(rec, Z, L, none, small.All(), 8, 8, 1, 1)},
		{"cw backward dloss aliases dlogits", l.CWLossBackward(rec, Z, L, out.Range(0, 32), O, 8, 8, 1, 1)},
	} {
		expectErr(t, c.what, c.err)
	}
	if rec.Dispatches() != 0 {
		t.Errorf("bad inputs recorded %d dispatches", rec.Dispatches())
	}
}
