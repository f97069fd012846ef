package kernels

import (
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// pgdInputs returns a clean image batch x0 in [0, 1], a current iterate x inside the ε-ball (some elements on
// its boundary or at 0/1), and a gradient in [−2, 2] with exact zeros and NaNs (a step treats both as 0).
func pgdInputs(seed uint64, n int, eps float32) (x0, x, g []float32) {
	r := rng(seed)
	x0 = uniform(r, n, 0, 1)
	x = make([]float32, n)
	g = uniform(r, n, -2, 2)
	for i := range x {
		if i%7 == 3 {
			g[i] = float32(math.NaN())
		}
		switch i % 5 {
		case 0:
			x[i] = clip01(x0[i] + eps)
		case 1:
			g[i] = 0
			fallthrough
		default:
			x[i] = clip01(x0[i] + eps*(2*r.Float32()-1))
		}
	}
	return
}

// PGD steps, FGSM and the random start are exact: only correctly rounded adds and multiplies by ±1, ±ε, and
// clamps (the shader forbids fused multiply-adds with precise), so tolerance 0.
func TestPGD(t *testing.T) {
	l := openLib(t)
	const eps, eta = 0.3, 0.01
	for _, n := range append(edgeSizes, 128*784) {
		x0, x, g := pgdInputs(uint64(n), n, eps)
		bx0, bx, bg := upload(t, l, x0), upload(t, l, x), upload(t, l, g)
		bf, bs, bfs := zeros(t, l, n), zeros(t, l, n), upload(t, l, x0)
		rs := RNG{Seed: 77, Stream: 1, Step: uint32(n)}
		run(t, l, func(r *vk.Recorder) error {
			if err := l.PGDStep(r, bx.All(), bg.All(), bx0.All(), n, eta, eps); err != nil {
				return err
			}
			if err := l.FGSM(r, bf.All(), bg.All(), bx0.All(), n, eps); err != nil {
				return err
			}
			// FGSM as a PGD step from x0 with η = ε must agree with the FGSM kernel.
			if err := l.PGDStep(r, bfs.All(), bg.All(), bx0.All(), n, eps, eps); err != nil {
				return err
			}
			return l.PGDRandomStart(r, bs.All(), bx0.All(), n, eps, rs)
		})
		step := download(t, bx, n)
		compare(t, "pgd step", step, PGDStepRef(x, g, x0, eta, eps), exact)
		fgsm := download(t, bf, n)
		compare(t, "fgsm", fgsm, FGSMRef(g, x0, eps), exact)
		compare(t, "fgsm = pgd step from x0 with η = ε", download(t, bfs, n), fgsm, exact)
		start := download(t, bs, n)
		compare(t, "pgd random start", start, PGDRandomStartRef(x0, eps, rs), exact)
		for i := range x0 {
			for _, v := range []float32{step[i], fgsm[i], start[i]} {
				if v < 0 || v > 1 || math.Abs(float64(v)-float64(x0[i])) > eps+1e-6 {
					t.Fatalf("n=%d element %d: %v leaves [0,1] or the %v-ball around %v", n, i, v, eps, x0[i])
				}
			}
		}
	}
}

// TestPGDAscends runs 70 PGD steps on the linear loss w·x, whose maximiser over the ball ∩ [0, 1] is known in
// closed form: x0 + ε·sign(w) clipped (x0 where w = 0). The random start lies at most 2ε = 0.6 from it, so 70 steps of η = 0.01 reach it.
func TestPGDAscends(t *testing.T) {
	l := openLib(t)
	const n, eps, eta = 1000, 0.3, 0.01
	r := rng(11)
	x0, w := uniform(r, n, 0, 1), uniform(r, n, -2, 2)
	w[7] = 0
	bx0, bw := upload(t, l, x0), upload(t, l, w)
	bx := upload(t, l, x0)
	run(t, l, func(rec *vk.Recorder) error {
		if err := l.PGDRandomStart(rec, bx.All(), bx0.All(), n, eps, RNG{Seed: 5}); err != nil {
			return err
		}
		for range 70 {
			// the gradient of w·x is w everywhere
			if err := l.PGDStep(rec, bx.All(), bw.All(), bx0.All(), n, eta, eps); err != nil {
				return err
			}
		}
		return nil
	})
	got := download(t, bx, n)
	start := PGDRandomStartRef(x0, eps, RNG{Seed: 5})
	want := make([]float32, n)
	ref := start
	for range 70 {
		ref = PGDStepRef(ref, w, x0, eta, eps)
	}
	for i := range want {
		want[i] = clip01(float32(x0[i] + float32(eps*sign32(w[i]))))
		if w[i] == 0 {
			want[i] = start[i]
		}
	}
	compare(t, "70 PGD steps vs reference", got, ref, exact)
	compare(t, "70 PGD steps vs the maximiser", got, want, tol{Abs: 1e-6})
}

func TestPGDDeterministic(t *testing.T) {
	l := openLib(t)
	const n = 4099
	x0, x, g := pgdInputs(3, n, 0.1)
	bx0, bg := upload(t, l, x0), upload(t, l, g)
	var outs [2][]float32
	for i := range outs {
		bx := upload(t, l, x)
		run(t, l, func(r *vk.Recorder) error {
			if err := l.PGDRandomStart(r, bx.All(), bx0.All(), n, 0.1, RNG{Seed: 1}); err != nil {
				return err
			}
			return l.PGDStep(r, bx.All(), bg.All(), bx0.All(), n, 0.02, 0.1)
		})
		outs[i] = download(t, bx, n)
	}
	sameBits(t, "", outs[0], outs[1])
}

func TestPGDBadInput(t *testing.T) {
	l := openLib(t)
	small, big := zeros(t, l, 4), zeros(t, l, 64)
	b, s := big.All(), small.All()
	rec := newRecorder(t, l)
	nan := float32(math.NaN())
	expectErr(t, "zero size", l.PGDStep(rec, b, b, b, 0, 0.01, 0.3))
	expectErr(t, "negative size", l.FGSM(rec, b, b, b, -2, 0.3))
	expectErr(t, "x too small", l.PGDStep(rec, s, b, b, 64, 0.01, 0.3))
	expectErr(t, "g too small", l.PGDStep(rec, b, s, b, 64, 0.01, 0.3))
	expectErr(t, "x0 too small", l.FGSM(rec, b, b, s, 64, 0.3))
	expectErr(t, "start x0 too small", l.PGDRandomStart(rec, b, s, 64, 0.3, RNG{}))
	expectErr(t, "negative eps", l.PGDStep(rec, b, b, b, 64, 0.01, -0.3))
	expectErr(t, "negative eta", l.PGDStep(rec, b, b, b, 64, -0.01, 0.3))
	expectErr(t, "NaN eps", l.PGDRandomStart(rec, b, b, 64, nan, RNG{}))
	expectErr(t, "NaN eta", l.PGDStep(rec, b, b, b, 64, nan, 0.3))
	expectErr(t, "nil buffer", l.FGSM(rec, vk.Range{}, b, b, 4, 0.3))
}
