package kernels

import (
	"fmt"

	"github.com/sqnet/sqnet/vk"
)

// directPixelsPool is conv_direct_pool4's P: 8 pixels of two output rows, four pooled windows an invocation, whose
// codes fill one float (see conv_direct.comp's POOL).
const directPixelsPool = 8

// ConvPoolOK reports whether Conv2DReLUMaxPool computes s followed by ReLU and 2×2 max pooling on this device: a
// first convolution that conv_direct serves (see directOK), with an even output height, output and input rows a
// multiple of 4 wide (vec4 reads and stores), and texel views that any range placed at a 16-byte boundary satisfies.
// Elsewhere a model runs Conv2D and ReLUMaxPool2x2 as two ops.
func (l *Lib) ConvPoolOK(s ConvShape) bool {
	if !l.directOK(s) {
		return false
	}
	s = s.withDefaults()
	t := l.dev.Info().Texel
	return s.OH()%2 == 0 && s.OW()%4 == 0 && s.W%4 == 0 && t.Float1 && t.Float4 && t.OffsetAlignment <= 16 &&
		uint64(s.InLen()/4) <= t.MaxElements && uint64(PoolCodesLen(s.B, s.Cout, s.OH(), s.OW())) <= t.MaxElements &&
		uint64(s.OutLen()/4) <= t.MaxElements
}

// PoolCodesLen is the floats of the codes that Conv2DReLUMaxPool keeps for the backward of pooling a [b, c, h, w]
// convolution output: one per four windows of a pooled row.
func PoolCodesLen(b, c, h, w int) int { return b * c * (h / 2) * ((w/2 + 3) / 4) }

// Conv2DReLUMaxPool records y = maxpool2x2(relu(conv(x, w) + bias)) for x [B,Cin,H,W] and w [Cout,Cin,KH,KW] into
// y [B,Cout,OH/2,OW/2] in one pass, without the convolution's output, and codes (PoolCodesLen floats): which element
// of each window was its maximum and whether it was positive, all that ReLUMaxPool2x2Unpool needs for the
// backward. The values are those of Conv2D then ReLUMaxPool2x2, to the bit. Only where ConvPoolOK(s); o.Scratch
// must hold ConvFwdScratch(s) floats (the packed weights), o.ReLU and o.Accumulate must be off.
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
	nc := PoolCodesLen(s.B, s.Cout, s.OH(), s.OW())
	if err := needEach(op, sized{"x", x, s.InLen()}, sized{"w", w, s.WLen()}, sized{"y", y, s.OutLen() / 4},
		sized{"codes", codes, nc}); err != nil {
		return err
	}
	bias := w
	if o.Bias.Buf != nil {
		if err := need(op, "bias", o.Bias, s.Cout); err != nil {
			return err
		}
		bias = o.Bias
	}
	n := l.packLen(s)
	if err := checkScratch(op, o.Scratch, n, named{"x", x}, named{"w", w}, named{"y", y}, named{"codes", codes},
		named{"bias", o.Bias}); err != nil {
		return err
	}
	if err := disjoint(op, named{"y", y}, named{"codes", codes}); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"y", y}, named{"w", w}, named{"codes", codes}); err != nil {
		return err
	}
	wp := vk.Range{Buf: o.Scratch.Buf, Off: o.Scratch.Off, Size: 4 * uint64(n)}
	if !l.texelFits(vk.Texel4, x, wp) || y.Off%8 != 0 {
		return fmt.Errorf("%s: x or the scratch cannot be a vec4 texel view (offsets %d, %d), or y is not 8-byte aligned",
			op, x.Off, o.Scratch.Off)
	}
	if err := l.dispatch1D(r, "conv_wpack", n, s.push(0), []vk.Access{vk.Read, vk.Write}, w, wp); err != nil {
		return err
	}
	p := s.push(o.flags())
	pipe, err := l.pipeline(vk.PipelineSpec{Shader: "conv_direct_pool4",
		Bindings: []vk.Access{vk.Texel4, vk.Texel4, vk.Read, vk.Write, vk.Write}, PushSize: pushSize(p),
		Local: [3]uint32{l.wg, 1, 1},
		Consts: []vk.SpecConst{vk.SpecU32(3, directPixelsPool), vk.SpecU32(4, uint32(s.Cout)),
			vk.SpecU32(5, uint32(s.Cin)), vk.SpecU32(6, uint32(s.KH)), vk.SpecU32(7, uint32(s.KW)),
			vk.SpecI32(8, int32(-s.PadW))}})
	if err != nil {
		return err
	}
	inv := s.B * (s.OH() / 2) * ((s.OW() + directPixelsPool - 1) / directPixelsPool)
	return r.Dispatch(pipe, l.groups1D(inv), p, x, wp, bias, y, codes)
}

