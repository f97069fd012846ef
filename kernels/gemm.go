package kernels

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/sqnet/sqnet/vk"
)

// gemmPush mirrors gemm.comp's push constants.
type gemmPush struct {
	M, N, K  uint32
	Sam, Sak uint32
	Flags    uint32
	Sbz, Scz uint32
}

// gemm.comp flag bits.
const (
	gemmBias       = 1
	gemmReLU       = 2
	gemmAccumulate = 4
)

// GemmOpts are the optional parts of Gemm.
type GemmOpts struct {
	// TransA: A is stored K×M and op(A) = Aᵀ; otherwise A is stored M×K.
	TransA bool
	// TransB: B is stored N×K and op(B) = Bᵀ; otherwise B is stored K×N.
	TransB bool
	// Bias, when its Buf is not nil, holds N floats added to every row of the product.
	Bias vk.Range
	// ReLU applies max(·, 0) last.
	ReLU bool
	// Accumulate adds the product to what C holds instead of overwriting it.
	Accumulate bool
	// Batch, when above 1, records that many products in one dispatch, all with the same A (and bias): product z
	// reads B from float z·StrideB of b and writes C from float z·StrideC of c. StrideC must be at least m·n so the
	// products do not overlap; StrideB may be anything, 0 included.
	Batch            int
	StrideB, StrideC int
}

// GemmTile is a register-blocking choice: each invocation computes RM rows × 4·CN columns of C, and a
// workgroup is LX invocations along N.
type GemmTile struct{ RM, CN, LX uint32 }

// gemmTile picks the tile for an m×n×k product. On lavapipe (8-wide SIMD over invocations) a 32×16 block per
// invocation with 8 invocations per workgroup measures fastest at 1024³ (storage buffers: ≈36 GFLOP/s on the 2-core
// machine, against 30 for 16×16, 33 for 32×32, 32 for 24×16, 23 for 32×8, 11 for 64×8; texel views: 64 against 58
// for 16×16, 53 for 16×32, 46 for 32×8; see BenchmarkGemmTiles): every load costs tens of cycles there (Mesa 22.3
// loads a storage buffer lane by lane, a texel buffer by a gather), so taller and wider blocks that reuse each
// loaded value for more multiply-adds win until their accumulators spill. Big blocks take LLVM seconds
// to compile, so they are kept for products big enough to repay that once; smaller row and column blocks serve
// short products so that clamped duplicate rows and columns do not waste work. GPUs get more invocations per
// workgroup and smaller blocks per invocation: on an NVIDIA H200, 4×4 with 64–256 invocations measured 11–12
// TFLOP/s at 1024³ (plain B), 8×4 9.8, 8×8 5.3, 16×4 3.1.
func (l *Lib) gemmTile(m, n, k int) GemmTile {
	t := GemmTile{RM: 8, CN: 2, LX: 8}
	if m >= 16 && n >= 64 && float64(m)*float64(n)*float64(k) >= 1<<24 {
		// Rows split evenly into blocks of at most 32: a batch of 50 runs as 2×25 rows, not 64 rows of which 14
		// are clamped copies (madry's fc1 at batch 50: 32 → 42–46 GFLOP/s). From 16 rows on, not 32: small's
		// conv2 input gradient (16 rows, the input channels) ran 8×8 blocks at 11.3 GFLOP/s, 16×16 at 19.6 (b100,
		// lavapipe, AMD EPYC; an attack's costliest pass).
		blocks := (m + 31) / 32
		t = GemmTile{RM: uint32((m + blocks - 1) / blocks), CN: 4, LX: 8}
	}
	if l.dev.Info().Type != vk.TypeCPU {
		t = GemmTile{RM: 4, CN: 1, LX: 64}
	}
	for t.RM > 1 && int(t.RM) >= 2*m {
		t.RM /= 2
	}
	for t.CN > 1 && int(4*t.CN) >= 2*n {
		t.CN /= 2
	}
	t.LX = min(t.LX, l.dev.Info().Limits.MaxWorkgroupInvocations, l.dev.Info().Limits.MaxWorkgroupSize[0])
	return t
}

