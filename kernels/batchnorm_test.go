package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// bnTol: the statistics are float32 sums of up to a few thousand terms and a square root; 1e-5 relative covers
// their rounding, where a wrong channel, stride or formula is off by O(1).
var bnTol = tol{Abs: 2e-5, Rel: 2e-5}

// bnShapes cover one image, one pixel per channel (P = 1: a dense layer's batch norm), odd sizes and a channel
// count above the workgroup size, and a CIFAR-sized plane.
var bnShapes = []BatchNormShape{
	{N: 3, C: 1, P: 1}, {N: 1, C: 3, P: 17}, {N: 5, C: 7, P: 31}, {N: 2, C: 257, P: 3}, {N: 4, C: 16, P: 1024},
}

// bnInputs returns seeded x (shifted per channel, so a wrong channel shows), γ, β and running estimates.
func bnInputs(s BatchNormShape, seed uint64) (x, gamma, beta, rm, rv []float32) {
	r := rng(seed)
	x = uniform(r, s.N*s.C*s.P, -2, 2)
	for c := 0; c < s.C; c++ {
		each(s, c, func(i int) { x[i] += float32(c%5) - 1 })
	}
	return x, uniform(r, s.C, 0.5, 1.5), uniform(r, s.C, -0.5, 0.5), uniform(r, s.C, -0.3, 0.3),
		uniform(r, s.C, 0.5, 2)
}

// TestBatchNorm compares training and eval mode forward passes, the running-estimate update, and both modes'
// backward passes with the CPU references over bnShapes, all recorded into one command buffer.
func TestBatchNorm(t *testing.T) {
	l := openLib(t)
	for k, s := range bnShapes {
		s.Eps, s.Momentum = 1e-5, 0.1
		t.Run(fmt.Sprintf("N%d_C%d_P%d", s.N, s.C, s.P), func(t *testing.T) {
			x, gamma, beta, rm, rv := bnInputs(s, uint64(k))
			n := len(x)
			dy := uniform(rng(uint64(k)+100), n, -1, 1)
			bx, bg, bb, bdy := upload(t, l, x), upload(t, l, gamma), upload(t, l, beta), upload(t, l, dy)
			brm, brv := upload(t, l, rm), upload(t, l, rv)
			ermB, ervB := upload(t, l, rm), upload(t, l, rv)
			st, est := zeros(t, l, s.C*BatchNormStatsWidth), zeros(t, l, s.C*BatchNormStatsWidth)
			y, ey := zeros(t, l, n), zeros(t, l, n)
			dg, db, dx := zeros(t, l, s.C), zeros(t, l, s.C), zeros(t, l, n)
			edg, edb, edx := zeros(t, l, s.C), zeros(t, l, s.C), zeros(t, l, n)
			run(t, l, func(r *vk.Recorder) error {
				if err := l.BatchNormStats(r, bx.All(), bg.All(), bb.All(), brm.All(), brv.All(), st.All(), s, true); err != nil {
					return err
				}
				if err := l.BatchNormApply(r, bx.All(), st.All(), y.All(), s); err != nil {
					return err
				}
				if err := l.BatchNormBackward(r, bx.All(), bdy.All(), st.All(), dg.All(), db.All(), dx.All(), s, true); err != nil {
					return err
				}
				if err := l.BatchNormEvalStats(r, bg.All(), bb.All(), ermB.All(), ervB.All(), est.All(), s); err != nil {
					return err
				}
				if err := l.BatchNormApply(r, bx.All(), est.All(), ey.All(), s); err != nil {
					return err
				}
				return l.BatchNormBackward(r, bx.All(), bdy.All(), est.All(), edg.All(), edb.All(), edx.All(), s, false)
			})
			wy, wst, wrm, wrv := BatchNormTrainRef(x, gamma, beta, rm, rv, s)
			compare(t, "training stats", download(t, st, s.C*BatchNormStatsWidth), wst, bnTol)
			compare(t, "training y", download(t, y, n), wy, tol{Abs: 1e-4, Rel: 1e-5})
			compare(t, "running mean", download(t, brm, s.C), wrm, bnTol)
			compare(t, "running var", download(t, brv, s.C), wrv, bnTol)
			wdg, wdb, wdx := BatchNormBackwardRef(x, dy, wst, s, true)
			compare(t, "dgamma", download(t, dg, s.C), wdg, tol{Abs: 1e-4 * math.Sqrt(float64(s.N*s.P)), Rel: 1e-4})
			compare(t, "dbeta", download(t, db, s.C), wdb, tol{Abs: 1e-5 * math.Sqrt(float64(s.N*s.P)), Rel: 1e-5})
			compare(t, "training dx", download(t, dx, n), wdx, tol{Abs: 1e-4, Rel: 1e-4})
			ewy, ewst := BatchNormEvalRef(x, gamma, beta, rm, rv, s)
			compare(t, "eval stats", download(t, est, s.C*BatchNormStatsWidth), ewst, bnTol)
			compare(t, "eval y", download(t, ey, n), ewy, tol{Abs: 1e-5, Rel: 1e-5})
			_, _, ewdx := BatchNormBackwardRef(x, dy, ewst, s, false)
			compare(t, "eval dx", download(t, edx, n), ewdx, tol{Abs: 1e-6, Rel: 1e-5})
			compare(t, "eval leaves the running mean", download(t, ermB, s.C), rm, exact)
		})
	}
}

