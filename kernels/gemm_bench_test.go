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

// denseShapes are the products of the MNIST models' dense layers at batch 50 (fc1 of small: 1568 → 100, of
// madry: 3136 → 1024; fc2 of small: 100 → 10): the forward pass (x·wᵀ), the input gradient (dy·w) and the weight
// gradient (dyᵀ·x), as graph.Linear records them.
var denseShapes = []struct {
	name    string
	m, n, k int
	o       GemmOpts
}{
	{"small-fc1/forward", 50, 100, 1568, GemmOpts{TransB: true}},
	{"small-fc1/data", 50, 1568, 100, GemmOpts{}},
	{"small-fc1/filter", 100, 1568, 50, GemmOpts{TransA: true}},
	{"small-fc2/forward", 50, 10, 100, GemmOpts{TransB: true}},
	{"small-fc2/data", 50, 100, 10, GemmOpts{}},
	{"madry-fc1/forward", 50, 1024, 3136, GemmOpts{TransB: true}},
	{"madry-fc1/data", 50, 3136, 1024, GemmOpts{}},
	{"madry-fc1/filter", 1024, 3136, 50, GemmOpts{TransA: true}},
}

// BenchmarkGemmDense times the dense layers' products with the tile Gemm picks ("auto") and, where
// SQNET_GEMM_TILES="RM,CN,LX;..." is set, with each tile it lists (the measurement behind gemmTile's choices
// for short and thin products).
func BenchmarkGemmDense(b *testing.B) {
	var tiles []GemmTile
	if env := os.Getenv("SQNET_GEMM_TILES"); env != "" {
		for _, s := range strings.Split(env, ";") {
			var t GemmTile
			if _, err := fmt.Sscanf(s, "%d,%d,%d", &t.RM, &t.CN, &t.LX); err != nil {
				b.Fatalf("SQNET_GEMM_TILES: %q is not RM,CN,LX", s)
			}
			tiles = append(tiles, t)
		}
	}
	for _, d := range denseShapes {
		for i := -1; i < len(tiles); i++ {
			name := d.name + "/auto"
			if i >= 0 {
				name = fmt.Sprintf("%s/RM%d-CN%d-LX%d", d.name, tiles[i].RM, tiles[i].CN, tiles[i].LX)
			}
			b.Run(name, func(b *testing.B) {
				l := openBenchLib(b)
				ba, bb, bc := benchBuf(b, l, d.m*d.k), benchBuf(b, l, d.k*d.n), benchBuf(b, l, d.m*d.n)
				benchRecorded(b, l, GemmFlops(d.m, d.n, d.k), func(r *vk.Recorder) error {
					if i < 0 {
						return l.Gemm(r, ba.All(), bb.All(), bc.All(), d.m, d.n, d.k, d.o)
					}
					return l.GemmTiled(r, ba.All(), bb.All(), bc.All(), d.m, d.n, d.k, d.o, tiles[i])
				})
			})
		}
	}
}