// Gemm records C[m×n] = op(A)·op(B) (+ bias) (+ C when accumulating) (then ReLU), all fp32 row-major, for any
// m, n, k ≥ 1. C must not alias A, B or the bias.
func (l *Lib) Gemm(r *vk.Recorder, a, b, c vk.Range, m, n, k int, o GemmOpts) error {
	t := l.gemmTile(m, n, k)
	// (Until 2026-12-07 a product of few rows against a plain B — a dense layer's input gradient dy·w — ran one vec4
	// of columns an invocation and 16 invocations a workgroup on CPU drivers: madry's fc1 input gradient
	// (50×3136×1024) 40–42 → 46–51 GFLOP/s on lavapipe, measured 2026-12-06 on the machine of that afternoon's
	// tables in docs/perf.md, an AMD EPYC. On the Intel Xeon machine, paired runs (BenchmarkGemmFewRows) put the
	// 25×16 block ahead of it: madry's fc1 0.71–0.76× and small's (50×1568×100) 0.71–0.73× of its time in one half
	// hour, 0.94× and 0.89× in a slower one, with float or vec4 stores alike, so it went.)
	if o.TransA && t.RM > 4 && t.RM%4 != 0 {
		t.RM = (t.RM + 3) / 4 * 4 // whole groups of four rows keep the vec4 loads of a transposed A
	}
	return l.GemmTiled(r, a, b, c, m, n, k, o, t)
}

// GemmTiled is Gemm with an explicit register tile (for benchmarks and tuning on a new device).
func (l *Lib) GemmTiled(r *vk.Recorder, a, b, c vk.Range, m, n, k int, o GemmOpts, t GemmTile) error {
	const op = "gemm"
	if err := positive(op, Dim{"M", m}, Dim{"K", k}); err != nil {
		return err
	}
	if err := positive(op, Dim{"K", k}, Dim{"N", n}); err != nil {
		return err
	}
	if err := positive(op, Dim{"M", m}, Dim{"N", n}); err != nil {
		return err
	}
	if err := need(op, "A", a, m*k); err != nil {
		return err
	}
	batch := max(o.Batch, 1)
	if batch > 1 && (o.StrideB < 0 || o.StrideC < m*n || uint64(batch) > uint64(l.dev.Info().Limits.MaxWorkgroupCount[2])) {
		return fmt.Errorf("%s: a batch of %d with strides B %d, C %d (want C ≥ m·n = %d, B ≥ 0, at most %d products)",
			op, batch, o.StrideB, o.StrideC, m*n, l.dev.Info().Limits.MaxWorkgroupCount[2])
	}
	if err := need(op, "B", b, (batch-1)*max(o.StrideB, 0)+k*n); err != nil {
		return err
	}
	if err := need(op, "C", c, (batch-1)*o.StrideC+m*n); err != nil {
		return err
	}
	if t.RM == 0 || t.CN == 0 || t.LX == 0 || t.RM > 64 || t.CN > 16 {
		return fmt.Errorf("%s: tile %+v out of range (RM 1..64, CN 1..16, LX ≥ 1)", op, t)
	}
	p := gemmPush{M: uint32(m), N: uint32(n), K: uint32(k), Sam: uint32(k), Sak: 1}
	if o.TransA {
		p.Sam, p.Sak = 1, uint32(m)
	}
	bias := a // bound but never read when there is no bias
	if o.Bias.Buf != nil {
		if err := need(op, "bias", o.Bias, n); err != nil {
			return err
		}
		bias = o.Bias
		p.Flags |= gemmBias
	}
	if o.ReLU {
		p.Flags |= gemmReLU
	}
	if o.Accumulate {
		p.Flags |= gemmAccumulate
	}
	if batch > 1 {
		p.Sbz, p.Scz = uint32(o.StrideB), uint32(o.StrideC)
	}
	shader := gemmShader(m, n, k, o.TransA, o.TransB, t.RM, batch == 1 || o.StrideB%4 == 0)
	aa, ab := vk.Read, vk.Read
	if shader[len(shader)-1] == '4' && l.texelFits(vk.Texel4, b) {
		ta := vk.Texel4
		if shader[5:7] == "a0" {
			ta = vk.Texel1 // A of any shape, read a float at a time
		}
		if l.texelFits(ta, a) {
			shader, aa, ab = shader+"t", ta, vk.Texel4
		}
	}
	lim := l.dev.Info().Limits
	gx := (uint64(n) + 4*uint64(t.CN)*uint64(t.LX) - 1) / (4 * uint64(t.CN) * uint64(t.LX))
	gy := (uint64(m) + uint64(t.RM) - 1) / uint64(t.RM)
	if gx > uint64(lim.MaxWorkgroupCount[0]) || gy > uint64(lim.MaxWorkgroupCount[1]) {
		return fmt.Errorf("%s: %d×%d needs %d×%d workgroups, more than the device's %v", op, m, n, gx, gy,
			lim.MaxWorkgroupCount)
	}
	store4 := uint32(0) // gemm.comp's STORE4: every group of four columns of C one aligned vec4
	if gemmStore4 && n%4 == 0 && c.Off%16 == 0 && (batch == 1 || o.StrideC%4 == 0) {
		store4 = 1
	}
	pipe, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: []vk.Access{aa, ab, vk.Read, vk.ReadWrite},
		PushSize: pushSize(p), Local: [3]uint32{t.LX, 1, 1},
		Consts: []vk.SpecConst{vk.SpecU32(3, t.RM), vk.SpecU32(4, t.CN), vk.SpecU32(5, store4)}})
	if err != nil {
		return err
	}
	return r.Dispatch(pipe, [3]uint32{uint32(gx), uint32(gy), uint32(batch)}, p, a, b, bias, c)
}

