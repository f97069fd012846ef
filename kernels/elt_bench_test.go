package kernels

import (
	"testing"

	"github.com/sqnet/sqnet/vk"
)

func BenchmarkElt(b *testing.B) {
	const n = 50 * 784
	s := QuantShape{N: 50, C: 1, H: 28, W: 28, Levels: 2}
	for _, name := range []string{"squant", "squant_bwd", "squant_bwdx", "noise", "axpy", "relu", "pool", "adam", "adam_odd", "bias1", "bias2"} {
		b.Run(name, func(b *testing.B) {
			l := openBenchLib(b)
			x, y, z, thr := benchBuf(b, l, n*16), benchBuf(b, l, n*16), benchBuf(b, l, n*16), benchBuf(b, l, 1)
			dthr, scr := benchBuf(b, l, 1), benchBuf(b, l, 100000)
			step := upload(b, l, []float32{0})
			_ = step
			benchRecorded(b, l, n, func(r *vk.Recorder) error {
				switch name {
				case "squant":
					return l.SoftQuant(r, x.All(), thr.All(), y.All(), s, 50)
				case "squant_bwd":
					return l.SoftQuantBackward(r, x.All(), thr.All(), y.All(), z.All(), dthr.All(), scr.All(), s, 50)
				case "squant_bwdx":
					return l.SoftQuantBackward(r, x.All(), thr.All(), y.All(), z.All(), vk.Range{}, vk.Range{}, s, 50)
				case "noise":
					return l.UniformNoiseDynamic(r, x.All(), y.All(), step.All(), n, 0.3, RNG{Seed: 1})
				case "axpy":
					return l.Axpy(r, x.All(), y.All(), n, 0.5)
				case "relu":
					return l.ReLU(r, x.All(), y.All(), n)
				case "adam", "adam_odd":
					nn := 156800
					if name == "adam_odd" {
						nn--
					}
					return l.AdamStep(r, x.All(), y.All(), z.All(), y.All(), nn, 3, AdamParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
				case "bias1":
					return l.BiasGrad(r, x.All(), y.All(), 50, 16, 784, false)
				case "bias2":
					return l.BiasGrad(r, x.All(), y.All(), 50, 32, 196, false)
				case "pool":
					return l.ReLUMaxPool2x2(r, x.All(), y.All(), z.All(), 50, 16, 28, 28)
				}
				return l.ReLUMaxPool2x2Backward(r, x.All(), z.All(), y.All(), scr.All(), 50, 16, 28, 28)
			})
		})
	}
}
