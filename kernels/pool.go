package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// maxPoolPush mirrors maxpool.comp's push constants.
type maxPoolPush struct{ Planes, H, W, Flags uint32 }

// checkPool validates a 2×2 pooling shape: every size positive and H, W ≥ 2 (an empty output is an error, as in
// PyTorch).
func checkPool(op string, b, c, h, w int) error {
	if err := positive(op, Dim{"B", b}, Dim{"C", c}, Dim{"H", h}, Dim{"W", w}); err != nil {
		return err
	}
	if h < 2 || w < 2 {
		return fmt.Errorf("%s: input %d×%d is smaller than the 2×2 window", op, h, w)
	}
	return nil
}

// MaxPool2x2 records 2×2, stride-2 max pooling of x [b, c, h, w] into y [b, c, h/2, w/2] (odd h or w floored, as
// PyTorch's default). Ties go to the first maximum in row-major window order; NaN propagates. No argmax indices
// are stored: MaxPool2x2Backward finds each window's maximum in x again, by the same rule, so x must be unchanged
// in between.
func (l *Lib) MaxPool2x2(r *vk.Recorder, x, y vk.Range, b, c, h, w int) error {
	return l.maxPool(r, "maxpool 2x2", x, y, b, c, h, w, 0)
}

// ReLUMaxPool2x2 records y = maxpool(relu(x)) in one pass (ReLU commutes with the window maximum, so it is applied
// to y); ReLUMaxPool2x2Backward is its gradient.
func (l *Lib) ReLUMaxPool2x2(r *vk.Recorder, x, y vk.Range, b, c, h, w int) error {
	return l.maxPool(r, "relu+maxpool 2x2", x, y, b, c, h, w, 1)
}

func (l *Lib) maxPool(r *vk.Recorder, op string, x, y vk.Range, b, c, h, w int, flags uint32) error {
	if err := checkPool(op, b, c, h, w); err != nil {
		return err
	}
	out := b * c * (h / 2) * (w / 2)
	if err := need(op, "x", x, b*c*h*w); err != nil {
		return err
	}
	if err := need(op, "y", y, out); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"y", y}); err != nil {
		return err
	}
	push := maxPoolPush{uint32(b * c), uint32(h), uint32(w), flags}
	if out%4 == 0 && y.Off%16 == 0 {
		// Four outputs an invocation, one vec4 store (see maxpool.comp's OUT4); with w a multiple of 4, read as
		// 2×4 blocks of vec4 texels (VEC4). With the argmax indices no longer stored, the relu+maxpool forwards
		// of a PGD-40 run on lavapipe (`bench attack --profile`, two alternations) took small 79–97 → 36–41 ms,
		// madry 142–144 → 77–87 ms; the backwards, which find the maxima again instead of loading indices,
		// small 100–119 → 81–90 ms, madry 181–184 → 174–188 ms.
		if w%4 == 0 && l.texelFits(vk.Texel4, x) {
			return l.dispatch1D(r, "maxpool_fwd4v_t", out/4, push, []vk.Access{vk.Texel4, vk.Write}, x, y)
		}
		shader, in := l.texel1Variant("maxpool_fwd4", x)
		return l.dispatch1D(r, shader, out/4, push, []vk.Access{in, vk.Write}, x, y)
	}
	shader, in := l.texel1Variant("maxpool_fwd", x)
	return l.dispatch1D(r, shader, out, push, []vk.Access{in, vk.Write}, x, y)
}

// MaxPool2x2Backward records dx [b, c, h, w] from dy [b, c, h/2, w/2] and the forward's input x: each dy value
// goes to its window's maximum in x (found as MaxPool2x2 finds it), every other dx element (including the floored
// last row/column) is zero. Every dx element is written exactly once, so dx needs no clearing.
func (l *Lib) MaxPool2x2Backward(r *vk.Recorder, x, dy, dx vk.Range, b, c, h, w int) error {
	return l.maxPoolBackward(r, "maxpool 2x2 backward", x, dy, dx, b, c, h, w, 0)
}

// ReLUMaxPool2x2Backward records the gradient of ReLUMaxPool2x2 with respect to its input x: MaxPool2x2Backward's
// dx, zero in the windows whose maximum is ≤ 0 (ReLU's gradient), in one pass.
func (l *Lib) ReLUMaxPool2x2Backward(r *vk.Recorder, x, dy, dx vk.Range, b, c, h, w int) error {
	return l.maxPoolBackward(r, "relu+maxpool 2x2 backward", x, dy, dx, b, c, h, w, 1)
}

