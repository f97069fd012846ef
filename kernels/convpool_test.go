package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// convPoolCases are convolutions that ConvPoolOK accepts on CPU drivers. First layers through conv_direct's POOL:
// small's and madry's conv1, a row whose last chunk of 8 pixels is half full (12 wide: 6 pooled outputs, two code
// floats a row, the second half used), no padding, several input channels, a kernel wider than tall, many images.
// Then conv.comp's POOL: small's and madry's conv2 (7 pooled outputs a row: a chunk of 4 and one of 3), a stride
// of 2, a dilation, 5 pooled outputs a row (a last chunk of one window), more input channels than conv_direct takes.
var convPoolCases = []ConvShape{
	{B: 3, Cin: 1, H: 28, W: 28, Cout: 16, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{B: 2, Cin: 1, H: 28, W: 28, Cout: 32, KH: 5, KW: 5, PadH: 2, PadW: 2},
	{B: 2, Cin: 2, H: 8, W: 12, Cout: 3, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{B: 2, Cin: 1, H: 10, W: 12, Cout: 4, KH: 5, KW: 5},
	{B: 1, Cin: 3, H: 7, W: 8, Cout: 5, KH: 2, KW: 3, PadH: 0, PadW: 1, StrideH: 1},
	{B: 129, Cin: 1, H: 4, W: 4, Cout: 2, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{B: 3, Cin: 16, H: 14, W: 14, Cout: 32, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{B: 2, Cin: 32, H: 14, W: 14, Cout: 64, KH: 5, KW: 5, PadH: 2, PadW: 2},
	{B: 2, Cin: 3, H: 16, W: 15, Cout: 5, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
	{B: 2, Cin: 2, H: 12, W: 12, Cout: 3, KH: 3, KW: 3, PadH: 2, PadW: 2, DilH: 2, DilW: 2},
	{B: 3, Cin: 6, H: 10, W: 10, Cout: 7, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{B: 2, Cin: 5, H: 6, W: 6, Cout: 33, KH: 1, KW: 1},
}

// fusedPoolLib opens the library and skips the test where the fused pass does not run (GPUs, or texel views whose
// offsets need a coarser alignment than storage buffers'): there Conv2DReLUMaxPool is never called.
func fusedPoolLib(t *testing.T) *Lib {
	l := openLib(t)
	if !l.ConvPoolOK(convPoolCases[0]) {
		t.Skipf("%s: no fused conv+ReLU+pool pass on this device (ConvPoolOK false for small's conv1)", l.dev.Info().Name)
	}
	return l
}

// TestConv2DReLUMaxPool checks the fused pass against the two passes it replaces, on the device and bit for bit:
// y against ReLUMaxPool2x2Ref of Conv2D's output and the codes against PoolCodesRef of it; then the unpooling
// against ReLUMaxPool2x2Backward of the same output. Values on a coarse grid (integers times 1/4) in every other
// case make equal maxima, and NaN inputs and windows of non-positive maxima occur, so the tie, NaN and ReLU rules
// are exercised. It also checks y against the CPU reference (Conv2DReLUMaxPoolRef) within the convolution's tolerance.
func TestConv2DReLUMaxPool(t *testing.T) {
	l := fusedPoolLib(t)
	for i, s := range convPoolCases {
		for _, bias := range []bool{false, true} {
			t.Run(fmt.Sprintf("%+v/bias=%v", s, bias), func(t *testing.T) {
				if !l.ConvPoolOK(s) {
					t.Fatalf("ConvPoolOK(%+v) is false", s)
				}
				r := rng(uint64(700 + i))
				x, w, bv := uniform(r, s.InLen(), -2, 2), uniform(r, s.WLen(), -1, 1), uniform(r, s.Cout, -1, 1)
				if i%2 == 1 {
					for _, v := range [][]float32{x, w, bv} {
						for j := range v {
							v[j] = float32(math.Round(float64(4*v[j]))) / 4
						}
					}
				}
				if i == 2 {
					x[5], x[s.InLen()-3] = float32(math.NaN()), float32(math.NaN())
				}
				s := s.withDefaults()
				oh, ow, out := s.OH(), s.OW(), s.OutLen()
				nq, nc := out/4, l.PoolCodesLen(s)
				bx, bw, bb := upload(t, l, x), upload(t, l, w), upload(t, l, bv)
				o := ConvOpts{Scratch: zeros(t, l, l.ConvFwdScratch(s)).All()}
				if bias {
					o.Bias = bb.All()
				}
				// The two passes: Conv2D (conv_direct) and ReLUMaxPool2x2; the fused one.
				bconv, by2 := zeros(t, l, out), zeros(t, l, nq)
				by, bcodes := upload(t, l, uniform(r, nq, 5, 6)), upload(t, l, uniform(r, nc, 5, 6))
				run(t, l, func(rec *vk.Recorder) error {
					if err := l.Conv2D(rec, bx.All(), bw.All(), bconv.All(), s, o); err != nil {
						return err
					}
					if err := l.ReLUMaxPool2x2(rec, bconv.All(), by2.All(), s.B, s.Cout, oh, ow); err != nil {
						return err
					}
					return l.Conv2DReLUMaxPool(rec, bx.All(), bw.All(), by.All(), bcodes.All(), s, o)
				})
				conv := download(t, bconv, out)
				yRef, idx := ReLUMaxPool2x2Ref(conv, s.B, s.Cout, oh, ow)
				y, codes := download(t, by, nq), download(t, bcodes, nc)
				compareExactNaN(t, "fused y vs the two passes", y, download(t, by2, nq))
				if i != 2 {
					// (Not with NaNs: GLSL's max(NaN, 0) — ReLU of a NaN maximum — is the device's choice, 0 on
					// lavapipe in both paths, NaN in Go's reference.)
					compareExactNaN(t, "fused y vs pooling the device's convolution", y, yRef)
				}
				compare(t, "codes", codes, PoolCodesRef(conv, idx, s.B, s.Cout, oh, ow, !l.poolDirect(s)), exact)
				var bref []float32
				if bias {
					bref = bv
				}
				if i != 2 {
					yCPU, _ := Conv2DReLUMaxPoolRef(x, w, bref, s, !l.poolDirect(s))
					compare(t, "fused y vs the CPU reference", y, yCPU, gemmTol(s.Cin*s.KH*s.KW))
				}

				// The backward: unpooling from the codes against ReLUMaxPool2x2Backward reading the convolution's
				// output, and against the CPU reference; dx starts as garbage, every element must be written.
				dy := uniform(r, nq, -2, 2)
				bdy := upload(t, l, dy)
				bdx, bdx2 := upload(t, l, uniform(r, out, 5, 6)), zeros(t, l, out)
				run(t, l, func(rec *vk.Recorder) error {
					if err := l.Conv2DReLUMaxPoolBackward(rec, bcodes.All(), bdy.All(), bdx.All(), s); err != nil {
						return err
					}
					return l.ReLUMaxPool2x2Backward(rec, bconv.All(), bdy.All(), bdx2.All(), s.B, s.Cout, oh, ow)
				})
				dx := download(t, bdx, out)
				compare(t, "unpool vs relu+maxpool backward", dx, download(t, bdx2, out), exact)
				compare(t, "unpool vs the CPU reference", dx, ReLUMaxPool2x2BackwardRef(conv, idx, dy, s.B, s.Cout, oh, ow),
					exact)
			})
		}
	}
}

// TestConvPoolBadInput checks that the fused pass and the unpooling refuse shapes and ranges they cannot serve.
func TestConvPoolBadInput(t *testing.T) {
	l := fusedPoolLib(t)
	s := convPoolCases[2]
	for _, c := range []struct {
		what string
		s    ConvShape
	}{
		{"odd output height", ConvShape{B: 1, Cin: 1, H: 7, W: 8, Cout: 2, KH: 3, KW: 3, PadH: 1, PadW: 1}},
		{"odd output width", ConvShape{B: 1, Cin: 16, H: 8, W: 9, Cout: 2, KH: 3, KW: 3, PadH: 1, PadW: 1}},
		{"a 1×2 output", ConvShape{B: 1, Cin: 1, H: 3, W: 4, Cout: 2, KH: 3, KW: 3}},
	} {
		if l.ConvPoolOK(c.s) {
			t.Errorf("%s: ConvPoolOK(%+v) is true", c.what, c.s)
		}
		big := zeros(t, l, 4096)
		err := l.Conv2DReLUMaxPool(newRecorder(t, l), big.Range(0, 1024), big.Range(4096, 1024), big.Range(8192, 1024),
			big.Range(12288, 256), c.s, ConvOpts{Scratch: zeros(t, l, 1024).All()})
		expectErr(t, c.what, err)
	}
	// A batch whose input outgrows the device's texel buffers (SwiftShader's hold 65536 texels: small's conv2 at
	// batch 50) is refused here, so that models run the two passes, instead of failing when recorded.
	maxTexels := int(min(l.dev.Info().Texel.MaxElements, 1<<40))
	big := ConvShape{B: maxTexels/(16*14*14) + 1, Cin: 16, H: 14, W: 14, Cout: 32, KH: 3, KW: 3, PadH: 1, PadW: 1}
	if l.ConvPoolOK(big) {
		t.Errorf("ConvPoolOK(%+v) is true: its %d input floats exceed the device's %d texels", big, big.InLen(), maxTexels)
	}
	s = s.withDefaults()
	nq, nc := s.OutLen()/4, l.PoolCodesLen(s)
	bx, bw, by, bc := zeros(t, l, s.InLen()), zeros(t, l, s.WLen()), zeros(t, l, nq), zeros(t, l, nc)
	scratch := zeros(t, l, l.ConvFwdScratch(s))
	rec := newRecorder(t, l)
	expectErr(t, "no scratch", l.Conv2DReLUMaxPool(rec, bx.All(), bw.All(), by.All(), bc.All(), s, ConvOpts{}))
	expectErr(t, "ReLU flag", l.Conv2DReLUMaxPool(rec, bx.All(), bw.All(), by.All(), bc.All(), s,
		ConvOpts{Scratch: scratch.All(), ReLU: true}))
	expectErr(t, "short codes", l.Conv2DReLUMaxPool(rec, bx.All(), bw.All(), by.All(), bc.Range(0, uint64(4*(nc-1))), s,
		ConvOpts{Scratch: scratch.All()}))
	expectErr(t, "codes aliasing y", l.Conv2DReLUMaxPool(rec, bx.All(), bw.All(), by.All(), by.All(), s,
		ConvOpts{Scratch: scratch.All()}))
	bdx := zeros(t, l, s.OutLen())
	odd := s
	odd.H--
	expectErr(t, "backward, odd output height", l.Conv2DReLUMaxPoolBackward(rec, bc.All(), by.All(), bdx.All(), odd))
	expectErr(t, "backward, short codes", l.Conv2DReLUMaxPoolBackward(rec, bc.Range(0, uint64(4*(nc-1))), by.All(),
		bdx.All(), s))
	expectErr(t, "backward, short dconv", l.Conv2DReLUMaxPoolBackward(rec, bc.All(), by.All(), bdx.Range(0, 16), s))
	expectErr(t, "backward, dconv aliasing dy", l.Conv2DReLUMaxPoolBackward(rec, bc.All(), bdx.All(), bdx.All(), s))
}
