package kernels

import (
	"fmt"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// gemmTol is the GEMM tolerance: fp32 fused multiply-adds in a fixed order against a float64 sum. With inputs in
// [−2, 2] each rounding error is about 2⁻²⁴ of a partial sum of size O(√K), so the accumulated error grows like
// K·2⁻²⁴·√K at worst; 2e-6·K is that bound with margin for K ≤ 1024, yet far below the O(1) error of a missing
// or misplaced term.
func gemmTol(k int) tol { return tol{Abs: 1e-6 + 2e-6*float64(k), Rel: 1e-5} }

type gemmCase struct{ m, n, k int }

// gemmCases covers every edge size on each of M, N and K, odd remainders of the vec4 and register tiles, a
// batch of 128 rows, and a product big enough for gemmTile's tall blocks with few rows.
func gemmCases() []gemmCase {
	var cs []gemmCase
	for _, s := range edgeSizes {
		cs = append(cs, gemmCase{s, s, s})
	}
	return append(cs, gemmCase{1, 257, 3}, gemmCase{257, 1, 17}, gemmCase{3, 31, 257}, gemmCase{17, 64, 1},
		gemmCase{31, 3, 64}, gemmCase{64, 257, 31}, gemmCase{257, 17, 4}, gemmCase{128, 10, 257},
		gemmCase{128, 256, 64}, gemmCase{33, 20, 12}, gemmCase{4, 8, 12}, gemmCase{12, 7, 5},
		gemmCase{8, 5, 16}, gemmCase{20, 17, 9}, gemmCase{36, 12, 8}, gemmCase{19, 301, 2950})
}

func TestGemm(t *testing.T) {
	l := openLib(t)
	for _, texel := range texelModes(l) {
		l.texel = texel
		testGemm(t, l)
	}
}

// texelModes lists the operand bindings a kernel test should cover on l's device: storage buffers, and texel
// views where the device reads them.
func texelModes(l *Lib) []bool {
	if info := l.dev.Info(); info.Texel.Float1 && info.Texel.Float4 {
		return []bool{false, true}
	}
	return []bool{false}
}

func testGemm(t *testing.T, l *Lib) {
	for i, tc := range gemmCases() {
		for tr := range 4 {
			o := GemmOpts{TransA: tr&1 != 0, TransB: tr&2 != 0}
			// Vary the epilogue over the table so every flag meets every variant.
			withBias := (i+tr)%2 == 0
			o.ReLU = (i+tr)%3 == 0
			o.Accumulate = (i+tr)%4 == 1
			name := fmt.Sprintf("texel=%v/%dx%dx%d/tA=%v,tB=%v,bias=%v,relu=%v,acc=%v", l.texel, tc.m, tc.n, tc.k,
				o.TransA, o.TransB, withBias, o.ReLU, o.Accumulate)
			t.Run(name, func(t *testing.T) {
				r := rng(uint64(1000*i + tr))
				a := uniform(r, tc.m*tc.k, -2, 2)
				b := uniform(r, tc.k*tc.n, -2, 2)
				c0 := uniform(r, tc.m*tc.n, -2, 2)
				var bias []float32
				if withBias {
					bias = uniform(r, tc.n, -2, 2)
					o.Bias = upload(t, l, bias).All()
				}
				ba, bb, bc := upload(t, l, a), upload(t, l, b), upload(t, l, c0)
				run(t, l, func(rec *vk.Recorder) error { return l.Gemm(rec, ba.All(), bb.All(), bc.All(), tc.m, tc.n, tc.k, o) })
				compare(t, "gemm", download(t, bc, tc.m*tc.n), GemmRef(a, b, bias, c0, tc.m, tc.n, tc.k, o), gemmTol(tc.k))
			})
		}
	}
}

// TestGemmTiles runs odd shapes through several explicit tiles, so the clamping and tails are exercised for
// tile sizes other than the device's default.
func TestGemmTiles(t *testing.T) {
	l := openLib(t)
	tiles := []GemmTile{{1, 1, 1}, {3, 1, 4}, {4, 4, 8}, {5, 3, 16}} // the default tiles run in TestGemm
	for i, tile := range tiles {
		for tr := range 4 {
			m, n, k := 37, 45, 23
			if tr%2 == 1 {
				n, k = 44, 20 // the vec4 variants
			}
			o := GemmOpts{TransA: tr&1 != 0, TransB: tr&2 != 0}
			r := rng(uint64(77 + 10*i + tr))
			a, b := uniform(r, m*k, -2, 2), uniform(r, k*n, -2, 2)
			ba, bb, bc := upload(t, l, a), upload(t, l, b), zeros(t, l, m*n)
			run(t, l, func(rec *vk.Recorder) error {
				return l.GemmTiled(rec, ba.All(), bb.All(), bc.All(), m, n, k, o, tile)
			})
			compare(t, fmt.Sprintf("gemm tile %+v tA=%v tB=%v", tile, o.TransA, o.TransB), download(t, bc, m*n),
				GemmRef(a, b, nil, nil, m, n, k, o), gemmTol(k))
		}
	}
}

func TestGemmDeterministic(t *testing.T) {
	l := openLib(t)
	const m, n, k = 67, 130, 301
	r := rng(5)
	a, b := uniform(r, m*k, -2, 2), uniform(r, k*n, -2, 2)
	ba, bb := upload(t, l, a), upload(t, l, b)
	for _, tb := range []bool{false, true} {
		var outs [2][]float32
		for i := range outs {
			bc := zeros(t, l, m*n)
			run(t, l, func(rec *vk.Recorder) error {
				return l.Gemm(rec, ba.All(), bb.All(), bc.All(), m, n, k, GemmOpts{TransB: tb})
			})
			outs[i] = download(t, bc, m*n)
		}
		sameBits(t, fmt.Sprintf("transB=%v: ", tb), outs[0], outs[1])
	}
}

func TestGemmBadInput(t *testing.T) {
	l := openLib(t)
	small, big := zeros(t, l, 4), zeros(t, l, 64)
	rec := newRecorder(t, l)
	B := big.All()
	expectErr(t, "zero M", l.Gemm(rec, B, B, B, 0, 4, 4, GemmOpts{}))
	expectErr(t, "zero N", l.Gemm(rec, B, B, B, 4, 0, 4, GemmOpts{}))
	expectErr(t, "zero K", l.Gemm(rec, B, B, B, 4, 4, 0, GemmOpts{}))
	expectErr(t, "negative K", l.Gemm(rec, B, B, B, 4, 4, -1, GemmOpts{}))
	expectErr(t, "A too small", l.Gemm(rec, small.All(), B, B, 4, 4, 4, GemmOpts{}))
	expectErr(t, "B too small", l.Gemm(rec, B, small.All(), B, 4, 4, 4, GemmOpts{}))
	expectErr(t, "C too small", l.Gemm(rec, B, B, small.All(), 4, 4, 4, GemmOpts{}))
	expectErr(t, "bias too small", l.Gemm(rec, B, B, B, 2, 8, 2, GemmOpts{Bias: small.All()}))
	expectErr(t, "nil A", l.Gemm(rec, vk.Range{}, B, B, 2, 2, 2, GemmOpts{}))
	expectErr(t, "huge", l.Gemm(rec, B, B, B, 1<<20, 1<<20, 1, GemmOpts{}))
	expectErr(t, "bad tile", l.GemmTiled(rec, B, B, B, 4, 4, 4, GemmOpts{}, GemmTile{}))
}

// TestGemmBatched runs several products in one dispatch — shared A, strided B and C, with padding between the
// products that must stay untouched — through both operand bindings and every transpose, each product against
// GemmRef. An odd B stride takes the scalar-B variants.
func TestGemmBatched(t *testing.T) {
	l := openLib(t)
	const batch, m, n, k = 3, 25, 36, 20
	for _, texel := range texelModes(l) {
		l.texel = texel
		for tr := range 4 {
			for _, padB := range []int{4, 3} {
				o := GemmOpts{TransA: tr&1 != 0, TransB: tr&2 != 0, Batch: batch, StrideB: k*n + padB, StrideC: m*n + 5}
				r := rng(uint64(500 + 10*tr + padB))
				a := uniform(r, m*k, -2, 2)
				b := uniform(r, (batch-1)*o.StrideB+k*n, -2, 2)
				c0 := uniform(r, (batch-1)*o.StrideC+m*n, -2, 2)
				ba, bb, bc := upload(t, l, a), upload(t, l, b), upload(t, l, c0)
				run(t, l, func(rec *vk.Recorder) error { return l.Gemm(rec, ba.All(), bb.All(), bc.All(), m, n, k, o) })
				got := download(t, bc, len(c0))
				want := append([]float32(nil), c0...) // the padding keeps its values
				for z := range batch {
					copy(want[z*o.StrideC:], GemmRef(a, b[z*o.StrideB:], nil, nil, m, n, k, o))
				}
				compare(t, fmt.Sprintf("batched gemm texel=%v tA=%v tB=%v stride B %d", texel, o.TransA, o.TransB,
					o.StrideB), got, want, gemmTol(k))
			}
		}
	}
	// Overlapping products, a negative B stride and a C too small for the last product are refused.
	ba, bb, bc := zeros(t, l, 4), zeros(t, l, 8), zeros(t, l, 8)
	rec := newRecorder(t, l)
	for _, bad := range []GemmOpts{{Batch: 2, StrideC: 3}, {Batch: 2, StrideB: -1, StrideC: 4}, {Batch: 3, StrideC: 4}} {
		if err := l.Gemm(rec, ba.All(), bb.All(), bc.All(), 2, 2, 2, bad); err == nil {
			t.Errorf("batched gemm %+v on 8-float B and C: no error", bad)
		}
	}
}

// TestGemmStore4 checks that Gemm gives the same bits with vec4 stores of C as with float ones (gemm.comp's STORE4,
// taken where N % 4 == 0), over every flag and operand layout, with a product big enough for gemmTile's tall blocks
// (50×100×3360 ≥ 2²⁴), and with a batch whose products lie a multiple of 4 floats apart (vec4 stores) or not (float
// stores either way).
func TestGemmStore4(t *testing.T) {
	l := openLib(t)
	defer func() { gemmStore4 = true }()
	cases := []struct {
		m, n, k, batch, strideC int
	}{{50, 100, 36, 1, 0}, {7, 12, 5, 1, 0}, {33, 68, 257, 1, 0}, {19, 301, 40, 1, 0}, {50, 100, 3360, 1, 0},
		{5, 8, 12, 3, 44}, {5, 8, 12, 3, 42}}
	for i, tc := range cases {
		for v := range 32 {
			o := GemmOpts{TransA: v&1 != 0, TransB: v&2 != 0, ReLU: v&4 != 0, Accumulate: v&8 != 0}
			if tc.batch > 1 {
				o.Batch, o.StrideB, o.StrideC = tc.batch, tc.k*tc.n, tc.strideC
			}
			r := rng(uint64(5000 + 32*i + v))
			clen := max(tc.batch-1, 0)*tc.strideC + tc.m*tc.n
			a, b := uniform(r, tc.m*tc.k, -2, 2), uniform(r, tc.batch*tc.k*tc.n, -2, 2)
			c0, bias := uniform(r, clen, -2, 2), uniform(r, tc.n, -2, 2)
			if v&16 != 0 {
				o.Bias = upload(t, l, bias).All()
			}
			ba, bb := upload(t, l, a), upload(t, l, b)
			var outs [2][]float32
			for k, st := range []bool{false, true} {
				gemmStore4 = st
				bc := upload(t, l, c0)
				run(t, l, func(rec *vk.Recorder) error { return l.Gemm(rec, ba.All(), bb.All(), bc.All(), tc.m, tc.n, tc.k, o) })
				outs[k] = download(t, bc, clen)
			}
			sameBits(t, fmt.Sprintf("%+v %+v: ", tc, o), outs[1], outs[0])
		}
	}
}