func (l *Lib) maxPoolBackward(r *vk.Recorder, op string, x, dy, dx vk.Range, b, c, h, w int, flags uint32) error {
	if err := checkPool(op, b, c, h, w); err != nil {
		return err
	}
	n, out := b*c*h*w, b*c*(h/2)*(w/2)
	if err := needEach(op, sized{"x", x, n}, sized{"dy", dy, out}, sized{"dx", dx, n}); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"dx", dx}); err != nil {
		return err
	}
	if err := disjoint(op, named{"dy", dy}, named{"dx", dx}); err != nil {
		return err
	}
	push := maxPoolPush{uint32(b * c), uint32(h), uint32(w), flags}
	if h%2 == 0 && w%4 == 0 && dx.Off%16 == 0 && l.texelFits(vk.Texel4, x) && l.texelFits(vk.Texel1, dy) {
		// Two windows an invocation: x read as two vec4 texels, dx written as two vec4 rows (maxpool.comp's VEC4).
		return l.dispatch1D(r, "maxpool_bwd4v_t", out/2, push, []vk.Access{vk.Texel4, vk.Texel1, vk.Write}, x, dy, dx)
	}
	shader := "maxpool_bwd"
	if h%2 == 0 && w%2 == 0 && dx.Off%8 == 0 {
		shader = "maxpool_bwd2" // two vec2 stores a window (see maxpool.comp's VEC2)
	}
	shader, in := l.texel1Variant(shader, x, dy)
	return l.dispatch1D(r, shader, out, push, []vk.Access{in, in, vk.Write}, x, dy, dx)
}

// MaxPool2x2Ref is the CPU reference of MaxPool2x2: it returns y and idx.
func MaxPool2x2Ref(x []float32, b, c, h, w int) ([]float32, []uint32) {
	oh, ow := h/2, w/2
	y := make([]float32, b*c*oh*ow)
	idx := make([]uint32, len(y))
	for p := range b * c {
		plane := x[p*h*w : (p+1)*h*w]
		for oy := range oh {
			for ox := range ow {
				r0 := 2*oy*w + 2*ox
				bi, best := r0, plane[r0]
				for _, cand := range [3]int{r0 + 1, r0 + w, r0 + w + 1} {
					// PyTorch's rule: a strictly larger value or any NaN replaces the current maximum.
					if v := plane[cand]; v > best || math.IsNaN(float64(v)) {
						bi, best = cand, v
					}
				}
				o := (p*oh+oy)*ow + ox
				y[o], idx[o] = best, uint32(bi)
			}
		}
	}
	return y, idx
}

// MaxPool2x2BackwardRef is the CPU reference of MaxPool2x2Backward. Like the kernel, it drops a dy value whose
// index does not point into its own window.
func MaxPool2x2BackwardRef(idx []uint32, dy []float32, b, c, h, w int) []float32 {
	oh, ow := h/2, w/2
	dx := make([]float32, b*c*h*w)
	for p := range b * c {
		for oy := range oh {
			for ox := range ow {
				o := (p*oh+oy)*ow + ox
				iy, ix := int(idx[o])/w, int(idx[o])%w
				if iy/2 == oy && ix/2 == ox && iy < h {
					dx[p*h*w+iy*w+ix] = dy[o]
				}
			}
		}
	}
	return dx
}

// ReLUMaxPool2x2Ref is the CPU reference of ReLUMaxPool2x2: MaxPool2x2Ref's y with ReLU applied, and its idx.
func ReLUMaxPool2x2Ref(x []float32, b, c, h, w int) ([]float32, []uint32) {
	y, idx := MaxPool2x2Ref(x, b, c, h, w)
	for i, v := range y {
		y[i] = max(v, 0)
	}
	return y, idx
}

// ReLUMaxPool2x2BackwardRef is the CPU reference of ReLUMaxPool2x2Backward.
func ReLUMaxPool2x2BackwardRef(x []float32, idx []uint32, dy []float32, b, c, h, w int) []float32 {
	dx := MaxPool2x2BackwardRef(idx, dy, b, c, h, w)
	for i := range dx {
		if !(x[i] > 0) {
			dx[i] = 0
		}
	}
	return dx
}
