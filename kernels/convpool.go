package kernels

import (
	"fmt"

	"github.com/sqnet/sqnet/vk"
)

// directPixelsPool is conv_direct_pool4's P: 8 pixels of two output rows, four pooled windows an invocation, whose
// codes fill one float (see conv_direct.comp's POOL).
const directPixelsPool = 8

// ConvPoolOK reports whether Conv2DReLUMaxPool computes s followed by ReLU and 2×2 max pooling on this device: a
// CPU driver whose convolutions read packed weights (see ConvFwdScratch), an even output height and width, and
// texel views that any range placed at the device's storage-buffer offset alignment satisfies (a graph's arena
// places every tensor so: lavapipe 16 bytes, SwiftShader 256). A first layer that conv_direct serves (see
// directOK) with rows a multiple of 4 wide runs conv_direct's POOL variant, any other convolution conv.comp's.
// Elsewhere a model runs Conv2D and ReLUMaxPool2x2 as two ops.
func (l *Lib) ConvPoolOK(s ConvShape) bool {
	if s.check("conv") != nil || l.packLen(s) == 0 || l.dev.Info().Type != vk.TypeCPU {
		return false
	}
	s = s.withDefaults()
	t, align := l.dev.Info().Texel, max(l.dev.Info().Limits.MinStorageBufferAlignment, 16)
	// Texels of x: vec4s through conv_direct, floats through conv.comp; of dy in the backward: its floats (the
	// codes are fewer).
	xTexels := uint64(s.InLen())
	if l.poolDirect(s) {
		xTexels /= 4
	}
	return s.OH()%2 == 0 && s.OW()%2 == 0 && t.Float1 && t.Float4 && t.OffsetAlignment <= align &&
		xTexels <= t.MaxElements && uint64(s.OutLen()/4) <= t.MaxElements
}

// poolDirect reports whether Conv2DReLUMaxPool runs s through conv_direct's POOL variant (vec4 reads and stores).
func (l *Lib) poolDirect(s ConvShape) bool {
	s = s.withDefaults()
	return l.directOK(s) && s.OW()%4 == 0 && s.W%4 == 0
}

// PoolCodesLen is the floats of the codes that Conv2DReLUMaxPool keeps for s's backward: one per four windows —
// of a pooled row through conv_direct (PoolCodesRowsLen), of a channel's windows in (image, pooled row, pooled
// column) order through conv.comp (PoolCodesFlatLen).
func (l *Lib) PoolCodesLen(s ConvShape) int {
	s = s.withDefaults()
	if l.poolDirect(s) {
		return PoolCodesRowsLen(s.B, s.Cout, s.OH(), s.OW())
	}
	return PoolCodesFlatLen(s.B, s.Cout, s.OH(), s.OW())
}

// PoolCodesRowsLen is the floats of conv_direct's POOL codes for a [b, c, h, w] convolution output: one per four
// windows of a pooled row, at [image][channel][pooled row][chunk].
func PoolCodesRowsLen(b, c, h, w int) int { return b * c * (h / 2) * ((w/2 + 3) / 4) }

// PoolCodesFlatLen is the floats of conv.comp's POOL codes for a [b, c, h, w] convolution output: one per group of
// four windows of a channel in (image, pooled row, pooled column) order, at [channel][group].
func PoolCodesFlatLen(b, c, h, w int) int { return c * ((b*(h/2)*(w/2) + 3) / 4) }

