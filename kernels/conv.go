package kernels

import (
	"fmt"
	"strings"

	"github.com/sqnet/sqnet/vk"
)

// ConvShape describes a 2-D convolution of an NCHW input [B, Cin, H, W] with a weight [Cout, Cin, KH, KW]
// (PyTorch's layout), giving [B, Cout, OH, OW].
type ConvShape struct {
	B, Cin, H, W int
	Cout, KH, KW int
	// StrideH, StrideW default to 1 when zero; DilH, DilW likewise. PadH, PadW are zero padding on each side.
	StrideH, StrideW int
	PadH, PadW       int
	DilH, DilW       int
}

// withDefaults fills zero strides and dilations with 1.
func (s ConvShape) withDefaults() ConvShape {
	for _, p := range []*int{&s.StrideH, &s.StrideW, &s.DilH, &s.DilW} {
		if *p == 0 {
			*p = 1
		}
	}
	return s
}

// OH returns the output height.
func (s ConvShape) OH() int {
	s = s.withDefaults()
	return (s.H+2*s.PadH-s.DilH*(s.KH-1)-1)/s.StrideH + 1
}

// OW returns the output width.
func (s ConvShape) OW() int {
	s = s.withDefaults()
	return (s.W+2*s.PadW-s.DilW*(s.KW-1)-1)/s.StrideW + 1
}

// InLen, WLen and OutLen are the element counts of the input, weight and output.
func (s ConvShape) InLen() int { return s.B * s.Cin * s.H * s.W }

// WLen is the element count of the weight.
func (s ConvShape) WLen() int { return s.Cout * s.Cin * s.KH * s.KW }

// OutLen is the element count of the output.
func (s ConvShape) OutLen() int { return s.B * s.Cout * s.OH() * s.OW() }

// Flops is the floating-point operation count of one pass (forward, backward-data and backward-filter all
// compute B·Cout·OH·OW·Cin·KH·KW multiply-adds).
func (s ConvShape) Flops() float64 {
	return 2 * float64(s.B) * float64(s.Cout) * float64(s.OH()) * float64(s.OW()) * float64(s.Cin*s.KH*s.KW)
}

// check validates the shape.
func (s ConvShape) check(op string) error {
	if err := positive(op, Dim{"B", s.B}, Dim{"Cin", s.Cin}, Dim{"H", s.H}, Dim{"W", s.W}); err != nil {
		return err
	}
	if err := positive(op, Dim{"Cout", s.Cout}, Dim{"Cin", s.Cin}, Dim{"KH", s.KH}, Dim{"KW", s.KW}); err != nil {
		return err
	}
	if s.StrideH < 0 || s.StrideW < 0 || s.DilH < 0 || s.DilW < 0 || s.PadH < 0 || s.PadW < 0 {
		return fmt.Errorf("%s: negative stride, dilation or padding in %+v", op, s)
	}
	if s.OH() <= 0 || s.OW() <= 0 {
		return fmt.Errorf("%s: the %d×%d kernel (dilated) does not fit the padded %d×%d input", op, s.KH, s.KW, s.H, s.W)
	}
	if err := positive(op, Dim{"B", s.B}, Dim{"Cout", s.Cout}, Dim{"OH", s.OH()}, Dim{"OW", s.OW()}); err != nil {
		return err
	}
	if s.StrideH > 1<<16 || s.StrideW > 1<<16 || s.DilH > 1<<16 || s.DilW > 1<<16 || s.PadH > 1<<16 || s.PadW > 1<<16 {
		return fmt.Errorf("%s: stride, dilation or padding above 65536 in %+v", op, s)
	}
	return nil
}

// convPush mirrors the push constants of conv.comp and conv_bwd_filter.comp.
type convPush struct {
	B, Cin, H, W           uint32
	Cout, KH, KW           uint32
	OH, OW                 uint32
	Sh, Sw, Ph, Pw, Dh, Dw uint32
	Flags                  uint32
}

func (s ConvShape) push(flags uint32) convPush {
	s = s.withDefaults()
	return convPush{uint32(s.B), uint32(s.Cin), uint32(s.H), uint32(s.W), uint32(s.Cout), uint32(s.KH),
		uint32(s.KW), uint32(s.OH()), uint32(s.OW()), uint32(s.StrideH), uint32(s.StrideW), uint32(s.PadH),
		uint32(s.PadW), uint32(s.DilH), uint32(s.DilW), flags}
}

// ConvOpts are the optional parts of the convolution passes.
type ConvOpts struct {
	// Bias (forward only), when its Buf is not nil, holds Cout floats added per output channel.
	Bias vk.Range
	// ReLU (forward only) applies max(·, 0) last.
	ReLU bool
	// Accumulate adds the result to what the output holds (gradient accumulation) instead of overwriting it.
	Accumulate bool
	// Scratch holds Lib.ConvFwdScratch(s) floats for the forward pass's packed weights, Lib.ConvDataScratch(s)
	// floats for the input gradient's packed weights or its two passes (backward-data), or
	// Lib.ConvFilterScratch(s) floats for a weight gradient split into parts (backward-filter); without it, or
	// where those return 0, the kernels read w as it is.
	Scratch vk.Range
}

func (o ConvOpts) flags() uint32 {
	var f uint32
	if o.Bias.Buf != nil {
		f |= gemmBias
	}
	if o.ReLU {
		f |= gemmReLU
	}
	if o.Accumulate {
		f |= gemmAccumulate
	}
	return f
}

// convTile picks the register tile of an implicit-GEMM pass with rows×cols outputs and a k-long reduction,
// with the same reasoning (and measurements) as gemmTile.
func (l *Lib) convTile(rows, cols, k int) GemmTile {
	return l.gemmTile(rows, cols, k)
}

