package kernels

import (
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// TestPeak runs both forms of the register-only multiply-add loop against the CPU reference. The recurrences
// contract towards x/(1−b), so a fused multiply-add's single rounding moves the result by a few ulps at most.
func TestPeak(t *testing.T) {
	l := openLib(t)
	for _, n := range append(edgeSizes, 3000) {
		for _, iters := range []int{1, 7, 100} {
			x := uniform(rng(uint64(n*iters)), n, -2, 2)
			want := PeakRef(x, iters, 0.75)
			for _, fused := range []bool{false, true} {
				bx, by := upload(t, l, x), zeros(t, l, n)
				run(t, l, func(r *vk.Recorder) error { return l.Peak(r, bx.All(), by.All(), n, iters, 0.75, fused) })
				compare(t, "peak", download(t, by, n), want, tol{Abs: 1e-5, Rel: 1e-5})
			}
		}
	}
	if got := PeakFlops(1000, 10); got != 800000 { // ten vec4 chains, a multiply and an add per component
		t.Errorf("PeakFlops(1000, 10) = %v, want 800000", got)
	}
	b := zeros(t, l, 8)
	rec := newRecorder(t, l)
	expectErr(t, "zero size", l.Peak(rec, zeros(t, l, 8).All(), b.All(), 0, 1, 0.5, false))
	expectErr(t, "zero steps", l.Peak(rec, zeros(t, l, 8).All(), b.All(), 8, 0, 0.5, false))
	expectErr(t, "|b| = 1", l.Peak(rec, zeros(t, l, 8).All(), b.All(), 8, 1, 1, false))
	expectErr(t, "NaN b", l.Peak(rec, zeros(t, l, 8).All(), b.All(), 8, 1, float32(math.NaN()), false))
	expectErr(t, "aliasing", l.Peak(rec, b.All(), b.All(), 8, 1, 0.5, false))
	expectErr(t, "y too small", l.Peak(rec, zeros(t, l, 16).All(), b.All(), 16, 1, 0.5, true))
}