// Conv2DReLUMaxPool records y = maxpool2x2(relu(conv(x, w) + bias)) for x [B,Cin,H,W] and w [Cout,Cin,KH,KW] into
// y [B,Cout,OH/2,OW/2] in one pass, without the convolution's output, and codes (PoolCodesLen(s) floats): which
// element of each window was its maximum and whether it was positive, all that Conv2DReLUMaxPoolBackward needs.
// The values are those of Conv2D then ReLUMaxPool2x2, to the bit. Only where ConvPoolOK(s); o.Scratch must hold
// ConvFwdScratch(s) floats (the packed weights), o.ReLU and o.Accumulate must be off.
func (l *Lib) Conv2DReLUMaxPool(r *vk.Recorder, x, w, y, codes vk.Range, s ConvShape, o ConvOpts) error {
	const op = "conv2d+relu+maxpool"
	if err := s.check(op); err != nil {
		return err
	}
	if !l.ConvPoolOK(s) {
		return fmt.Errorf("%s: %+v is not a shape the fused pass computes on this device (see ConvPoolOK)", op, s)
	}
	if o.ReLU || o.Accumulate {
		return fmt.Errorf("%s: ReLU comes after the pooling and the output cannot accumulate", op)
	}
	s = s.withDefaults()
	nc := l.PoolCodesLen(s)
	if err := needEach(op, sized{"x", x, s.InLen()}, sized{"w", w, s.WLen()}, sized{"y", y, s.OutLen() / 4},
		sized{"codes", codes, nc}); err != nil {
		return err
	}
	bias, err := convBias(op, w, o, s)
	if err != nil {
		return err
	}
	n := l.packLen(s)
	if err := checkScratch(op, o.Scratch, n, named{"x", x}, named{"w", w}, named{"y", y}, named{"codes", codes},
		named{"bias", o.Bias}); err != nil {
		return err
	}
	for _, in := range []named{{"x", x}, {"w", w}, {"bias", o.Bias}} {
		if err := disjoint(op, named{"y", y}, named{"codes", codes}, in); err != nil {
			return err
		}
	}
	if !l.poolDirect(s) {
		return l.convPool(r, x, w, bias, y, codes, s, o)
	}
	wp := vk.Range{Buf: o.Scratch.Buf, Off: o.Scratch.Off, Size: 4 * uint64(n)}
	if !l.texelFits(vk.Texel4, x, wp) || y.Off%8 != 0 {
		return fmt.Errorf("%s: x or the scratch cannot be a vec4 texel view (offsets %d, %d), or y is not 8-byte aligned",
			op, x.Off, o.Scratch.Off)
	}
	if err := l.dispatch1D(r, "conv_wpack", n, s.push(0), []vk.Access{vk.Read, vk.Write}, w, wp); err != nil {
		return err
	}
	// Rows of the pooled plane, each an invocation's two output rows.
	d := directPass{px: directPixelsPool, no: s.Cout, ni: s.Cin, padx: -s.PadW, rows: s.B * s.OH() / 2, dw: s.OW()}
	return l.directRecord(r, "conv_direct_pool4", vk.Texel4, s, o.flags(), d, x, wp, bias, y, codes)
}

// convPool records conv.comp's POOL variant (conv_fwd_tp_pool) for Conv2DReLUMaxPool: the implicit GEMM over
// the columns of four consecutive windows an invocation (CN = 4), the rows blocked as the plain forward's, on
// weights packed as its (conv_wpack's FLAT layout).
func (l *Lib) convPool(r *vk.Recorder, x, w, bias, y, codes vk.Range, s ConvShape, o ConvOpts) error {
	const op = "conv2d+relu+maxpool"
	n := s.Cout * ((s.Cin*s.KH*s.KW + 3) / 4 * 4)
	wp := vk.Range{Buf: o.Scratch.Buf, Off: o.Scratch.Off, Size: 4 * uint64(n)}
	if !l.texelFits(vk.Texel4, wp) || !l.texelFits(vk.Texel1, x) {
		return fmt.Errorf("%s: x or the scratch cannot be a texel view (offsets %d, %d)", op, x.Off, o.Scratch.Off)
	}
	if err := l.dispatch1D(r, "conv_wpack", n, s.push(convPackFlat), []vk.Access{vk.Read, vk.Write}, w, wp); err != nil {
		return err
	}
	cols := 16 * ((s.B*(s.OH()/2)*(s.OW()/2) + 3) / 4) // 16 columns a group of four windows
	t := l.convTile(s.Cout, s.B*s.OH()*s.OW(), s.Cin*s.KH*s.KW)
	t.CN = 4 // an invocation's columns: one group of four windows (conv.comp's POOL)
	return l.convRecord(r, "conv_fwd_tp_pool", s, o.flags(), t, s.Cout, cols, [2]vk.Access{vk.Texel1, vk.Texel4}, x,
		wp, bias, y, codes)
}

// unpoolFlatPush mirrors maxpool.comp's push constants in its UNPOOL FLAT variant.
type unpoolFlatPush struct{ B, C, H, W uint32 }

