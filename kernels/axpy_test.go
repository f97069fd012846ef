package kernels

import (
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// Axpy with a = 1 (the graph's gradient accumulation) is one rounded addition: exact. A general a may be fused
// into an fma by the driver: one rounding of the product may differ, so 1 ulp of relative tolerance.
func TestAxpy(t *testing.T) {
	l := openLib(t)
	for _, n := range append(edgeSizes, 128*257) {
		for _, c := range []struct {
			a  float32
			tl tol
		}{{1, exact}, {-0.37, tol{Abs: 1e-7, Rel: 2e-7}}} {
			x, y := uniform(rng(uint64(n)), n, -2, 2), uniform(rng(uint64(n)+7), n, -2, 2)
			bx, by := upload(t, l, x), upload(t, l, y)
			run(t, l, func(r *vk.Recorder) error { return l.Axpy(r, bx.All(), by.All(), n, c.a) })
			compare(t, "axpy", download(t, by, n), AxpyRef(x, y, c.a), c.tl)
		}
	}
	b := zeros(t, l, 8)
	rec := newRecorder(t, l)
	expectErr(t, "zero size", l.Axpy(rec, b.All(), zeros(t, l, 8).All(), 0, 1))
	expectErr(t, "aliasing", l.Axpy(rec, b.All(), b.All(), 8, 1))
	expectErr(t, "y too small", l.Axpy(rec, zeros(t, l, 16).All(), b.All(), 16, 1))
}
