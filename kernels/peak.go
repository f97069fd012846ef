package kernels

import (
	"fmt"

	"github.com/sqnet/sqnet/vk"
)

// peakChains is the number of independent vec4 recurrences an invocation of Peak runs (peak.comp's CHAINS).
const peakChains = 10

// peakPush mirrors peak.comp's push constants.
type peakPush struct {
	N, Iters uint32
	B        float32
}

// PeakFlops is the arithmetic of Peak over n invocations of iters steps: a multiply and an add per component of
// each chain.
func PeakFlops(n, iters int) float64 { return float64(n) * float64(iters) * peakChains * 4 * 2 }

// Peak records the register-only multiply-add benchmark over n invocations: invocation i runs iters steps of
// independent recurrences s ← s·b + x[i] held in registers and writes their sum to y[i]. Its GFLOP/s (PeakFlops
// over the device time) measures the device's arithmetic ceiling for fp32 multiply-adds as its compiler emits
// them — the fastest of the loop shapes tried on lavapipe, so a bound found, not proven: a kernel that also loads
// its operands is not expected to beat it. fused writes the step with fma(), else as a*b + c; drivers
// compile the two differently (lavapipe splits fma() into a multiply and an add). |b| must be below 1.
func (l *Lib) Peak(r *vk.Recorder, x, y vk.Range, n, iters int, b float32, fused bool) error {
	const op = "peak"
	if iters <= 0 || iters > 1<<24 || !(b > -1 && b < 1) {
		return fmt.Errorf("%s: %d steps and multiplier %v (want 1..%d steps, |b| < 1)", op, iters, b, 1<<24)
	}
	if err := needEach(op, sized{"x", x, n}, sized{"y", y, n}); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"y", y}); err != nil {
		return err
	}
	shader := "peak_mad"
	if fused {
		shader = "peak_fma"
	}
	return l.dispatch1D(r, shader, n, peakPush{uint32(n), uint32(iters), b}, []vk.Access{vk.Read, vk.Write}, x, y)
}

// PeakRef is the CPU reference of Peak with a*b + c rounded twice (the MAD form; fma() may round once, which
// differs in the last bits only: the recurrences contract, so rounding differences do not grow).
func PeakRef(x []float32, iters int, b float32) []float32 {
	y := make([]float32, len(x))
	for i, a := range x {
		var s [peakChains]float32
		for c := range s {
			s[c] = a + float32(c)
		}
		for range iters {
			for c := range s {
				s[c] = float32(s[c]*b) + a // the conversion rounds the product: Go may not fuse it into an FMA
			}
		}
		t := s[0]
		for c := 1; c < peakChains; c++ {
			t += s[c]
		}
		// The shader sums four equal components as (t + t) + (t + t).
		y[i] = (t + t) + (t + t)
	}
	return y
}