// Conv2D records the forward convolution y = conv(x, w) (+ bias) (then ReLU) for x [B,Cin,H,W], w
// [Cout,Cin,KH,KW], y [B,Cout,OH,OW]. y must not alias the inputs.
func (l *Lib) Conv2D(r *vk.Recorder, x, w, y vk.Range, s ConvShape, o ConvOpts) error {
	const op = "conv2d"
	if err := s.check(op); err != nil {
		return err
	}
	if err := needEach(op, sized{"x", x, s.InLen()}, sized{"w", w, s.WLen()}, sized{"y", y, s.OutLen()}); err != nil {
		return err
	}
	bias, err := convBias(op, w, o, s)
	if err != nil {
		return err
	}
	t := l.convTile(s.Cout, s.B*s.OH()*s.OW(), s.Cin*s.KH*s.KW)
	if n := l.ConvFwdScratch(s); n > 0 && o.Scratch.Buf != nil {
		if err := checkScratch(op, o.Scratch, n, named{"x", x}, named{"w", w}, named{"y", y}, named{"bias", o.Bias}); err != nil {
			return err
		}
		if done, err := l.convDirect(r, "conv_direct_fwd", s, o.flags(), x, w, bias, y, o.Scratch); done || err != nil {
			return err
		}
		return l.convPacked(r, "conv_fwd", s, o.flags(), t, s.Cout, s.B*s.OH()*s.OW(), x, w, bias, y, o.Scratch)
	}
	return l.convDispatch(r, "conv_fwd", s, o.flags(), t, s.Cout, s.B*s.OH()*s.OW(), x, w, bias, y)
}

// convBias returns the range bound as the forward passes' bias: o.Bias, checked to hold s.Cout floats, or w where
// there is none (a binding must name some buffer; the shader reads it only with the bias flag).
func convBias(op string, w vk.Range, o ConvOpts, s ConvShape) (vk.Range, error) {
	if o.Bias.Buf == nil {
		return w, nil
	}
	return o.Bias, need(op, "bias", o.Bias, s.Cout)
}

// ConvFwdScratch returns the floats of ConvOpts.Scratch with which Conv2D reads packed weights, or 0 where it
// reads w as it is. On CPU drivers that read texels, the implicit GEMM fetched each weight through a one-float
// texel, one per tap per row; repacking w once per pass (conv_wpack) to [Cout][Cin][KH·KW rounded up to 4] lets
// it fetch four taps as one vec4 texel, for about the price of one float (lavapipe gathers vec4 texels with
// vector loads): madry's conv2 forward and input gradient ran 23 → 36 GFLOP/s on lavapipe, conv1's forward
// 12 → 15 (b50, one run). (Packing [KH][KW rounded up to 4] instead wasted 3 of 8 lanes on 5×5 kernels and held
// a vec4 per row across the taps: slower than no packing.) The implicit GEMM now reads [Cout][Cin·KH·KW rounded
// up to 4] (conv_wpack's FLAT layout; fewer floats than this returns), which gathers no zero taps: small's
// 3×3 conv2 forward 21–22 → 29–33 GFLOP/s, input gradient 18–19 → 28–31; madry's conv2 forward 38–39 → 36–47,
// input gradient 33–38 → 38–48 (b50, four alternations). GPUs keep reading w from a storage buffer. A first layer with unit strides runs conv_direct on
// [Cout][Cin][KH·KW rounded up to 4] instead (see directOK): conv1 15 → 28.
func (l *Lib) ConvFwdScratch(s ConvShape) int {
	return l.packLen(s)
}

// directMaxCin and directMaxTaps bound the convolutions conv_direct computes (see directOK): its forward pass keeps
// the input windows of every input channel, its input gradient the sums of every one, and both unroll every tap.
const (
	directMaxCin  = 4
	directMaxTaps = 49 // 7×7
)

// directOK reports whether conv_direct serves s (forward and input gradient, reading packed weights from the
// scratch): a CPU driver reading vec4 texels (see ConvFwdScratch), strides and dilations of 1, at most
// directMaxCin input channels and directMaxTaps taps — a network's first convolution, whose 25-long reductions
// (5×5, one channel) the implicit GEMM runs slowly.
func (l *Lib) directOK(s ConvShape) bool {
	if l.packLen(s) == 0 || l.dev.Info().Type != vk.TypeCPU {
		return false
	}
	s = s.withDefaults()
	return s.StrideH == 1 && s.StrideW == 1 && s.DilH == 1 && s.DilW == 1 && s.Cin <= directMaxCin &&
		s.KH*s.KW <= directMaxTaps
}

// directPixelsFwd and directPixelsData are conv_direct's P, the adjacent output pixels of one invocation, for the
// forward pass and the input gradient, measured on lavapipe for madry's conv1 at batch 50: forward P = 4 (8 was no
// faster), input gradient P = 16 (4: 17, 8: 22, 16: 23–26, 28 — a whole row: 25–27 GFLOP/s).
const (
	directPixelsFwd  = 4
	directPixelsData = 16
)

// convDirect records conv_wpack, packing w into scratch in the layout of shader (conv_direct_fwd or
// conv_direct_data), then shader itself. It reports false, recording nothing, where s or the ranges do not suit it.
func (l *Lib) convDirect(r *vk.Recorder, shader string, s ConvShape, flags uint32, src, w, bias, dst,
	scratch vk.Range) (bool, error) {
	n := l.packLen(s)
	wp := vk.Range{Buf: scratch.Buf, Off: scratch.Off, Size: 4 * uint64(n)}
	if !l.directOK(s) || !l.texelFits(vk.Texel4, wp) || !l.texelFits(vk.Texel1, src) {
		return false, nil
	}
	s = s.withDefaults()
	no, ni, sw, dh, dw, layout := s.Cout, s.Cin, s.W, s.OH(), s.OW(), uint32(0)
	padx, px := -s.PadW, directPixelsFwd
	if shader == "conv_direct_data" {
		no, ni, sw, dh, dw, layout = s.Cin, s.Cout, s.OW(), s.H, s.W, convPackData
		padx, px = s.PadW-(s.KW-1), directPixelsData
	}
	in := vk.Texel1
	if sw%4 == 0 && dw%4 == 0 && l.texelFits(vk.Texel4, src) {
		shader, in = shader+"4", vk.Texel4 // vec4 reads and stores (see conv_direct.comp's VEC4)
	} else {
		padx = 0 // unused: one pipeline for every padding
	}
	if err := l.dispatch1D(r, "conv_wpack", n, s.push(layout), []vk.Access{vk.Read, vk.Write}, w, wp); err != nil {
		return true, err
	}
	return true, l.directRecord(r, shader, in, s, flags, directPass{px, no, ni, padx, s.B * dh, dw}, src, wp, bias, dst)
}

