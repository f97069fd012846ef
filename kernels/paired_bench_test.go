package kernels

import (
	"slices"
	"testing"
	"time"

	"github.com/sqnet/sqnet/vk"
)

// pairedPasses is how many passes each command buffer of a paired benchmark records.
const pairedPasses = 10

// benchPaired records each of variants (each setting the package's switches, then recording pairedPasses passes)
// into its own command buffer, submits them all once untimed, then b.N times in turn, and reports each one's median
// milliseconds a pass and the median, over the b.N turns, of its time over the first one's. On a machine whose
// speed drifts by tens of percent from one minute to the next (the 2-core CI machines), a ratio of runs a
// millisecond apart is what can be trusted; two benchmarks run one after the other are not.
func benchPaired(b *testing.B, l *Lib, names []string, variants []func(r *vk.Recorder) error) {
	recs := make([]*vk.Recorder, len(variants))
	for i, rec := range variants {
		r, err := l.dev.NewRecorder()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(r.Close)
		for range pairedPasses {
			if err := rec(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.Run(); err != nil {
			b.Fatal(err)
		}
		recs[i] = r
	}
	times := make([][]float64, len(recs))
	for b.Loop() { // (b.Loop starts the timer here)
		for i, r := range recs {
			t0 := time.Now()
			if err := r.Run(); err != nil {
				b.Fatal(err)
			}
			times[i] = append(times[i], time.Since(t0).Seconds()*1e3/pairedPasses)
		}
	}
	for i := range recs {
		ratios := make([]float64, len(times[i]))
		for k := range ratios {
			ratios[k] = times[i][k] / times[0][k]
		}
		b.ReportMetric(median(times[i]), "ms/pass-"+names[i])
		if i > 0 {
			b.ReportMetric(median(ratios), names[i]+"/"+names[0])
		}
	}
}

// benchSwitch runs benchPaired on the two settings of one of the package's switches (off first, named names[0]),
// recording with rec under each, and sets the switch back on afterwards.
func benchSwitch(b *testing.B, l *Lib, sw *bool, names []string, rec func(r *vk.Recorder) error) {
	defer func() { *sw = true }()
	var variants []func(r *vk.Recorder) error
	for _, on := range []bool{false, true} {
		variants = append(variants, func(r *vk.Recorder) error {
			*sw = on
			return rec(r)
		})
	}
	benchPaired(b, l, names, variants)
}

// median returns the median of v (the upper one of an even count).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkVec4Stores times the vec4 stores of the packed implicit GEMMs (conv.comp's STORE4) and of Gemm
// (gemm.comp's STORE4) against float ones, paired (see benchPaired): the MNIST models' second convolutions at batch
// 50, forward and input gradient, and their dense layers' products (denseShapes).
//
//	go test ./kernels -run '^$' -bench Vec4Stores -benchtime 15x
func BenchmarkVec4Stores(b *testing.B) {
	for _, c := range mnistConvs[2:] { // the second layers: the first run conv_direct
		s := c.s
		for _, pass := range []string{"forward", "data"} {
			b.Run(c.name+"/"+pass, func(b *testing.B) {
				l := openBenchLib(b)
				x, w, y := benchBuf(b, l, s.InLen()), benchBuf(b, l, s.WLen()), benchBuf(b, l, s.OutLen())
				n := l.ConvFwdScratch(s)
				if pass == "data" {
					n = l.ConvDataScratch(s)
				}
				if n == 0 {
					b.Skip("no packed pass on this device")
				}
				o := ConvOpts{Scratch: benchBuf(b, l, n).All()}
				benchSwitch(b, l, &convVec4Stores, []string{"float", "vec4"}, func(r *vk.Recorder) error {
					if pass == "forward" {
						return l.Conv2D(r, x.All(), w.All(), y.All(), s, o)
					}
					return l.Conv2DBackwardData(r, y.All(), w.All(), x.All(), s, o)
				})
			})
		}
	}
	for _, d := range denseShapes {
		b.Run("dense/"+d.name, func(b *testing.B) {
			l := openBenchLib(b)
			ba, bb, bc := benchBuf(b, l, d.m*d.k), benchBuf(b, l, d.k*d.n), benchBuf(b, l, d.m*d.n)
			benchSwitch(b, l, &gemmStore4, []string{"float", "vec4"}, func(r *vk.Recorder) error {
				return l.Gemm(r, ba.All(), bb.All(), bc.All(), d.m, d.n, d.k, d.o)
			})
		})
	}
}

// BenchmarkGemmFewRows times, paired, the dense layers' input gradients (few rows against a plain B) with Gemm's
// tile against the one-vec4-column tile of 16 invocations they ran until 2026-12-07 (see Gemm).
//
//	go test ./kernels -run '^$' -bench GemmFewRows -benchtime 15x
func BenchmarkGemmFewRows(b *testing.B) {
	for _, d := range denseShapes {
		if d.o.TransA || d.o.TransB || d.m > 256 {
			continue
		}
		b.Run(d.name, func(b *testing.B) {
			l := openBenchLib(b)
			ba, bb, bc := benchBuf(b, l, d.m*d.k), benchBuf(b, l, d.k*d.n), benchBuf(b, l, d.m*d.n)
			old := l.gemmTile(d.m, d.n, d.k)
			old.CN, old.LX = 1, min(16, l.dev.Info().Limits.MaxWorkgroupInvocations, l.dev.Info().Limits.MaxWorkgroupSize[0])
			benchPaired(b, l, []string{"gemm", "cn1"}, []func(r *vk.Recorder) error{
				func(r *vk.Recorder) error { return l.Gemm(r, ba.All(), bb.All(), bc.All(), d.m, d.n, d.k, d.o) },
				func(r *vk.Recorder) error {
					return l.GemmTiled(r, ba.All(), bb.All(), bc.All(), d.m, d.n, d.k, d.o, old)
				},
			})
		})
	}
}

// BenchmarkBiasGradTexels times, paired, bias_grad4 reading dy through a storage buffer and as vec4 texels
// (bias_grad4_t), for the MNIST convolutions' bias gradients at batch 50.
//
//	go test ./kernels -run '^$' -bench BiasGradTexels -benchtime 15x
func BenchmarkBiasGradTexels(b *testing.B) {
	for _, c := range mnistConvs {
		s := c.s
		b.Run(c.name, func(b *testing.B) {
			l := openBenchLib(b)
			dy, db := benchBuf(b, l, s.OutLen()), benchBuf(b, l, s.Cout)
			if !l.texelFits(vk.Texel4, dy.All()) {
				b.Skip("no vec4 texel reads on this device")
			}
			benchSwitch(b, l, &biasGradTexels, []string{"buffer", "texel"}, func(r *vk.Recorder) error {
				return l.BiasGrad(r, dy.All(), db.All(), s.B, s.Cout, s.OH()*s.OW(), false)
			})
		})
	}
}

// BenchmarkAdamTexels times, paired, an Adam step (dynamic corrections, as training records it) reading its four
// arrays through storage buffers and through vec4 texel views (adam.comp's TEX), for madry's and small's fc1 weights.
//
//	go test ./kernels -run '^$' -bench AdamTexels -benchtime 15x
func BenchmarkAdamTexels(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
	}{{"madry-fc1", 1024 * 3136}, {"small-fc1", 100 * 1568}} {
		b.Run(c.name, func(b *testing.B) {
			l := openBenchLib(b)
			w, g, m, v := benchBuf(b, l, c.n), benchBuf(b, l, c.n), benchBuf(b, l, c.n), benchBuf(b, l, c.n)
			if !l.texelFits(vk.Texel4, w.All(), g.All(), m.All(), v.All()) {
				b.Skip("no vec4 texel reads on this device")
			}
			p := DefaultAdam(1e-3)
			c1 := AdamCorrections(p, 1)
			corr := upload(b, l, c1[:])
			benchSwitch(b, l, &adamTexelReads, []string{"buffer", "texel"}, func(r *vk.Recorder) error {
				return l.AdamStepDynamic(r, w.All(), g.All(), m.All(), v.All(), corr.All(), c.n, p)
			})
		})
	}
}