// Conv2DReLUMaxPoolBackward records dconv [B,Cout,OH,OW], the gradient of Conv2DReLUMaxPool(s) with respect to
// its convolution's output, from dy [B,Cout,OH/2,OW/2] and the forward's codes: each dy value goes to its window's
// maximum where that maximum was positive, every other element is zero — ReLUMaxPool2x2Backward's dx, without
// the convolution's output. The convolution's own backward (Conv2DBackwardData, Conv2DBackwardFilter) takes it
// from there.
func (l *Lib) Conv2DReLUMaxPoolBackward(r *vk.Recorder, codes, dy, dconv vk.Range, s ConvShape) error {
	const op = "conv2d+relu+maxpool backward"
	if err := s.check(op); err != nil {
		return err
	}
	if !l.ConvPoolOK(s) {
		return fmt.Errorf("%s: %+v is not a shape the fused pass computes on this device (see ConvPoolOK)", op, s)
	}
	s = s.withDefaults()
	b, c, h, w := s.B, s.Cout, s.OH(), s.OW()
	n, nc := s.OutLen(), l.PoolCodesLen(s)
	if err := needEach(op, sized{"codes", codes, nc}, sized{"dy", dy, n / 4}, sized{"dconv", dconv, n}); err != nil {
		return err
	}
	if err := disjoint(op, named{"codes", codes}, named{"dy", dy}, named{"dconv", dconv}); err != nil {
		return err
	}
	// conv_direct's codes: an invocation a pooled row, two windows' rows a vec4; conv.comp's: an invocation a code
	// float, one window's rows a vec2.
	shader, align, invocations := "maxpool_unpool4_t", uint64(16), b*c*h/2
	var push any = maxPoolPush{uint32(b * c), uint32(h), uint32(w), 1}
	if !l.poolDirect(s) {
		shader, align, invocations = "maxpool_unpool_flat_t", 8, nc
		push = unpoolFlatPush{uint32(b), uint32(c), uint32(h), uint32(w)}
	}
	if !l.texelFits(vk.Texel1, codes, dy) || dconv.Off%align != 0 {
		return fmt.Errorf("%s: codes or dy cannot be a texel view, or dconv is not %d-byte aligned", op, align)
	}
	return l.dispatch1D(r, shader, invocations, push, []vk.Access{vk.Texel1, vk.Texel1, vk.Write}, codes, dy, dconv)
}

// Conv2DReLUMaxPoolRef is the CPU reference of Conv2DReLUMaxPool: Conv2DRef, then ReLUMaxPool2x2Ref, and the
// codes packed from the windows' argmax positions and signs in the layout of the given path (flat: conv.comp's).
func Conv2DReLUMaxPoolRef(x, w, bias []float32, s ConvShape, flat bool) (y, codes []float32) {
	s = s.withDefaults()
	conv := Conv2DRef(x, w, bias, s, false)
	oh, ow := s.OH(), s.OW()
	y, idx := ReLUMaxPool2x2Ref(conv, s.B, s.Cout, oh, ow)
	return y, PoolCodesRef(conv, idx, s.B, s.Cout, oh, ow, flat)
}

// PoolCodesRef packs the codes of a ReLU + 2×2 max pooling of x [b, c, h, w] (h and w even) whose argmax indices
// MaxPool2x2Ref returned: 8^k·(the window's argmax position, row-major, + 4 where the maximum is > 0) for window
// k of each group of four — four windows of a pooled row (conv_direct's layout), or with flat four consecutive
// windows of a channel in (image, pooled row, pooled column) order (conv.comp's).
func PoolCodesRef(x []float32, idx []uint32, b, c, h, w int, flat bool) []float32 {
	qh, qw := h/2, w/2
	cpr, groups := (qw+3)/4, (b*qh*qw+3)/4
	n := PoolCodesRowsLen(b, c, h, w)
	if flat {
		n = PoolCodesFlatLen(b, c, h, w)
	}
	codes := make([]float32, n)
	for p := range b * c {
		for py := range qh {
			for px := range qw {
				i := idx[(p*qh+py)*qw+px]
				iy, ix := int(i)/w, int(i)%w
				code := uint32((iy-2*py)*2 + ix - 2*px)
				if x[p*h*w+int(i)] > 0 {
					code += 4
				}
				at, k := (p*qh+py)*cpr+px/4, px%4
				if flat {
					wi := ((p/c)*qh+py)*qw + px // the window's place among its channel's
					at, k = (p%c)*groups+wi/4, wi%4
				}
				codes[at] += float32(code << (3 * k))
			}
		}
	}
	return codes
}