// directPass is what a conv_direct pipeline is specialised for and dispatched over: px pixels an invocation, no
// output and ni input channels, the column offset padx (VEC4 variants), over rows destination rows dw pixels wide.
type directPass struct{ px, no, ni, padx, rows, dw int }

// directRecord records conv_direct's variant shader for pass d (its weights already packed into wp), src bound
// with access in, and after dst the extra outputs of its variant (POOL's codes).
func (l *Lib) directRecord(r *vk.Recorder, shader string, in vk.Access, s ConvShape, flags uint32, d directPass,
	src, wp, bias, dst vk.Range, extra ...vk.Range) error {
	access := []vk.Access{in, vk.Texel4, vk.Read, vk.ReadWrite}
	for range extra {
		access = append(access, vk.Write)
	}
	p := s.push(flags)
	pipe, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: access, PushSize: pushSize(p),
		Local: [3]uint32{l.wg, 1, 1},
		Consts: []vk.SpecConst{vk.SpecU32(3, uint32(d.px)), vk.SpecU32(4, uint32(d.no)), vk.SpecU32(5, uint32(d.ni)),
			vk.SpecU32(6, uint32(s.KH)), vk.SpecU32(7, uint32(s.KW)), vk.SpecI32(8, int32(d.padx))}})
	if err != nil {
		return err
	}
	inv := d.rows * ((d.dw + d.px - 1) / d.px)
	return r.Dispatch(pipe, l.groups1D(inv), p, append([]vk.Range{src, wp, bias, dst}, extra...)...)
}

// packLen is the floats of s's packed weights, or 0 where the packed variants are not used.
func (l *Lib) packLen(s ConvShape) int {
	if !l.texel || s.check("conv") != nil || !l.dev.Info().Texel.Float4 {
		return 0
	}
	s = s.withDefaults()
	n := s.Cout * s.Cin * ((s.KH*s.KW + 3) / 4 * 4)
	if uint64(n/4) > uint64(l.dev.Info().Texel.MaxElements) {
		return 0
	}
	return n
}

// convPacked records the packing of w into scratch (conv_wpack, in the layout of shader's rows), then shader's
// packed variant reading it. It falls back to the unpacked kernel where the ranges cannot be texel views.
func (l *Lib) convPacked(r *vk.Recorder, shader string, s ConvShape, flags uint32, t GemmTile, rows, cols int,
	src, w, bias, dst, scratch vk.Range) error {
	layout, per := uint32(convPackFlat), s.Cin // per: the channels of a row's reduction
	if shader == "conv_bwd_data" {
		layout, per = convPackFlat|convPackData, s.Cout
	}
	// One row's whole reduction, rounded up to 4 at its end only (conv_wpack's FLAT layout): at most packLen(s).
	n := rows * ((per*s.KH*s.KW + 3) / 4 * 4)
	wp := vk.Range{Buf: scratch.Buf, Off: scratch.Off, Size: 4 * uint64(n)}
	if !l.texelFits(vk.Texel4, wp) || !l.texelFits(vk.Texel1, src) {
		return l.convDispatch(r, shader, s, flags, t, rows, cols, src, w, bias, dst)
	}
	if err := l.dispatch1D(r, "conv_wpack", n, s.push(layout), []vk.Access{vk.Read, vk.Write}, w, wp); err != nil {
		return err
	}
	return l.convRecord(r, shader+"_tp", s, flags, t, rows, cols, [2]vk.Access{vk.Texel1, vk.Texel4}, src, wp, bias, dst)
}

// convPackData and convPackFlat are conv_wpack's flags for the input gradient's rows (rows ci, k = (co, kh, kw))
// and for conv.comp's layout (a row's reduction rounded up to 4 at its end only, not each channel's taps).
const (
	convPackData = 8
	convPackFlat = 16
)

// Conv2DBackwardData records dx = ∂(Σ dy·y)/∂x, the input gradient of Conv2D (a transposed convolution), for
// dy [B,Cout,OH,OW], w [Cout,Cin,KH,KW], dx [B,Cin,H,W]. Only Accumulate of o is used.
func (l *Lib) Conv2DBackwardData(r *vk.Recorder, dy, w, dx vk.Range, s ConvShape, o ConvOpts) error {
	const op = "conv2d backward-data"
	if err := s.check(op); err != nil {
		return err
	}
	if err := needEach(op, sized{"dy", dy, s.OutLen()}, sized{"w", w, s.WLen()}, sized{"dx", dx, s.InLen()}); err != nil {
		return err
	}
	if o.Bias.Buf != nil || o.ReLU {
		return fmt.Errorf("%s: bias and ReLU apply to the forward pass only", op)
	}
	t := l.convTile(s.Cin, s.B*s.H*s.W, s.Cout*s.KH*s.KW)
	if n := l.ConvDataScratch(s); n > 0 && o.Scratch.Buf != nil {
		if err := checkScratch(op, o.Scratch, n, named{"dy", dy}, named{"w", w}, named{"dx", dx}); err != nil {
			return err
		}
		if done, err := l.convDirect(r, "conv_direct_data", s, o.flags(), dy, w, w, dx, o.Scratch); done || err != nil {
			return err
		}
		// Where conv_direct declines a range, the scratch holds packed weights, not cols (see ConvDataScratch).
		if !l.directOK(s) && l.colsStride(s) > 0 {
			return l.convDataCols(r, dy, w, dx, o.Scratch, s, o.flags())
		}
		return l.convPacked(r, "conv_bwd_data", s, o.flags(), t, s.Cin, s.B*s.H*s.W, dy, w, w, dx, o.Scratch)
	}
	return l.convDispatch(r, "conv_bwd_data", s, o.flags(), t, s.Cin, s.B*s.H*s.W, dy, w, w, dx)
}

