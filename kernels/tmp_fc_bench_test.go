package kernels

import (
	"fmt"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

func BenchmarkTmpFC(b *testing.B) {
	l := openLib(b)
	for _, c := range []struct {
		m, n, k int
		tb      bool
	}{{50, 1024, 3136, true}, {50, 3136, 1024, false}, {100, 1024, 3136, true}, {100, 3136, 1024, false}} {
		for _, tex := range []bool{false, true} {
			l.texel = tex
			b.Run(fmt.Sprintf("%dx%dx%d-tb%v-tex%v", c.m, c.n, c.k, c.tb, tex), func(b *testing.B) {
				ba, bb, bc := zeros(b, l, c.m*c.k), zeros(b, l, c.k*c.n), zeros(b, l, c.m*c.n)
				rec, _ := l.dev.NewRecorder()
				defer rec.Close()
				for i := 0; i < b.N; i++ {
					rec.Reset()
					if err := l.Gemm(rec, ba.All(), bb.All(), bc.All(), c.m, c.n, c.k, GemmOpts{TransB: c.tb}); err != nil {
						b.Fatal(err)
					}
					if err := rec.Run(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(GemmFlops(c.m, c.n, c.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
	_ = vk.Read
}