// TestBatchNormReference pins the references to the definition: in training mode every channel of y has mean β
// and (biased) variance γ²·v/(v + eps); the running variance moves towards the unbiased variance; and a
// finite-difference check of L = Σ w·y with respect to x, γ and β, in both modes, against BatchNormBackwardRef.
func TestBatchNormReference(t *testing.T) {
	s := BatchNormShape{N: 3, C: 2, P: 5, Eps: 1e-3, Momentum: 0.25}
	x, gamma, beta, rm, rv := bnInputs(s, 7)
	y, st, _, wrv := BatchNormTrainRef(x, gamma, beta, rm, rv, s)
	n := float64(s.N * s.P)
	for c := 0; c < s.C; c++ {
		var sx, sx2, sy, sy2 float64
		each(s, c, func(i int) {
			sx, sx2 = sx+float64(x[i]), sx2+float64(x[i])*float64(x[i])
			sy, sy2 = sy+float64(y[i]), sy2+float64(y[i])*float64(y[i])
		})
		v := sx2/n - (sx/n)*(sx/n)
		my, vy := sy/n, sy2/n-(sy/n)*(sy/n)
		g := float64(gamma[c])
		if math.Abs(my-float64(beta[c])) > 1e-5 || math.Abs(vy-g*g*v/(v+float64(s.Eps))) > 1e-4 {
			t.Errorf("channel %d: y has mean %v variance %v, want %v and %v", c, my, vy, beta[c], g*g*v/(v+float64(s.Eps)))
		}
		want := 0.75*float64(rv[c]) + 0.25*v*n/(n-1)
		if math.Abs(float64(wrv[c])-want) > 1e-6 {
			t.Errorf("channel %d: running var %v, want %v", c, wrv[c], want)
		}
		if st[c*BatchNormStatsWidth] != float32(sx/n) {
			t.Errorf("channel %d: mean %v, want %v", c, st[c*BatchNormStatsWidth], sx/n)
		}
	}
	w := uniform(rng(8), len(x), -1, 1)
	for _, training := range []bool{true, false} {
		// L(x, γ, β) = Σ w·y in float64, by the reference's formulas without float32 rounding.
		loss := func(xv, gv, bv []float64) float64 {
			var l float64
			for c := 0; c < s.C; c++ {
				mean, v := float64(rm[c]), float64(rv[c])
				if training {
					var sum, m2 float64
					each(s, c, func(i int) { sum += xv[i] })
					mean = sum / n
					each(s, c, func(i int) { m2 += (xv[i] - mean) * (xv[i] - mean) })
					v = m2 / n
				}
				invstd := 1 / math.Sqrt(v+float64(s.Eps))
				each(s, c, func(i int) { l += float64(w[i]) * ((xv[i]-mean)*invstd*gv[c] + bv[c]) })
			}
			return l
		}
		xs, gs, bs := to64(x), to64(gamma), to64(beta)
		stats := st
		if !training {
			_, stats = BatchNormEvalRef(x, gamma, beta, rm, rv, s)
		}
		dg, db, dx := BatchNormBackwardRef(x, w, stats, s, training)
		what := map[bool]string{true: "training", false: "eval"}[training]
		gradCheck(t, what+" dx", dx, numericGrad(func(v []float64) float64 { return loss(v, gs, bs) }, xs, 1e-4),
			tol{Abs: 1e-4, Rel: 1e-4})
		gradCheck(t, what+" dgamma", dg, numericGrad(func(v []float64) float64 { return loss(xs, v, bs) }, gs, 1e-4),
			tol{Abs: 1e-4, Rel: 1e-4})
		gradCheck(t, what+" dbeta", db, numericGrad(func(v []float64) float64 { return loss(xs, gs, v) }, bs, 1e-4),
			tol{Abs: 1e-4, Rel: 1e-4})
	}
}