// colsMaxCin is the most input channels for which the input gradient runs in two passes on CPU drivers.
const colsMaxCin = 4

// ConvDataScratch returns the floats of ConvOpts.Scratch with which Conv2DBackwardData computes s's input gradient
// on a CPU driver, or 0 where the one-pass implicit GEMM reads w as it is. The one-pass kernel blocks its work by
// input channels, so with one or a few of them (a network's first layer, whose input gradient attacks need) each
// gathered dy value feeds only that many multiply-adds: madry's conv1 ran at 5 GFLOP/s on lavapipe. Such a layer
// with unit strides runs conv_direct (see directOK) on packed weights, this returning their floats: 29 GFLOP/s.
// Otherwise (strides or dilations, or no vec4 texels) it runs in two passes, this returning their cols: first cols[b] = wᵀ·dy[b] for every image b in
// one batched GEMM with Cin·KH·KW rows, then each pixel's KH·KW entries of cols summed (conv_col2im): ≈10 GFLOP/s.
// GPUs keep the one-pass kernel (madry's conv1 input gradient ran at 0.4–1 TFLOP/s on an H200).
//
// Where the one-pass kernel runs on a CPU driver, it reads packed weights as Conv2D does (see ConvFwdScratch),
// here [Cin][Cout][KH·KW rounded up to 4], and this returns their floats.
func (l *Lib) ConvDataScratch(s ConvShape) int {
	if l.directOK(s) {
		return l.packLen(s)
	}
	stride := l.colsStride(s)
	if stride == 0 {
		return l.packLen(s)
	}
	return s.B * stride
}

// colsStride is the floats between two images' cols in the two-pass input gradient, or 0 where the two-pass path
// is not used (see ConvDataScratch): few input channels and a CPU driver.
func (l *Lib) colsStride(s ConvShape) int {
	info := l.dev.Info()
	if s.check("conv") != nil || s.Cin > colsMaxCin || info.Type != vk.TypeCPU ||
		uint64(s.B) > uint64(info.Limits.MaxWorkgroupCount[2]) { // the GEMM's batch is its z workgroups
		return 0
	}
	s = s.withDefaults()
	return s.Cin * s.KH * s.KW * s.OH() * s.OW()
}

// checkScratch validates a pass's scratch: at least n floats, overlapping none of the pass's operands.
func checkScratch(op string, scratch vk.Range, n int, operands ...named) error {
	if err := need(op, "scratch", scratch, n); err != nil {
		return err
	}
	return disjoint(op, append([]named{{"scratch", scratch}}, operands...)...)
}

// convDataCols records the two-pass input gradient (see ConvDataScratch) with cols as its scratch.
func (l *Lib) convDataCols(r *vk.Recorder, dy, w, dx, cols vk.Range, s ConvShape, flags uint32) error {
	stride := l.colsStride(s)
	s = s.withDefaults()
	rows, p := s.Cin*s.KH*s.KW, s.OH()*s.OW()
	// One batched GEMM, a product per image; w is stored [Cout][Cin·KH·KW], so op(A) = wᵀ reads it as a
	// transposed A.
	if err := l.Gemm(r, w, dy, cols, rows, p, s.Cout, GemmOpts{TransA: true, Batch: s.B, StrideB: s.Cout * p,
		StrideC: stride}); err != nil {
		return err
	}
	shader, in := l.texel1Variant("conv_col2im", cols)
	push := colsPush{s.push(flags & gemmAccumulate), uint32(stride)}
	return l.dispatch1D(r, shader, s.InLen(), push, []vk.Access{in, vk.ReadWrite}, cols, dx)
}

// colsPush mirrors conv_col2im.comp's push constants: the convolution's, then the floats between images' cols.
type colsPush struct {
	convPush
	Stride uint32
}

// convDispatch records conv.comp over a rows×cols product.
func (l *Lib) convDispatch(r *vk.Recorder, shader string, s ConvShape, flags uint32, t GemmTile, rows, cols int,
	src, w, bias, dst vk.Range) error {
	shader, in := l.texel1Variant(shader, src, w)
	return l.convRecord(r, shader, s, flags, t, rows, cols, [2]vk.Access{in, in}, src, w, bias, dst)
}

// convStore4 reports whether conv.comp's variant shader stores four columns as one vec4 (its STORE4): the packed
// variants without pooling do where the output plane is a multiple of 4 pixels and dst starts 16-byte aligned.
// Paired runs on lavapipe (BenchmarkVec4Stores, b50, against float stores): madry's conv2 forward 0.90–0.93× of the
// time, input gradient 0.94–0.97×; small's conv2 forward 0.79–0.80×, input gradient 0.91–0.92×. (Testing each
// column's taps once, as the bits of a mask, instead of per channel, was tried with it: 0.97–1.03×, and nothing on
// the pooling forward.)
func convStore4(shader string, s ConvShape, dst vk.Range) uint32 {
	plane := s.OH() * s.OW()
	if strings.HasPrefix(shader, "conv_bwd_data") {
		plane = s.H * s.W
	}
	if convVec4Stores && strings.HasSuffix(shader, "_tp") && plane%4 == 0 && dst.Off%16 == 0 {
		return 1
	}
	return 0
}

