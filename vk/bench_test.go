package vk_test

import (
	"testing"

	"github.com/sqnet/sqnet/vk"
	"github.com/sqnet/sqnet/vk/vktest"
)

// emptyDispatches records n dispatches of addscalar over zero elements: the shader returns at once, so the time
// is the cost of a dispatch itself. The binding is declared read-only (true for n = 0), so no barriers are
// recorded unless withBarriers.
func emptyDispatches(b *testing.B, d *vk.Device, n int, withBarriers bool) *vk.Recorder {
	p := mustPipeline(b, d, vk.PipelineSpec{Shader: "addscalar", Bindings: []vk.Access{vk.Read}, PushSize: 8,
		Local: [3]uint32{64, 1, 1}})
	buf := mustAlloc(b, d, 256)
	r := mustRecorder(b, d)
	for range n {
		if withBarriers {
			if err := r.Barrier(); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.Dispatch(p, [3]uint32{1, 1, 1}, scalarPush{0, 0}, buf.All()); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.End(); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkDispatch reports µs per empty dispatch inside one command buffer of 1000, with and without a barrier
// before each.
func BenchmarkDispatch(b *testing.B) {
	for _, barriers := range []bool{false, true} {
		name := "independent"
		if barriers {
			name = "barrier-each"
		}
		b.Run(name, func(b *testing.B) {
			const n = 1000
			d := vktest.OpenBench(b)
			r := emptyDispatches(b, d, n, barriers)
			b.ResetTimer()
			for b.Loop() {
				if err := r.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/dispatch")
		})
	}
}

// BenchmarkSubmitWait reports µs per submit + fence wait of a command buffer holding one empty dispatch.
func BenchmarkSubmitWait(b *testing.B) {
	d := vktest.OpenBench(b)
	r := emptyDispatches(b, d, 1, false)
	b.ResetTimer()
	for b.Loop() {
		if err := r.Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/submit")
}

// BenchmarkTransfer reports upload and download bandwidth for 64 MiB, mapped and through staging buffers.
func BenchmarkTransfer(b *testing.B) {
	const size = 64 << 20
	for _, staging := range []bool{false, true} {
		for _, dir := range []string{"upload", "download"} {
			path := "mapped"
			if staging {
				path = "staging"
			}
			b.Run(dir+"/"+path, func(b *testing.B) {
				opts := vktest.Options()
				opts.Instance.Validation = vk.ValidationOff
				opts.ForceStaging = staging
				d := vktest.OpenWith(b, opts)
				buf := mustAlloc(b, d, size)
				host := make([]byte, size)
				b.SetBytes(size)
				b.ResetTimer()
				for b.Loop() {
					var err error
					if dir == "upload" {
						err = buf.Write(0, host)
					} else {
						err = buf.Read(0, host)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}
