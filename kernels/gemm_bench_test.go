package kernels

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sqnet/sqnet/vk"
	"github.com/sqnet/sqnet/vk/vktest"
)

// openBenchLib opens the benchmark device (no validation, its name printed once).
func openBenchLib(b *testing.B) *Lib { return New(vktest.OpenBench(b)) }

// benchRecorded records once with fn, then replays the command buffer b.N times and reports GFLOP/s.
func benchRecorded(b *testing.B, l *Lib, flops float64, fn func(r *vk.Recorder) error) {
	benchReplay(b, l, fn)
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// benchReplay records once with fn, submits the command buffer once untimed, then replays it b.N times.
func benchReplay(b *testing.B, l *Lib, fn func(r *vk.Recorder) error) {
	r, err := l.dev.NewRecorder()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	if err := fn(r); err != nil {
		b.Fatal(err)
	}
	if err := r.Run(); err != nil { // warm-up: first submit
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := r.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGemm measures square products, plain and with B transposed (the dense layer's forward product).
func BenchmarkGemm(b *testing.B) {
	for _, s := range []int{256, 512, 1024} {
		for _, tb := range []bool{false, true} {
			b.Run(fmt.Sprintf("%d/transB=%v", s, tb), func(b *testing.B) {
				l := openBenchLib(b)
				ba, bb, bc := benchBuf(b, l, s*s), benchBuf(b, l, s*s), benchBuf(b, l, s*s)
				benchRecorded(b, l, GemmFlops(s, s, s), func(r *vk.Recorder) error {
					return l.Gemm(r, ba.All(), bb.All(), bc.All(), s, s, s, GemmOpts{TransB: tb})
				})
			})
		}
	}
}

// BenchmarkGemmTiles sweeps register tiles at 1024³ (SQNET_GEMM_TILES="RM,CN,LX;..." overrides the list), the
// measurement behind gemmTile's choice.
func BenchmarkGemmTiles(b *testing.B) {
	tiles := []GemmTile{{16, 4, 8}, {8, 4, 8}, {16, 2, 8}, {8, 8, 8}, {16, 4, 16}, {32, 2, 8}}
	if env := os.Getenv("SQNET_GEMM_TILES"); env != "" {
		tiles = nil
		for _, s := range strings.Split(env, ";") {
			f := strings.Split(s, ",")
			if len(f) != 3 {
				b.Fatalf("SQNET_GEMM_TILES: %q is not RM,CN,LX", s)
			}
			var v [3]uint32
			for i := range f {
				x, err := strconv.Atoi(f[i])
				if err != nil {
					b.Fatal(err)
				}
				v[i] = uint32(x)
			}
			tiles = append(tiles, GemmTile{v[0], v[1], v[2]})
		}
	}
	const s = 1024
	for _, tile := range tiles {
		for _, tb := range []bool{false, true} {
			b.Run(fmt.Sprintf("RM%d-CN%d-LX%d/transB=%v", tile.RM, tile.CN, tile.LX, tb), func(b *testing.B) {
				l := openBenchLib(b)
				ba, bb, bc := benchBuf(b, l, s*s), benchBuf(b, l, s*s), benchBuf(b, l, s*s)
				benchRecorded(b, l, GemmFlops(s, s, s), func(r *vk.Recorder) error {
					return l.GemmTiled(r, ba.All(), bb.All(), bc.All(), s, s, s, GemmOpts{TransB: tb}, tile)
				})
			})
		}
	}
}

// benchBuf allocates n floats of seeded data.
func benchBuf(b *testing.B, l *Lib, n int) *vk.Buffer {
	return upload(b, l, uniform(rng(uint64(n)), n, -1, 1))
}