// convVec4Stores lets the packed implicit GEMMs store vec4s (see convStore4); tests turn it off to compare.
var convVec4Stores = true

// convRecord records conv.comp's variant shader over a rows×cols product, binding src and w with access in, and
// after dst the extra outputs of its variant (POOL's codes).
func (l *Lib) convRecord(r *vk.Recorder, shader string, s ConvShape, flags uint32, t GemmTile, rows, cols int,
	in [2]vk.Access, src, w, bias, dst vk.Range, extra ...vk.Range) error {
	s = s.withDefaults()
	unit := uint32(0)
	if s.StrideH == 1 && s.StrideW == 1 {
		unit = 1
	}
	gx := (uint64(cols) + 4*uint64(t.CN)*uint64(t.LX) - 1) / (4 * uint64(t.CN) * uint64(t.LX))
	gy := (uint64(rows) + uint64(t.RM) - 1) / uint64(t.RM)
	lim := l.dev.Info().Limits
	if gx > uint64(lim.MaxWorkgroupCount[0]) || gy > uint64(lim.MaxWorkgroupCount[1]) {
		return fmt.Errorf("%s: %d×%d outputs need %d×%d workgroups, more than the device's %v", shader, rows, cols,
			gx, gy, lim.MaxWorkgroupCount)
	}
	p := s.push(flags)
	access := []vk.Access{in[0], in[1], vk.Read, vk.ReadWrite}
	for range extra {
		access = append(access, vk.Write)
	}
	pipe, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: access,
		PushSize: pushSize(p), Local: [3]uint32{t.LX, 1, 1},
		Consts: []vk.SpecConst{vk.SpecU32(3, t.RM), vk.SpecU32(4, t.CN), vk.SpecU32(5, unit),
			vk.SpecU32(6, convStore4(shader, s, dst))}})
	if err != nil {
		return err
	}
	return r.Dispatch(pipe, [3]uint32{uint32(gx), uint32(gy), 1}, p, append([]vk.Range{src, w, bias, dst}, extra...)...)
}

// Conv2DBackwardFilter records dw = ∂(Σ dy·y)/∂w, the weight gradient of Conv2D, for x [B,Cin,H,W], dy
// [B,Cout,OH,OW], dw [Cout,Cin,KH,KW]. Only Accumulate and Scratch of o are used. On CPU drivers a first
// convolution runs conv_direct_filter (see directFilterOK), split over groups of rows through the scratch.
func (l *Lib) Conv2DBackwardFilter(r *vk.Recorder, x, dy, dw vk.Range, s ConvShape, o ConvOpts) error {
	const op = "conv2d backward-filter"
	if err := s.check(op); err != nil {
		return err
	}
	if err := needEach(op, sized{"x", x, s.InLen()}, sized{"dy", dy, s.OutLen()}, sized{"dw", dw, s.WLen()}); err != nil {
		return err
	}
	if o.Bias.Buf != nil || o.ReLU {
		return fmt.Errorf("%s: bias and ReLU apply to the forward pass only", op)
	}
	if done, err := l.convDirectFilter(r, s, o, x, dy, dw); done || err != nil {
		return err
	}
	rows, cols, t := l.filterTile(s)
	if l.filterAsGEMM(rows, cols, t) {
		return l.filterGEMM(r, x, dy, dw, s, t, o.flags(), 1)
	}
	if parts := l.filterQuadParts(s); parts > 0 && holds(o.Scratch, parts*rows*cols) && l.texelFits(vk.Texel1, x) &&
		l.texelFits(vk.Texel4, dy) {
		if err := checkScratch(op, o.Scratch, parts*rows*cols, named{"x", x}, named{"dy", dy},
			named{"dw", dw}); err != nil {
			return err
		}
		if err := l.filterQuads(r, x, dy, o.Scratch, s, parts); err != nil {
			return err
		}
		return l.BiasGrad(r, o.Scratch, dw, parts, rows*cols, 1, o.Accumulate)
	}
	if parts := l.filterParts(s); parts > 1 && holds(o.Scratch, parts*rows*cols) {
		// Split over images: each part's weight gradient into the scratch, then their fixed-order sum.
		if err := checkScratch(op, o.Scratch, parts*rows*cols, named{"x", x}, named{"dy", dy},
			named{"dw", dw}); err != nil {
			return err
		}
		if err := l.filterGEMM(r, x, dy, o.Scratch, s, filterSplitTile(rows, cols), 0, parts); err != nil {
			return err
		}
		return l.BiasGrad(r, o.Scratch, dw, parts, rows*cols, 1, o.Accumulate)
	}
	// The reduction is split over the workgroup's invocations, so a workgroup is one output block; 64
	// invocations (8 SIMD rows on lavapipe) keep every core busy even for a 32×25 weight.
	t = GemmTile{RM: 8, CN: 2, LX: 64}
	if rows >= 32 && cols >= 32 && s.Flops() >= 1<<25 {
		t = GemmTile{RM: 16, CN: 4, LX: 64} // worth its longer compile on big layers (see convTile)
	}
	for t.RM > 1 && int(t.RM) >= 2*rows {
		t.RM /= 2
	}
	for t.CN > 1 && int(4*t.CN) >= 2*cols {
		t.CN /= 2
	}
	t.LX = min(t.LX, l.dev.Info().Limits.MaxWorkgroupInvocations, l.dev.Info().Limits.MaxWorkgroupSize[0])
	gx := (cols + 4*int(t.CN) - 1) / (4 * int(t.CN))
	gy := (rows + int(t.RM) - 1) / int(t.RM)
	lim := l.dev.Info().Limits
	if uint64(gx) > uint64(lim.MaxWorkgroupCount[0]) || uint64(gy) > uint64(lim.MaxWorkgroupCount[1]) {
		return fmt.Errorf("%s: %d×%d outputs need %d×%d workgroups, more than the device's %v", op, rows, cols, gx,
			gy, lim.MaxWorkgroupCount)
	}
	shader, in := l.texel1Variant("conv_bwd_filter", x, dy)
	return l.filterDispatch(r, shader, [2]vk.Access{in, in}, s, t, o.flags(), [3]uint32{uint32(gx), uint32(gy), 1},
		x, dy, dw)
}

