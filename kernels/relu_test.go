package kernels

import (
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// ReLU is exact: tolerance 0 forward and backward.
func TestReLU(t *testing.T) {
	l := openLib(t)
	for _, n := range append(edgeSizes, 128*257, 1<<20+5) {
		x := uniform(rng(uint64(n)), n, -2, 2)
		dy := uniform(rng(uint64(n)+1), n, -2, 2)
		bx, bdy := upload(t, l, x), upload(t, l, dy)
		by, bdx := zeros(t, l, n), zeros(t, l, n)
		run(t, l, func(r *vk.Recorder) error {
			if err := l.ReLU(r, bx.All(), by.All(), n); err != nil {
				return err
			}
			return l.ReLUBackward(r, bx.All(), bdy.All(), bdx.All(), n)
		})
		compare(t, "relu forward", download(t, by, n), ReLURef(x), exact)
		compare(t, "relu backward", download(t, bdx, n), ReLUBackwardRef(x, dy), exact)
	}
}

// TestReLUGradient checks the backward kernel against central differences of the forward reference, on inputs
// kept away from the kink at 0.
func TestReLUGradient(t *testing.T) {
	l := openLib(t)
	const n = 257
	r := rng(3)
	x := uniform(r, n, -2, 2)
	for i := range x {
		if x[i] > -0.05 && x[i] < 0.05 {
			x[i] += 0.1
		}
	}
	w := uniform(r, n, -1, 1) // loss = Σ w·relu(x), so dy = w
	bx, bw, bdx := upload(t, l, x), upload(t, l, w), zeros(t, l, n)
	run(t, l, func(rec *vk.Recorder) error { return l.ReLUBackward(rec, bx.All(), bw.All(), bdx.All(), n) })
	loss := func(xs []float64) float64 {
		s := 0.0
		for i, v := range xs {
			s += float64(w[i]) * max(v, 0)
		}
		return s
	}
	gradCheck(t, "relu", download(t, bdx, n), numericGrad(loss, to64s(x), 1e-3), tol{Abs: 1e-5, Rel: 1e-4})
}

func TestReLUBadInput(t *testing.T) {
	l := openLib(t)
	small, big := zeros(t, l, 4), zeros(t, l, 64)
	rec := newRecorder(t, l)
	expectErr(t, "zero size", l.ReLU(rec, big.All(), big.All(), 0))
	expectErr(t, "negative size", l.ReLU(rec, big.All(), big.All(), -3))
	expectErr(t, "x too small", l.ReLU(rec, small.All(), big.All(), 64))
	expectErr(t, "dy too small", l.ReLUBackward(rec, big.All(), small.All(), big.All(), 64))
	expectErr(t, "nil buffer", l.ReLU(rec, vk.Range{}, big.All(), 4))
}

func TestReLUDeterministic(t *testing.T) {
	l := openLib(t)
	const n = 4099
	x := uniform(rng(9), n, -2, 2)
	bx := upload(t, l, x)
	var outs [2][]float32
	for i := range outs {
		by := zeros(t, l, n)
		run(t, l, func(r *vk.Recorder) error { return l.ReLU(r, bx.All(), by.All(), n) })
		outs[i] = download(t, by, n)
	}
	sameBits(t, "", outs[0], outs[1])
}