// gemmStore4 lets Gemm store four columns of C as one vec4 where the shape and C's offset allow it (gemm.comp's
// STORE4); tests turn it off to compare the two stores bit for bit.
var gemmStore4 = true

// gemmShader picks gemm.comp's variant: vec4 loads of A along k (plain A, K % 4 == 0) or along m (transposed
// A, M % 4 == 0 and a row tile of whole groups of four), vec4 loads of B along n (plain B, N % 4 == 0) or along
// k (transposed B, K % 4 == 0; either needs a batch stride of whole vec4s, vec4B), scalar loads otherwise. Vec4
// loads measured 25–30% faster on lavapipe.
func gemmShader(m, n, k int, transA, transB bool, rm uint32, vec4B bool) string {
	a := "a0"
	switch {
	case !transA && k%4 == 0:
		a = "a1"
	case transA && m%4 == 0 && rm%4 == 0:
		a = "a2"
	}
	b := "bn"
	if transB {
		b = "bt"
	}
	if vec4B && ((!transB && n%4 == 0) || (transB && k%4 == 0)) {
		b += "4"
	}
	return "gemm_" + a + b
}

// GemmFlops is the floating-point operation count of an m×n×k product (one multiply and one add per term).
func GemmFlops(m, n, k int) float64 { return 2 * float64(m) * float64(n) * float64(k) }

// GemmRef is the CPU reference of Gemm: it returns op(A)·op(B) (+ bias) (+ c when accumulating, c may be nil
// otherwise) (then ReLU) as a new m×n slice, summing in float64. bias may be nil.
func GemmRef(a, b, bias, c []float32, m, n, k int, o GemmOpts) []float32 {
	out := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				av := a[i*k+p]
				if o.TransA {
					av = a[p*m+i]
				}
				bv := b[p*n+j]
				if o.TransB {
					bv = b[j*k+p]
				}
				s += float64(av) * float64(bv)
			}
			v := float32(s)
			if o.Accumulate {
				v = c[i*n+j] + v
			}
			if bias != nil {
				v += bias[j]
			}
			if o.ReLU {
				v = max(v, 0)
			}
			out[i*n+j] = v
		}
	}
	return out
}

// GemmBLAS computes C = op(A)·op(B) with gonum's blas32.Gemm (the in-process CPU baseline of the benchmarks).
func GemmBLAS(a, b, c []float32, m, n, k int, transA, transB bool) {
	ta, tb := blas.NoTrans, blas.NoTrans
	ga := blas32.General{Rows: m, Cols: k, Stride: k, Data: a}
	if transA {
		ta, ga = blas.Trans, blas32.General{Rows: k, Cols: m, Stride: m, Data: a}
	}
	gb := blas32.General{Rows: k, Cols: n, Stride: n, Data: b}
	if transB {
		tb, gb = blas.Trans, blas32.General{Rows: n, Cols: k, Stride: k, Data: b}
	}
	blas32.Gemm(ta, tb, 1, ga, gb, 0, blas32.General{Rows: m, Cols: n, Stride: n, Data: c})
}