// directFilterParts is how many groups of output rows conv_direct_filter splits s's weight gradient into, one
// workgroup each: 32, measured on lavapipe for madry's conv1 at batch 50 (16–64 parts: 27–33 GFLOP/s, noisy; 32
// among the best at b50 and b128).
func directFilterParts(s ConvShape) int {
	return max(1, min(s.B*s.OH(), 32))
}

// directFilterPixels is conv_direct_filter's P, the adjacent output pixels of a step: 4 and 8 measured alike for
// madry's conv1 (8 wastes a 28-wide row's last four), a whole row (28) 17–19 GFLOP/s against 25–33.
const directFilterPixels = 4

// directFilterRC is conv_direct_filter's output channels per invocation, so that a layer of 8–32 channels makes a
// workgroup of eight invocations (one SIMD row on lavapipe): madry's conv1 (32 channels) with 4 each 25–34 GFLOP/s
// against 22–25 with 2 (16 invocations) and 17–23 with 8 (4); small's conv1 (16) with 2 each 12–14 against 9–11
// with 4. At most 4: each invocation holds RC·Cin·KH·KW sums.
func directFilterRC(cout int) int {
	return min(4, max(1, (cout+7)/8))
}

// directFilterOK reports whether conv_direct_filter computes s's weight gradient: a first convolution as for
// conv_direct (directOK) whose invocations hold at most 128 sums (RC·Cin·KH·KW: madry's conv1 100, small's 18)
// and whose workgroup fits the device.
func (l *Lib) directFilterOK(s ConvShape) bool {
	if !l.directOK(s) {
		return false
	}
	rc := directFilterRC(s.Cout)
	lim := l.dev.Info().Limits
	lx := uint32((s.Cout + rc - 1) / rc)
	return rc*s.Cin*s.KH*s.KW <= 128 && lx <= lim.MaxWorkgroupSize[0] && lx <= lim.MaxWorkgroupInvocations &&
		l.texelHolds(vk.Texel1, s.InLen(), s.OutLen())
}

// convDirectFilter records conv_direct_filter, s's weight gradient split over directFilterParts groups of output
// rows into o.Scratch and then summed into dw in a fixed order (bias_grad_cols), or straight into dw with one
// part. It reports false, recording nothing, where s or the ranges do not suit it.
func (l *Lib) convDirectFilter(r *vk.Recorder, s ConvShape, o ConvOpts, x, dy, dw vk.Range) (bool, error) {
	const op = "conv2d backward-filter"
	if !l.directFilterOK(s) || !l.texelFits(vk.Texel1, x, dy) {
		return false, nil
	}
	s = s.withDefaults()
	parts, out, flags := directFilterParts(s), dw, o.flags()
	if !holds(o.Scratch, parts*s.WLen()) {
		parts = 1 // no room for the parts: one workgroup walks every row
	}
	if parts > 1 {
		if err := checkScratch(op, o.Scratch, parts*s.WLen(), named{"x", x}, named{"dy", dy},
			named{"dw", dw}); err != nil {
			return true, err
		}
		out, flags = o.Scratch, 0
	}
	px := directFilterPixels
	shader, in, padx := "conv_direct_filter", vk.Texel1, int32(0)
	if s.W%4 == 0 && s.OW()%4 == 0 && px%4 == 0 && l.texelFits(vk.Texel4, x, dy) {
		shader, in, padx = "conv_direct_filter4", vk.Texel4, int32(-s.PadW)
	}
	rc := directFilterRC(s.Cout)
	lx := (s.Cout + rc - 1) / rc
	p := s.push(flags)
	pipe, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: []vk.Access{in, in, vk.ReadWrite},
		PushSize: pushSize(p), Local: [3]uint32{uint32(lx), 1, 1},
		Consts: []vk.SpecConst{vk.SpecU32(3, uint32(px)), vk.SpecU32(4, uint32(s.Cout)), vk.SpecU32(5, uint32(s.Cin)),
			vk.SpecU32(6, uint32(s.KH)), vk.SpecU32(7, uint32(s.KW)), vk.SpecI32(8, padx), vk.SpecU32(9, uint32(rc))}})
	if err != nil {
		return true, err
	}
	if err := r.Dispatch(pipe, [3]uint32{uint32(parts), 1, 1}, p, x, dy, out); err != nil {
		return true, err
	}
	if parts == 1 {
		return true, nil
	}
	return true, l.BiasGrad(r, o.Scratch, dw, parts, s.WLen(), 1, o.Accumulate)
}

// filterTile is the register tile of conv_filter_gemm for s's rows×cols weight gradient.
func (l *Lib) filterTile(s ConvShape) (rows, cols int, t GemmTile) {
	rows, cols = s.Cout, s.Cin*s.KH*s.KW
	t = l.convTile(rows, cols, s.B*s.OH()*s.OW())
	// conv_filter_gemm's reduction is long (B·OH·OW) and its output small: 16-row blocks keep enough workgroups
	// for every core (a 32-row block halves them, and madry conv2's weight gradient then fell to the split kernel).
	t.RM = min(t.RM, 16)
	return rows, cols, t
}