// ReLUMaxPool2x2Unpool records dx [b, c, h, w], the gradient of a fused ReLU + 2×2 max pooling (Conv2DReLUMaxPool's)
// with respect to the convolution's output, from dy [b, c, h/2, w/2] and the forward's codes: each dy value goes to
// its window's maximum where that maximum was positive, every other element is zero — ReLUMaxPool2x2Backward's dx,
// without x. h must be even and w a multiple of 4 (the shapes Conv2DReLUMaxPool pools).
func (l *Lib) ReLUMaxPool2x2Unpool(r *vk.Recorder, codes, dy, dx vk.Range, b, c, h, w int) error {
	const op = "relu+maxpool 2x2 unpool"
	if err := checkPool(op, b, c, h, w); err != nil {
		return err
	}
	if h%2 != 0 || w%4 != 0 {
		return fmt.Errorf("%s: a %d×%d plane: want an even height and a width a multiple of 4", op, h, w)
	}
	n, out, nc := b*c*h*w, b*c*(h/2)*(w/2), PoolCodesLen(b, c, h, w)
	if err := needEach(op, sized{"codes", codes, nc}, sized{"dy", dy, out}, sized{"dx", dx, n}); err != nil {
		return err
	}
	if err := disjoint(op, named{"codes", codes}, named{"dy", dy}, named{"dx", dx}); err != nil {
		return err
	}
	if !l.texelFits(vk.Texel1, codes, dy) || dx.Off%16 != 0 {
		return fmt.Errorf("%s: codes or dy cannot be a texel view, or dx is not 16-byte aligned", op)
	}
	push := maxPoolPush{uint32(b * c), uint32(h), uint32(w), 1}
	return l.dispatch1D(r, "maxpool_unpool4_t", nc, push, []vk.Access{vk.Texel1, vk.Texel1, vk.Write}, codes, dy, dx)
}

// Conv2DReLUMaxPoolRef is the CPU reference of Conv2DReLUMaxPool: Conv2DRef, then ReLUMaxPool2x2Ref, and the
// codes packed from the windows' argmax positions and signs.
func Conv2DReLUMaxPoolRef(x, w, bias []float32, s ConvShape) (y, codes []float32) {
	s = s.withDefaults()
	conv := Conv2DRef(x, w, bias, s, false)
	oh, ow := s.OH(), s.OW()
	y, idx := ReLUMaxPool2x2Ref(conv, s.B, s.Cout, oh, ow)
	return y, PoolCodesRef(conv, idx, s.B, s.Cout, oh, ow)
}

// PoolCodesRef packs the codes of a ReLU + 2×2 max pooling of x [b, c, h, w] (h even, w a multiple of 4) whose
// argmax indices MaxPool2x2Ref returned: for pooled window k of a group of four in a row, 8^k·(its argmax position
// in the window, row-major, + 4 where the maximum is > 0).
func PoolCodesRef(x []float32, idx []uint32, b, c, h, w int) []float32 {
	qh, qw := h/2, w/2
	cpr := (qw + 3) / 4
	codes := make([]float32, b*c*qh*cpr)
	for p := range b * c {
		for py := range qh {
			for px := range qw {
				i := idx[(p*qh+py)*qw+px]
				iy, ix := int(i)/w, int(i)%w
				code := uint32((iy-2*py)*2 + ix - 2*px)
				if x[p*h*w+int(i)] > 0 {
					code += 4
				}
				codes[(p*qh+py)*cpr+px/4] += float32(code << (3 * (px % 4)))
			}
		}
	}
	return codes
}