// TestBatchNormDeterministic: the per-channel reductions take a fixed order, so two runs give the same bits.
func TestBatchNormDeterministic(t *testing.T) {
	l := openLib(t)
	s := BatchNormShape{N: 8, C: 3, P: 1000, Eps: 1e-5, Momentum: 0.1}
	x, gamma, beta, rm, rv := bnInputs(s, 9)
	var outs [2][]float32
	for i := range outs {
		bx, bg, bb, brm, brv := upload(t, l, x), upload(t, l, gamma), upload(t, l, beta), upload(t, l, rm), upload(t, l, rv)
		st, dg, db, dx := zeros(t, l, s.C*BatchNormStatsWidth), zeros(t, l, s.C), zeros(t, l, s.C), zeros(t, l, len(x))
		run(t, l, func(r *vk.Recorder) error {
			if err := l.BatchNormStats(r, bx.All(), bg.All(), bb.All(), brm.All(), brv.All(), st.All(), s, true); err != nil {
				return err
			}
			return l.BatchNormBackward(r, bx.All(), bx.All(), st.All(), dg.All(), db.All(), dx.All(), s, true)
		})
		outs[i] = append(append(download(t, st, s.C*BatchNormStatsWidth), download(t, dg, s.C)...), download(t, dx, len(x))...)
	}
	sameBits(t, "", outs[0], outs[1])
}

// TestBatchNormBadInput: shapes, sizes, eps, momentum, one value per channel in training mode, aliasing.
func TestBatchNormBadInput(t *testing.T) {
	l := openLib(t)
	rec := newRecorder(t, l)
	s := BatchNormShape{N: 2, C: 3, P: 4, Eps: 1e-5, Momentum: 0.1}
	x, c, st := zeros(t, l, 24), zeros(t, l, 3), zeros(t, l, 12)
	c2, c3, small := zeros(t, l, 3), zeros(t, l, 3), zeros(t, l, 2)
	stats := func(s BatchNormShape) error {
		return l.BatchNormStats(rec, x.All(), c.All(), c.All(), c2.All(), c3.All(), st.All(), s, true)
	}
	bad := s
	bad.C = 0
	expectErr(t, "no channels", stats(bad))
	bad = s
	bad.Eps = 0
	expectErr(t, "eps 0", stats(bad))
	bad = s
	bad.Momentum = 1.5
	expectErr(t, "momentum 1.5", stats(bad))
	bad = s
	bad.N, bad.P = 1, 1
	expectErr(t, "one value per channel", stats(bad))
	expectErr(t, "running mean too small",
		l.BatchNormStats(rec, x.All(), c.All(), c.All(), small.All(), c3.All(), st.All(), s, true))
	expectErr(t, "running mean is the running var",
		l.BatchNormStats(rec, x.All(), c.All(), c.All(), c2.All(), c2.All(), st.All(), s, true))
	expectErr(t, "stats too small", l.BatchNormApply(rec, x.All(), c.All(), x.All(), s))
	expectErr(t, "dx is dy", l.BatchNormBackward(rec, x.All(), st.All(), st.All(), c.All(), c2.All(), st.All(), s, true))
	one := s
	one.N, one.P = 1, 1
	if err := l.BatchNormBackward(rec, c.All(), c3.All(), st.All(), zeros(t, l, 3).All(), c2.All(), small.All(), one,
		false); err == nil {
		t.Error("dx too small: no error")
	}
	if err := l.BatchNormBackward(rec, c.All(), c3.All(), st.All(), zeros(t, l, 3).All(), c2.All(), zeros(t, l, 3).All(), one,
		false); err != nil {
		t.Errorf("eval mode with one value per channel: %v", err)
	}
}

// to64 widens a float32 slice.
func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