// filterGEMM records conv_filter_gemm into out, split over parts groups of images (parts z workgroups; each part
// writes its own rows×cols gradient, part z at float z·rows·cols of out).
func (l *Lib) filterGEMM(r *vk.Recorder, x, dy, out vk.Range, s ConvShape, t GemmTile, flags uint32, parts int) error {
	rows, cols := s.Cout, s.Cin*s.KH*s.KW
	gx := (cols + 4*int(t.CN)*int(t.LX) - 1) / (4 * int(t.CN) * int(t.LX))
	gy := (rows + int(t.RM) - 1) / int(t.RM)
	shader, in := l.texel1Variant("conv_filter_gemm", x, dy)
	ind := in
	if s.OH()*s.OW()%4 == 0 && l.texelFits(vk.Texel1, x) && l.texelFits(vk.Texel4, dy) {
		// dy as vec4 texels, four output pixels of a channel per fetch (see conv_filter_gemm.comp's DY4): on
		// lavapipe madry conv2's weight gradient 26 → 35 GFLOP/s, conv1's 10 → 15 (b50, one run; 19–21 with
		// filterSplitTile's 32-row blocks).
		shader, in, ind = "conv_filter_gemm_t4", vk.Texel1, vk.Texel4
	}
	return l.filterDispatch(r, shader, [2]vk.Access{in, ind}, s, t, flags,
		[3]uint32{uint32(gx), uint32(gy), uint32(parts)}, x, dy, out)
}

// holds reports whether scratch is a buffer range of at least n floats: a weight gradient splits into parts only
// then (a scratch sized for another path — one whose operands turned out not to suit it — leaves it unsplit).
func holds(scratch vk.Range, n int) bool {
	return scratch.Buf != nil && scratch.Size >= 4*uint64(n)
}

// filterQuadTile is conv_filter_gemm_q4's tile for a weight gradient of rows output channels: 32 output channels
// (fewer for a smaller layer) by 16 columns per invocation (gemm.comp's shape: each dy vec4 fetched feeds 16
// columns), the 8 invocations of a workgroup being parts.
func filterQuadTile(rows int) GemmTile {
	t := GemmTile{RM: 32, CN: 4, LX: 8}
	for t.RM > 1 && int(t.RM) >= 2*rows {
		t.RM /= 2
	}
	return t
}

// filterQuadParts is how many parts conv_filter_gemm_q4 splits a weight gradient with few output blocks into on a
// CPU driver — LX per workgroup, enough workgroups over the blocks for 16 — or 0 where it does not apply (a GPU,
// OH·OW not a multiple of 4, or a layer conv_filter_gemm fills alone). small's conv2 (32 × 144 weights, 9 blocks,
// b50) on lavapipe: 33–37 GFLOP/s with 16 parts (24–34 with 32–48), against 20–22 for the image-split kernel.
func (l *Lib) filterQuadParts(s ConvShape) int {
	if s.check("conv") != nil || l.dev.Info().Type != vk.TypeCPU || s.OH()*s.OW()%4 != 0 ||
		!l.texelHolds(vk.Texel1, s.InLen()) || !l.texelHolds(vk.Texel4, s.OutLen()) {
		return 0
	}
	rows, cols, t := l.filterTile(s)
	if l.filterAsGEMM(rows, cols, t) {
		return 0
	}
	q := filterQuadTile(rows)
	blocks := ((rows + int(q.RM) - 1) / int(q.RM)) * ((cols + 4*int(q.CN) - 1) / (4 * int(q.CN)))
	gz := min(max(1, (16+blocks-1)/blocks), int(l.dev.Info().Limits.MaxWorkgroupCount[2]))
	return gz * int(q.LX) // a part with no pixels (a tiny layer) writes zeros
}

// filterQuads records conv_filter_gemm_q4: parts (a multiple of its tile's LX) partial weight gradients into out,
// part z at float z·rows·cols.
func (l *Lib) filterQuads(r *vk.Recorder, x, dy, out vk.Range, s ConvShape, parts int) error {
	rows, cols := s.Cout, s.Cin*s.KH*s.KW
	t := filterQuadTile(rows)
	gx := (cols + 4*int(t.CN) - 1) / (4 * int(t.CN)) // one column block per workgroup: its invocations are parts
	groups := [3]uint32{uint32(gx), uint32((rows + int(t.RM) - 1) / int(t.RM)), uint32((parts + int(t.LX) - 1) / int(t.LX))}
	return l.filterDispatch(r, "conv_filter_gemm_q4", [2]vk.Access{vk.Texel1, vk.Texel4}, s, t, 0, groups, x, dy, out)
}

// filterDispatch records a weight-gradient shader (conv_filter_gemm's variants, conv_bwd_filter: tile t as
// specialization constants 3 and 4, t.LX invocations a workgroup) over groups, reading x and dy as in.
func (l *Lib) filterDispatch(r *vk.Recorder, shader string, in [2]vk.Access, s ConvShape, t GemmTile, flags uint32,
	groups [3]uint32, x, dy, out vk.Range) error {
	p := s.push(flags)
	pipe, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: []vk.Access{in[0], in[1], vk.ReadWrite},
		PushSize: pushSize(p), Local: [3]uint32{t.LX, 1, 1},
		Consts: []vk.SpecConst{vk.SpecU32(3, t.RM), vk.SpecU32(4, t.CN)}})
	if err != nil {
		return err
	}
	return r.Dispatch(pipe, groups, p, x, dy, out)
}

// filterSplitTile is the tile of a weight gradient split over images: 32-row blocks of output channels (fewer rows
// for a smaller layer), 4 columns, 8 invocations — madry conv1's 25 columns keep 7 of the 8 lanes busy (8 columns
// per lane left half of them idle: 7.3 against 11.7 GFLOP/s). With dy fetched as vec4 texels (DY4), 32 rows beat 16
// (madry conv1, b50: 17.0 against 13.6 GFLOP/s with 64/blocks parts; b128: 19.5 against 16.5).
func filterSplitTile(rows, cols int) GemmTile {
	t := GemmTile{RM: 32, CN: 1, LX: 8}
	for t.RM > 1 && int(t.RM) >= 2*rows {
		t.RM /= 2
	}
	for t.CN > 1 && int(4*t.CN) >= 2*cols {
		t.CN /= 2
	}
	return t
}

