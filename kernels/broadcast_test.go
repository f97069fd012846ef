package kernels

import (
	"fmt"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// TestRowMeanBroadcast: RowMean (global average pooling) against a float64 mean per row, and RowBroadcast (its
// backward) bit for bit against its reference, over the edge sizes; then the pair is each other's adjoint:
// ⟨RowMean(x), g⟩ = ⟨x, RowBroadcast(g, 1/d)⟩ for every x and g.
func TestRowMeanBroadcast(t *testing.T) {
	l := openLib(t)
	for _, rows := range []int{1, 3, 17} {
		for _, d := range edgeSizes {
			t.Run(fmt.Sprintf("%dx%d", rows, d), func(t *testing.T) {
				x := uniform(rng(uint64(rows*1000+d)), rows*d, -1, 1)
				gr := uniform(rng(uint64(rows*1000+d+1)), rows, -1, 1)
				bx, bm, bg, by := upload(t, l, x), zeros(t, l, rows), upload(t, l, gr), zeros(t, l, rows*d)
				run(t, l, func(r *vk.Recorder) error {
					if err := l.RowMean(r, bx.All(), bm.All(), rows, d); err != nil {
						return err
					}
					return l.RowBroadcast(r, bg.All(), by.All(), rows, d, 1/float32(d))
				})
				want := make([]float32, rows)
				for i := range want {
					s := 0.0
					for _, v := range x[i*d : (i+1)*d] {
						s += float64(v)
					}
					want[i] = float32(s / float64(d))
				}
				mean := download(t, bm, rows)
				compare(t, "row mean", mean, want, tol{Abs: 1e-6, Rel: 1e-6})
				y := download(t, by, rows*d)
				compare(t, "row broadcast", y, RowBroadcastRef(gr, rows, d, 1/float32(d)), exact)
				var lhs, rhs float64
				for i := range gr {
					lhs += float64(mean[i]) * float64(gr[i])
				}
				for i := range x {
					rhs += float64(x[i]) * float64(y[i])
				}
				if d := lhs - rhs; d > 1e-5 || d < -1e-5 {
					t.Fatalf("not adjoint: <mean(x), g> = %v, <x, broadcast(g)> = %v", lhs, rhs)
				}
			})
		}
	}
	rec := newRecorder(t, l)
	big, small := zeros(t, l, 64), zeros(t, l, 4)
	expectErr(t, "zero rows", l.RowBroadcast(rec, small.All(), big.All(), 0, 4, 1))
	expectErr(t, "y too small", l.RowBroadcast(rec, small.All(), small.All(), 4, 4, 1))
	expectErr(t, "x too small", l.RowBroadcast(rec, small.All(), big.All(), 8, 4, 1))
	expectErr(t, "in place", l.RowBroadcast(rec, big.All(), big.All(), 4, 4, 1))
	expectErr(t, "mean: out too small", l.RowMean(rec, big.All(), small.Range(0, 4), 4, 4))
}
