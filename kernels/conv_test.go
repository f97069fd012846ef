package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// convCases cover 1×1 everything, the edge sizes on channels and image sides, strides, dilations, asymmetric
// padding and kernels, a batch of 128, and a small copy of the madry layers.
var convCases = []ConvShape{
	{B: 1, Cin: 1, H: 1, W: 1, Cout: 1, KH: 1, KW: 1},
	{B: 3, Cin: 3, H: 17, W: 17, Cout: 5, KH: 5, KW: 5, PadH: 2, PadW: 2},
	{B: 1, Cin: 2, H: 9, W: 13, Cout: 3, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadH: 1, DilW: 2},
	{B: 2, Cin: 3, H: 31, W: 31, Cout: 17, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
	{B: 1, Cin: 1, H: 1, W: 257, Cout: 3, KH: 1, KW: 3, PadW: 1},
	{B: 128, Cin: 1, H: 5, W: 5, Cout: 4, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{B: 2, Cin: 1, H: 28, W: 28, Cout: 32, KH: 5, KW: 5, PadH: 2, PadW: 2},
	{B: 2, Cin: 32, H: 7, W: 7, Cout: 64, KH: 5, KW: 5, PadH: 2, PadW: 2},
	{B: 1, Cin: 64, H: 4, W: 3, Cout: 1, KH: 3, KW: 3, StrideH: 3, StrideW: 2, PadH: 2, PadW: 1, DilH: 2},
	// Enough weights for the one-pass weight-gradient GEMM, with OH·OW % 4 == 0 (its vec4 dy variant on CPU drivers).
	{B: 2, Cin: 16, H: 8, W: 8, Cout: 64, KH: 3, KW: 3, PadH: 1, PadW: 1},
	// Few weight blocks, OH·OW % 4 == 0, more than four input channels: the weight gradient split over quads of
	// pixels (conv_filter_gemm_q4) on CPU drivers — parts with one quad or none, and parts straddling images.
	{B: 3, Cin: 8, H: 6, W: 6, Cout: 12, KH: 3, KW: 3, PadH: 1, PadW: 1},
	{B: 5, Cin: 6, H: 10, W: 10, Cout: 7, KH: 3, KW: 3, PadH: 1, PadW: 1},
	// First-layer shapes with rows a multiple of 4 wide in both passes (conv_direct's VEC4 variants on CPU drivers),
	// each window starting at another offset within its first vec4 (0, 1, 3; the madry copy above: 2).
	{B: 1, Cin: 1, H: 6, W: 8, Cout: 2, KH: 5, KW: 5},
	{B: 2, Cin: 2, H: 7, W: 12, Cout: 6, KH: 2, KW: 3, PadW: 3},
	{B: 3, Cin: 4, H: 5, W: 16, Cout: 3, KH: 3, KW: 7, PadH: 2, PadW: 1},
	// small's conv2 at a batch whose input gradient (16 rows) is big enough for gemmTile's tall block.
	{B: 20, Cin: 16, H: 14, W: 14, Cout: 32, KH: 3, KW: 3, PadH: 1, PadW: 1},
}

func TestConv2D(t *testing.T) {
	l := openLib(t)
	for _, texel := range texelModes(l) {
		l.texel = texel
		testConv2D(t, l)
	}
}

func testConv2D(t *testing.T, l *Lib) {
	for i, s := range convCases {
		t.Run(fmt.Sprintf("texel=%v/%+v", l.texel, s), func(t *testing.T) {
			r := rng(uint64(300 + i))
			x, w := uniform(r, s.InLen(), -2, 2), uniform(r, s.WLen(), -2, 2)
			dy := uniform(r, s.OutLen(), -2, 2)
			bias := uniform(r, s.Cout, -2, 2)
			bx, bw, bdy, bb := upload(t, l, x), upload(t, l, w), upload(t, l, dy), upload(t, l, bias)
			by, bdx, bdw := zeros(t, l, s.OutLen()), zeros(t, l, s.InLen()), zeros(t, l, s.WLen())
			relu := i%2 == 1
			run(t, l, func(rec *vk.Recorder) error {
				if err := l.Conv2D(rec, bx.All(), bw.All(), by.All(), s, ConvOpts{Bias: bb.All(), ReLU: relu}); err != nil {
					return err
				}
				if err := l.Conv2DBackwardData(rec, bdy.All(), bw.All(), bdx.All(), s, ConvOpts{}); err != nil {
					return err
				}
				return l.Conv2DBackwardFilter(rec, bx.All(), bdy.All(), bdw.All(), s, ConvOpts{})
			})
			kk := s.Cin * s.KH * s.KW
			compare(t, "forward", download(t, by, s.OutLen()), Conv2DRef(x, w, bias, s, relu), gemmTol(kk))
			dxRef, dwRef := Conv2DBackwardDataRef(dy, w, s), Conv2DBackwardFilterRef(x, dy, s)
			dxTol, dwTol := gemmTol(s.Cout*s.KH*s.KW), gemmTol(s.B*s.OH()*s.OW())
			compare(t, "backward-data", download(t, bdx, s.InLen()), dxRef, dxTol)
			compare(t, "backward-filter", download(t, bdw, s.WLen()), dwRef, dwTol)
			// The passes with a scratch, where the device takes them (packed weights forward and backward-data,
			// the two-pass input gradient, the weight gradient split over images): with bias and ReLU, then
			// accumulating onto random values.
			if n := l.ConvFwdScratch(s); n > 0 {
				scratch := zeros(t, l, n)
				run(t, l, func(rec *vk.Recorder) error {
					return l.Conv2D(rec, bx.All(), bw.All(), by.All(), s, ConvOpts{Bias: bb.All(), ReLU: relu,
						Scratch: scratch.All()})
				})
				compare(t, "forward (scratch)", download(t, by, s.OutLen()), Conv2DRef(x, w, bias, s, relu), gemmTol(kk))
			}
			testScratchPass(t, l, r, "forward (scratch)", l.ConvFwdScratch(s), Conv2DRef(x, w, nil, s, false),
				gemmTol(kk), func(rec *vk.Recorder, out vk.Range, o ConvOpts) error {
					return l.Conv2D(rec, bx.All(), bw.All(), out, s, o)
				})
			testScratchPass(t, l, r, "backward-data (scratch)", l.ConvDataScratch(s), dxRef, dxTol,
				func(rec *vk.Recorder, out vk.Range, o ConvOpts) error {
					return l.Conv2DBackwardData(rec, bdy.All(), bw.All(), out, s, o)
				})
			testScratchPass(t, l, r, "backward-filter (split over images)", l.ConvFilterScratch(s), dwRef, dwTol,
				func(rec *vk.Recorder, out vk.Range, o ConvOpts) error {
					return l.Conv2DBackwardFilter(rec, bx.All(), bdy.All(), out, s, o)
				})
		})
	}
}

// testScratchPass runs a backward pass through its scratch path (a scratch of n floats; nothing when n is 0),
// accumulating onto random values, and compares with ref plus those values.
func testScratchPass(t *testing.T, l *Lib, r *rand.Rand, what string, n int, ref []float32, tl tol,
	pass func(rec *vk.Recorder, out vk.Range, o ConvOpts) error) {
	t.Helper()
	if n == 0 {
		return
	}
	out0 := uniform(r, len(ref), -2, 2)
	bout, scratch := upload(t, l, out0), zeros(t, l, n)
	run(t, l, func(rec *vk.Recorder) error {
		return pass(rec, bout.All(), ConvOpts{Scratch: scratch.All(), Accumulate: true})
	})
	want := append([]float32(nil), ref...)
	for i := range want {
		want[i] += out0[i]
	}
	compare(t, what, download(t, bout, len(ref)), want, tl)
}

// TestConv2DAccumulate checks that every pass adds to its output when asked, reading storage buffers and texels.
func TestConv2DAccumulate(t *testing.T) {
	l := openLib(t)
	for _, texel := range texelModes(l) {
		l.texel = texel
		t.Run(fmt.Sprintf("texel=%v", texel), func(t *testing.T) { testConv2DAccumulate(t, l, convCases[2]) })
	}
}

func testConv2DAccumulate(t *testing.T, l *Lib, s ConvShape) {
	r := rng(41)
	x, w, dy := uniform(r, s.InLen(), -2, 2), uniform(r, s.WLen(), -2, 2), uniform(r, s.OutLen(), -2, 2)
	y0, dx0, dw0 := uniform(r, s.OutLen(), -2, 2), uniform(r, s.InLen(), -2, 2), uniform(r, s.WLen(), -2, 2)
	bx, bw, bdy := upload(t, l, x), upload(t, l, w), upload(t, l, dy)
	by, bdx, bdw := upload(t, l, y0), upload(t, l, dx0), upload(t, l, dw0)
	acc := ConvOpts{Accumulate: true}
	run(t, l, func(rec *vk.Recorder) error {
		if err := l.Conv2D(rec, bx.All(), bw.All(), by.All(), s, acc); err != nil {
			return err
		}
		if err := l.Conv2DBackwardData(rec, bdy.All(), bw.All(), bdx.All(), s, acc); err != nil {
			return err
		}
		return l.Conv2DBackwardFilter(rec, bx.All(), bdy.All(), bdw.All(), s, acc)
	})
	add := func(a, b []float32) []float32 {
		for i := range a {
			a[i] = b[i] + a[i]
		}
		return a
	}
	compare(t, "forward", download(t, by, s.OutLen()), add(Conv2DRef(x, w, nil, s, false), y0), gemmTol(20))
	compare(t, "backward-data", download(t, bdx, s.InLen()), add(Conv2DBackwardDataRef(dy, w, s), dx0), gemmTol(20))
	compare(t, "backward-filter", download(t, bdw, s.WLen()), add(Conv2DBackwardFilterRef(x, dy, s), dw0), gemmTol(200))
}

// convLoss64 is loss = Σ r·conv(x, w) in float64, the function the finite-difference checks differentiate.
func convLoss64(x, w, rw []float64, s ConvShape) float64 {
	y := make([]float64, s.OutLen())
	convIndex(s, func(yi, wi, xi int) { y[yi] += w[wi] * x[xi] })
	l := 0.0
	for i, v := range y {
		l += rw[i] * v
	}
	return l
}

// TestConv2DGradient checks both backward kernels against central differences of the float64 forward
// reference (loss = Σ r·y with random r, so dy = r), with unit and non-unit strides, and the input gradient again
// with the scratch the device's path takes (on CPU drivers conv_direct for the unit-stride shapes, two passes for the
// strided one). The loss is linear in x and in w, so central differences are exact up to float64 rounding; the
// tolerance covers the kernels' fp32 sums.
func TestConv2DGradient(t *testing.T) {
	l := openLib(t)
	for i, s := range []ConvShape{
		{B: 2, Cin: 2, H: 5, W: 6, Cout: 3, KH: 3, KW: 3, PadH: 1, PadW: 1},
		{B: 2, Cin: 2, H: 7, W: 6, Cout: 3, KH: 3, KW: 2, StrideH: 2, StrideW: 2, PadH: 1, DilH: 2},
		{B: 2, Cin: 1, H: 6, W: 8, Cout: 3, KH: 3, KW: 5, PadH: 1, PadW: 2},
		{B: 3, Cin: 6, H: 6, W: 6, Cout: 5, KH: 3, KW: 3, PadH: 1, PadW: 1},
	} {
		r := rng(uint64(500 + i))
		x, w, rw := uniform(r, s.InLen(), -2, 2), uniform(r, s.WLen(), -2, 2), uniform(r, s.OutLen(), -1, 1)
		bx, bw, brw := upload(t, l, x), upload(t, l, w), upload(t, l, rw)
		bdx, bdw := zeros(t, l, s.InLen()), zeros(t, l, s.WLen())
		run(t, l, func(rec *vk.Recorder) error {
			if err := l.Conv2DBackwardData(rec, brw.All(), bw.All(), bdx.All(), s, ConvOpts{}); err != nil {
				return err
			}
			return l.Conv2DBackwardFilter(rec, bx.All(), brw.All(), bdw.All(), s, ConvOpts{})
		})
		x64, w64, r64 := to64s(x), to64s(w), to64s(rw)
		ft := tol{Abs: 1e-4, Rel: 1e-3}
		numDx := numericGrad(func(v []float64) float64 { return convLoss64(v, w64, r64, s) }, x64, 1e-3)
		numDw := numericGrad(func(v []float64) float64 { return convLoss64(x64, v, r64, s) }, w64, 1e-3)
		gradCheck(t, fmt.Sprintf("conv dx %+v", s), download(t, bdx, s.InLen()), numDx, ft)
		gradCheck(t, fmt.Sprintf("conv dw %+v", s), download(t, bdw, s.WLen()), numDw, ft)
		// Each backward pass again through its scratch where the device's path takes one: the input gradient's
		// packed weights or two passes, the weight gradient's parts (on CPU drivers conv_direct_filter's for the
		// first-layer shapes here, conv_filter_gemm_q4's for the last).
		for _, c := range []struct {
			what    string
			n, size int
			num     []float64
			pass    func(rec *vk.Recorder, out vk.Range, o ConvOpts) error
		}{
			{"dx", l.ConvDataScratch(s), s.InLen(), numDx, func(rec *vk.Recorder, out vk.Range, o ConvOpts) error {
				return l.Conv2DBackwardData(rec, brw.All(), bw.All(), out, s, o)
			}},
			{"dw", l.ConvFilterScratch(s), s.WLen(), numDw, func(rec *vk.Recorder, out vk.Range, o ConvOpts) error {
				return l.Conv2DBackwardFilter(rec, bx.All(), brw.All(), out, s, o)
			}},
		} {
			if c.n == 0 {
				continue
			}
			scratch, out := zeros(t, l, c.n), zeros(t, l, c.size)
			run(t, l, func(rec *vk.Recorder) error { return c.pass(rec, out.All(), ConvOpts{Scratch: scratch.All()}) })
			gradCheck(t, fmt.Sprintf("conv %s (scratch) %+v", c.what, s), download(t, out, c.size), c.num, ft)
		}
	}
}

func TestConv2DDeterministic(t *testing.T) {
	l := openLib(t)
	s := ConvShape{B: 4, Cin: 3, H: 11, W: 11, Cout: 6, KH: 5, KW: 5, PadH: 2, PadW: 2}
	r := rng(8)
	x, w, dy := uniform(r, s.InLen(), -2, 2), uniform(r, s.WLen(), -2, 2), uniform(r, s.OutLen(), -2, 2)
	bx, bw, bdy := upload(t, l, x), upload(t, l, w), upload(t, l, dy)
	var outs [2][]float32
	for i := range outs {
		by, bdx, bdw, bdb := zeros(t, l, s.OutLen()), zeros(t, l, s.InLen()), zeros(t, l, s.WLen()), zeros(t, l, s.Cout)
		// With the scratches the device's paths take (conv_direct and conv_direct_filter on CPU drivers: three input
		// channels).
		fs, ds, ws := ConvOpts{}, ConvOpts{}, ConvOpts{}
		if n := l.ConvFwdScratch(s); n > 0 {
			fs.Scratch = zeros(t, l, n).All()
		}
		if n := l.ConvDataScratch(s); n > 0 {
			ds.Scratch = zeros(t, l, n).All()
		}
		if n := l.ConvFilterScratch(s); n > 0 {
			ws.Scratch = zeros(t, l, n).All()
		}
		run(t, l, func(rec *vk.Recorder) error {
			if err := l.Conv2D(rec, bx.All(), bw.All(), by.All(), s, fs); err != nil {
				return err
			}
			if err := l.Conv2DBackwardData(rec, bdy.All(), bw.All(), bdx.All(), s, ds); err != nil {
				return err
			}
			if err := l.Conv2DBackwardFilter(rec, bx.All(), bdy.All(), bdw.All(), s, ws); err != nil {
				return err
			}
			return l.BiasGrad(rec, bdy.All(), bdb.All(), s.B, s.Cout, s.OH()*s.OW(), false)
		})
		outs[i] = append(append(append(download(t, by, s.OutLen()), download(t, bdx, s.InLen())...),
			download(t, bdw, s.WLen())...), download(t, bdb, s.Cout)...)
	}
	sameBits(t, "", outs[0], outs[1])
}

func TestConv2DBadInput(t *testing.T) {
	l := openLib(t)
	small, big := zeros(t, l, 4), zeros(t, l, 4096)
	rec := newRecorder(t, l)
	B := big.All()
	ok := ConvShape{B: 2, Cin: 2, H: 5, W: 5, Cout: 3, KH: 3, KW: 3, PadH: 1, PadW: 1}
	for _, c := range []struct {
		what string
		s    ConvShape
	}{
		{"zero batch", ConvShape{Cin: 1, H: 3, W: 3, Cout: 1, KH: 1, KW: 1}},
		{"zero Cout", ConvShape{B: 1, Cin: 1, H: 3, W: 3, KH: 1, KW: 1}},
		{"negative H", ConvShape{B: 1, Cin: 1, H: -3, W: 3, Cout: 1, KH: 1, KW: 1}},
		{"kernel larger than input", ConvShape{B: 1, Cin: 1, H: 3, W: 3, Cout: 1, KH: 5, KW: 5}},
		{"negative padding", ConvShape{B: 1, Cin: 1, H: 3, W: 3, Cout: 1, KH: 1, KW: 1, PadH: -1}},
		{"negative stride", ConvShape{B: 1, Cin: 1, H: 3, W: 3, Cout: 1, KH: 1, KW: 1, StrideW: -2}},
	} {
		expectErr(t, c.what+" (forward)", l.Conv2D(rec, B, B, B, c.s, ConvOpts{}))
		expectErr(t, c.what+" (data)", l.Conv2DBackwardData(rec, B, B, B, c.s, ConvOpts{}))
		expectErr(t, c.what+" (filter)", l.Conv2DBackwardFilter(rec, B, B, B, c.s, ConvOpts{}))
	}
	expectErr(t, "x too small", l.Conv2D(rec, small.All(), B, B, ok, ConvOpts{}))
	expectErr(t, "w too small", l.Conv2D(rec, B, small.All(), B, ok, ConvOpts{}))
	expectErr(t, "y too small", l.Conv2D(rec, B, B, small.All(), ok, ConvOpts{}))
	expectErr(t, "bias too small", l.Conv2D(rec, B, B, B, ok, ConvOpts{Bias: vk.Range{Buf: small, Size: 8}}))
	expectErr(t, "dy too small", l.Conv2DBackwardData(rec, small.All(), B, B, ok, ConvOpts{}))
	expectErr(t, "dx too small", l.Conv2DBackwardData(rec, B, B, small.All(), ok, ConvOpts{}))
	expectErr(t, "dw too small", l.Conv2DBackwardFilter(rec, B, B, small.All(), ok, ConvOpts{}))
	expectErr(t, "relu on backward", l.Conv2DBackwardData(rec, B, B, B, ok, ConvOpts{ReLU: true}))
	expectErr(t, "nil x", l.Conv2DBackwardFilter(rec, vk.Range{}, B, B, ok, ConvOpts{}))
	expectErr(t, "bias: zero channels", l.BiasGrad(rec, B, B, 1, 0, 1, false))
	expectErr(t, "bias: dy too small", l.BiasGrad(rec, small.All(), B, 2, 3, 4, false))
	expectErr(t, "bias: db too small", l.BiasGrad(rec, B, small.All(), 1, 8, 1, false))
}

// BiasGrad sums up to batch·inner terms in fp32 in a fixed order; the tolerance grows with the count as gemmTol.
func TestBiasGrad(t *testing.T) {
	l := openLib(t)
	// inner = 1 takes bias_grad_cols: one invocation per channel ({12, 4608, 1}: the parts of a split weight
	// gradient, several workgroups); inner % 4 == 0 bias_grad4 ({50, 16, 784}: small's conv1 at batch 50).
	for i, c := range [][3]int{{1, 1, 1}, {3, 17, 31}, {128, 64, 49}, {257, 3, 1}, {2, 31, 257}, {128, 10, 1},
		{12, 4608, 1}, {3, 5, 12}, {50, 16, 784}} {
		b, ch, in := c[0], c[1], c[2]
		r := rng(uint64(700 + i))
		dy, db0 := uniform(r, b*ch*in, -2, 2), uniform(r, ch, -2, 2)
		bdy, bdb, bacc := upload(t, l, dy), zeros(t, l, ch), upload(t, l, db0)
		run(t, l, func(rec *vk.Recorder) error {
			if err := l.BiasGrad(rec, bdy.All(), bdb.All(), b, ch, in, false); err != nil {
				return err
			}
			return l.BiasGrad(rec, bdy.All(), bacc.All(), b, ch, in, true)
		})
		want := BiasGradRef(dy, b, ch, in)
		compare(t, fmt.Sprintf("bias grad %v", c), download(t, bdb, ch), want, gemmTol(b*in))
		for j := range want {
			want[j] = db0[j] + want[j]
		}
		compare(t, fmt.Sprintf("bias grad accumulate %v", c), download(t, bacc, ch), want, gemmTol(b*in))
	}
}

// TestBiasGradTexels checks that bias_grad4's texel and storage-buffer reads give the same bits: the same terms
// summed in the same order (a swapped lane or component in either read fails it).
func TestBiasGradTexels(t *testing.T) {
	l := openLib(t)
	if !l.texelFits(vk.Texel4, upload(t, l, make([]float32, 16)).All()) {
		t.Skip("no vec4 texel reads on this device")
	}
	defer func() { biasGradTexels = true }()
	for i, c := range [][3]int{{50, 16, 784}, {3, 5, 12}, {7, 3, 4}} {
		b, ch, in := c[0], c[1], c[2]
		dy := uniform(rng(uint64(750+i)), b*ch*in, -2, 2)
		bdy := upload(t, l, dy)
		var got [2][]float32
		for k, tex := range []bool{false, true} {
			biasGradTexels = tex
			db := zeros(t, l, ch)
			run(t, l, func(rec *vk.Recorder) error { return l.BiasGrad(rec, bdy.All(), db.All(), b, ch, in, false) })
			got[k] = download(t, db, ch)
		}
		sameBits(t, fmt.Sprintf("bias grad %v, storage buffer against texels: ", c), got[0], got[1])
	}
}

// TestBiasGradGradient checks BiasGrad against central differences of loss = Σ r·(y + bias[c]), for a
// convolution's bias (inner 5; inner 8: bias_grad4) and a dense layer's (inner 1, bias_grad_cols).
func TestBiasGradGradient(t *testing.T) {
	l := openLib(t)
	for _, c := range [][3]int{{3, 4, 5}, {3, 70, 1}, {2, 3, 8}} {
		b, ch, in := c[0], c[1], c[2]
		r := rng(9)
		rw, bias := uniform(r, b*ch*in, -1, 1), uniform(r, ch, -2, 2)
		brw, bdb := upload(t, l, rw), zeros(t, l, ch)
		run(t, l, func(rec *vk.Recorder) error { return l.BiasGrad(rec, brw.All(), bdb.All(), b, ch, in, false) })
		loss := func(bs []float64) float64 {
			s := 0.0
			for i, v := range rw {
				s += float64(v) * bs[(i/in)%ch]
			}
			return s
		}
		gradCheck(t, fmt.Sprintf("bias grad %v", c), download(t, bdb, ch), numericGrad(loss, to64s(bias), 1e-3),
			tol{Abs: 1e-5, Rel: 1e-4})
	}
}

// TestConv2DFilterGEMMGradient checks the large-layer weight-gradient path (conv_filter_gemm, used when a layer
// has enough output blocks) against central differences of the float64 forward reference, on a sample of weight
// coordinates (the loss is linear in w, so differences are exact up to float64 rounding).
func TestConv2DFilterGEMMGradient(t *testing.T) {
	l := openLib(t)
	s := ConvShape{B: 2, Cin: 16, H: 12, W: 12, Cout: 64, KH: 3, KW: 3, PadH: 1, PadW: 1}
	rows, cols := s.Cout, s.Cin*s.KH*s.KW
	if !l.filterAsGEMM(rows, cols, l.convTile(rows, cols, s.B*s.OH()*s.OW())) {
		t.Fatalf("shape %+v no longer takes the GEMM weight-gradient path on %s: pick a larger one", s, l.dev.Name())
	}
	r := rng(77)
	x, w, rw := uniform(r, s.InLen(), -2, 2), uniform(r, s.WLen(), -2, 2), uniform(r, s.OutLen(), -1, 1)
	bx, brw, bdw := upload(t, l, x), upload(t, l, rw), zeros(t, l, s.WLen())
	run(t, l, func(rec *vk.Recorder) error {
		return l.Conv2DBackwardFilter(rec, bx.All(), brw.All(), bdw.All(), s, ConvOpts{})
	})
	dw := download(t, bdw, s.WLen())
	x64, w64, r64 := to64s(x), to64s(w), to64s(rw)
	for n := 0; n < 24; n++ {
		i := r.IntN(len(w64))
		const h = 1e-3
		old := w64[i]
		w64[i] = old + h
		fp := convLoss64(x64, w64, r64, s)
		w64[i] = old - h
		fm := convLoss64(x64, w64, r64, s)
		w64[i] = old
		want := (fp - fm) / (2 * h)
		if d := float64(dw[i]) - want; d > 1e-3+1e-3*math.Abs(want) || -d > 1e-3+1e-3*math.Abs(want) {
			t.Fatalf("dw[%d] = %v, finite differences give %v", i, dw[i], want)
		}
	}
}

// TestConv2DFilterScratchTooSmall: a weight gradient given a scratch smaller than its split needs (sized for another
// path, as when a driver's texel limits turn the planned one down) runs unsplit and is still right — SwiftShader
// (maxTexelBufferElements 65536) once got a first layer's scratch sized for conv_direct_filter's parts and failed.
func TestConv2DFilterScratchTooSmall(t *testing.T) {
	l := openLib(t)
	for i, s := range []ConvShape{
		{B: 2, Cin: 1, H: 28, W: 28, Cout: 32, KH: 5, KW: 5, PadH: 2, PadW: 2},
		{B: 3, Cin: 8, H: 6, W: 6, Cout: 12, KH: 3, KW: 3, PadH: 1, PadW: 1},
	} {
		n := l.ConvFilterScratch(s)
		if n == 0 {
			continue // this device does not split s
		}
		r := rng(uint64(900 + i))
		x, dy := uniform(r, s.InLen(), -2, 2), uniform(r, s.OutLen(), -2, 2)
		bx, bdy, bdw := upload(t, l, x), upload(t, l, dy), zeros(t, l, s.WLen())
		scratch := zeros(t, l, n/2)
		run(t, l, func(rec *vk.Recorder) error {
			return l.Conv2DBackwardFilter(rec, bx.All(), bdy.All(), bdw.All(), s, ConvOpts{Scratch: scratch.All()})
		})
		compare(t, fmt.Sprintf("backward-filter, half the scratch %+v", s), download(t, bdw, s.WLen()),
			Conv2DBackwardFilterRef(x, dy, s), gemmTol(s.B*s.OH()*s.OW()))
	}
}

// TestConvStore4 checks that the packed implicit GEMMs give the same bits with vec4 stores as with float ones
// (conv.comp's STORE4, see convStore4), forward (bias and ReLU, then accumulating) and input gradient
// (accumulating), on every shape of convCases plus a 7×7 kernel. Where the device can bind outputs one float into
// their buffers (not lavapipe's 16-byte nor SwiftShader's 256-byte storage offsets) it runs those too: convStore4
// must then fall back to float stores, which this sees only as the same bits (a vec4 store there would be
// misaligned, undefined rather than surely wrong).
func TestConvStore4(t *testing.T) {
	l := openLib(t)
	defer func() { convVec4Stores = true }()
	shapes := append(append([]ConvShape(nil), convCases...),
		ConvShape{B: 2, Cin: 8, H: 9, W: 12, Cout: 5, KH: 7, KW: 7, PadH: 3, PadW: 3})
	for i, s := range shapes {
		fs, ds := l.ConvFwdScratch(s), l.ConvDataScratch(s)
		if fs == 0 && ds == 0 {
			continue // no packed pass on this device
		}
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			r := rng(uint64(900 + i))
			x, w, dy := uniform(r, s.InLen(), -2, 2), uniform(r, s.WLen(), -2, 2), uniform(r, s.OutLen(), -2, 2)
			bias, y0, dx0 := uniform(r, s.Cout, -2, 2), uniform(r, s.OutLen()+4, -2, 2), uniform(r, s.InLen()+4, -2, 2)
			bx, bw, bdy, bb := upload(t, l, x), upload(t, l, w), upload(t, l, dy), upload(t, l, bias)
			var outs [2][]float32
			for k := range outs {
				convVec4Stores = k == 1
				// The outputs at the start of their buffers, then one float in (where the device can bind a range
				// there: not on lavapipe or SwiftShader, whose storage-buffer offsets are multiples of 16 and 256).
				for _, off := range []uint64{0, 4} {
					if off%l.dev.Info().Limits.MinStorageBufferAlignment != 0 {
						continue
					}
					by, bdx := upload(t, l, y0), upload(t, l, dx0)
					y := vk.Range{Buf: by, Off: off, Size: 4 * uint64(s.OutLen())}
					dx := vk.Range{Buf: bdx, Off: off, Size: 4 * uint64(s.InLen())}
					run(t, l, func(rec *vk.Recorder) error {
						if fs > 0 {
							sc := zeros(t, l, fs).All()
							if err := l.Conv2D(rec, bx.All(), bw.All(), y, s, ConvOpts{Bias: bb.All(), ReLU: i%2 == 0, Scratch: sc}); err != nil {
								return err
							}
							if err := l.Conv2D(rec, bx.All(), bw.All(), y, s, ConvOpts{Accumulate: true, Scratch: sc}); err != nil {
								return err
							}
						}
						if ds > 0 {
							return l.Conv2DBackwardData(rec, bdy.All(), bw.All(), dx, s, ConvOpts{Accumulate: true, Scratch: zeros(t, l, ds).All()})
						}
						return nil
					})
					outs[k] = append(append(outs[k], download(t, by, len(y0))...), download(t, bdx, len(dx0))...)
				}
			}
			sameBits(t, "vec4 stores against float ones: ", outs[1], outs[0])
		})
	}
}