// filterParts is how many groups of images a weight gradient with too few output blocks for conv_filter_gemm is
// split into on a CPU driver (1: not split; the workgroup-split kernel runs instead): 64 workgroups over the
// blocks, at most one part per image. A layer like madry's conv1 (32×25 weights, one block) then gives every core
// many workgroups, each with a long reduction and gemm.comp's register blocking: measured on lavapipe at batch 50
// (128), 11.7 (14.8) against 5.5 (5.2) GFLOP/s for the workgroup-split kernel when it was introduced with 16-row
// blocks and 32 workgroups; 19–21 (21–23) with the vec4-dy variant, 32-row blocks and 64.
func (l *Lib) filterParts(s ConvShape) int {
	info := l.dev.Info()
	if s.check("conv") != nil || info.Type != vk.TypeCPU {
		return 1
	}
	rows, cols := s.Cout, s.Cin*s.KH*s.KW
	t := filterSplitTile(rows, cols)
	blocks := ((rows + int(t.RM) - 1) / int(t.RM)) * ((cols + 4*int(t.CN)*int(t.LX) - 1) / (4 * int(t.CN) * int(t.LX)))
	return min(s.B, max(1, 64/blocks), int(info.Limits.MaxWorkgroupCount[2])) // 64: see filterSplitTile
}

// ConvFilterScratch returns the floats of ConvOpts.Scratch with which Conv2DBackwardFilter splits s's weight
// gradient into parts — groups of images, rows or quads of pixels (see filterParts, directFilterParts and
// filterQuadParts) — or 0 where it does not. Given less, the weight gradient runs unsplit (slower, as right).
func (l *Lib) ConvFilterScratch(s ConvShape) int {
	if l.directFilterOK(s) {
		if parts := directFilterParts(s); parts > 1 {
			return parts * s.WLen()
		}
		return 0
	}
	if rows, cols, t := l.filterTile(s); s.check("conv") != nil || l.filterAsGEMM(rows, cols, t) {
		return 0
	}
	parts := l.filterParts(s)
	if q := l.filterQuadParts(s); q > 0 {
		parts = q
	}
	if parts < 2 {
		return 0
	}
	return parts * s.Cout * s.Cin * s.KH * s.KW
}

// filterAsGEMM reports whether the weight gradient has enough outputs for conv_filter_gemm (one invocation per
// output block, the whole reduction in registers) to give every core several workgroups; smaller layers split
// the reduction inside workgroups with conv_bwd_filter. Measured on lavapipe, madry conv2 (64×800 weights):
// ≈4.6 GFLOP/s with the split kernel, ≈14.5 with conv_filter_gemm.
func (l *Lib) filterAsGEMM(rows, cols int, t GemmTile) bool {
	blocks := ((rows + int(t.RM) - 1) / int(t.RM)) * ((cols + 4*int(t.CN) - 1) / (4 * int(t.CN)))
	return blocks >= 16*int(t.LX)
}

// convIndex visits every (output element, weight element, input element) triple of the convolution whose input
// position is inside the image, in a fixed order: the common loop of the three CPU references.
func convIndex(s ConvShape, visit func(yi, wi, xi int)) {
	s = s.withDefaults()
	oh, ow := s.OH(), s.OW()
	for b := 0; b < s.B; b++ {
		for co := 0; co < s.Cout; co++ {
			for y := 0; y < oh; y++ {
				for x := 0; x < ow; x++ {
					yi := ((b*s.Cout+co)*oh+y)*ow + x
					for ci := 0; ci < s.Cin; ci++ {
						for kh := 0; kh < s.KH; kh++ {
							ih := y*s.StrideH - s.PadH + kh*s.DilH
							if ih < 0 || ih >= s.H {
								continue
							}
							for kw := 0; kw < s.KW; kw++ {
								iw := x*s.StrideW - s.PadW + kw*s.DilW
								if iw < 0 || iw >= s.W {
									continue
								}
								visit(yi, ((co*s.Cin+ci)*s.KH+kh)*s.KW+kw, ((b*s.Cin+ci)*s.H+ih)*s.W+iw)
							}
						}
					}
				}
			}
		}
	}
}

// Conv2DRef is the CPU reference of Conv2D (float64 sums); bias may be nil.
func Conv2DRef(x, w, bias []float32, s ConvShape, relu bool) []float32 {
	acc := make([]float64, s.OutLen())
	convIndex(s, func(yi, wi, xi int) { acc[yi] += float64(w[wi]) * float64(x[xi]) })
	out := make([]float32, len(acc))
	p := s.OH() * s.OW()
	for i, v := range acc {
		f := float32(v)
		if bias != nil {
			f += bias[(i/p)%s.Cout]
		}
		if relu {
			f = max(f, 0)
		}
		out[i] = f
	}
	return out
}

// Conv2DBackwardDataRef is the CPU reference of Conv2DBackwardData (float64 sums).
func Conv2DBackwardDataRef(dy, w []float32, s ConvShape) []float32 {
	acc := make([]float64, s.InLen())
	convIndex(s, func(yi, wi, xi int) { acc[xi] += float64(w[wi]) * float64(dy[yi]) })
	return to32(acc)
}

// Conv2DBackwardFilterRef is the CPU reference of Conv2DBackwardFilter (float64 sums).
func Conv2DBackwardFilterRef(x, dy []float32, s ConvShape) []float32 {
	acc := make([]float64, s.WLen())
	convIndex(s, func(yi, wi, xi int) { acc[wi] += float64(x[xi]) * float64(dy[yi]) })
	return to32(acc)
}

// to32 narrows a float64 slice.
func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, f := range v {
		out[i] = float32(f)
	}
	return out
}
