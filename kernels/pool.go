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
// PyTorch's default) and idx [b, c, h/2, w/2] (uint32): the flat index iy·w + ix of each maximum inside its input
// plane, PyTorch's return_indices convention. Ties go to the first maximum in row-major window order; NaN
// propagates.
func (l *Lib) MaxPool2x2(r *vk.Recorder, x, y, idx vk.Range, b, c, h, w int) error {
	return l.maxPool(r, "maxpool 2x2", x, y, idx, b, c, h, w, 0)
}

// ReLUMaxPool2x2 records y = maxpool(relu(x)) in one pass (ReLU commutes with the window maximum, so it is applied
// to y), with the argmax indices of x as MaxPool2x2 gives them; ReLUMaxPool2x2Backward is its gradient.
func (l *Lib) ReLUMaxPool2x2(r *vk.Recorder, x, y, idx vk.Range, b, c, h, w int) error {
	return l.maxPool(r, "relu+maxpool 2x2", x, y, idx, b, c, h, w, 1)
}

func (l *Lib) maxPool(r *vk.Recorder, op string, x, y, idx vk.Range, b, c, h, w int, flags uint32) error {
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
	if err := needU32(op, "idx", idx, out); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"y", y}, named{"idx", idx}); err != nil {
		return err
	}
	push := maxPoolPush{uint32(b * c), uint32(h), uint32(w), flags}
	if w%4 == 0 && y.Off%8 == 0 && idx.Off%8 == 0 && l.texelFits(vk.Texel4, x) {
		// Two windows an invocation from one 2×4 block (see maxpool.comp's VEC4). PGD-40 at batch 50 on lavapipe,
		// both layers' relu+maxpool together (the 28-wide first layer takes this path): madry 2.2–2.7 → 3.7–4.5
		// GB/s, small 2.0–2.8 → 2.9–3.8 (two alternations of `bench attack --profile`).
		return l.dispatch1D(r, "maxpool_fwd4_t", out/2, push, []vk.Access{vk.Texel4, vk.Write, vk.Write}, x, y, idx)
	}
	shader, in := l.texel1Variant("maxpool_fwd", x)
	access := []vk.Access{in, vk.Write, vk.Write}
	return l.dispatch1D(r, shader, out, push, access, x, y, idx)
}

// MaxPool2x2Backward records dx [b, c, h, w] from dy [b, c, h/2, w/2] and the forward's idx: each dy value goes to
// its window's maximum, every other dx element (including the floored last row/column) is zero. Every dx element
// is written exactly once, so dx needs no clearing.
func (l *Lib) MaxPool2x2Backward(r *vk.Recorder, idx, dy, dx vk.Range, b, c, h, w int) error {
	return l.maxPoolBackward(r, "maxpool 2x2 backward", vk.Range{}, idx, dy, dx, b, c, h, w)
}

// ReLUMaxPool2x2Backward records the gradient of ReLUMaxPool2x2 with respect to its input x: MaxPool2x2Backward's
// dx, zero wherever x ≤ 0 (ReLU's gradient), in one pass.
func (l *Lib) ReLUMaxPool2x2Backward(r *vk.Recorder, x, idx, dy, dx vk.Range, b, c, h, w int) error {
	if x.Buf == nil {
		return fmt.Errorf("relu+maxpool 2x2 backward: x is nil")
	}
	return l.maxPoolBackward(r, "relu+maxpool 2x2 backward", x, idx, dy, dx, b, c, h, w)
}

// maxPoolBackward records maxpool_bwd; a nil x means no ReLU mask.
func (l *Lib) maxPoolBackward(r *vk.Recorder, op string, x, idx, dy, dx vk.Range, b, c, h, w int) error {
	if err := checkPool(op, b, c, h, w); err != nil {
		return err
	}
	out := b * c * (h / 2) * (w / 2)
	if err := needU32(op, "idx", idx, out); err != nil {
		return err
	}
	if err := need(op, "dy", dy, out); err != nil {
		return err
	}
	if err := need(op, "dx", dx, b*c*h*w); err != nil {
		return err
	}
	if err := disjoint(op, named{"idx", idx}, named{"dy", dy}, named{"dx", dx}); err != nil {
		return err
	}
	flags := uint32(0)
	if x.Buf != nil {
		if err := need(op, "x", x, b*c*h*w); err != nil {
			return err
		}
		if err := disjoint(op, named{"x", x}, named{"dx", dx}); err != nil {
			return err
		}
		flags = 1
	} else {
		x = dy // bound but never read without the mask
	}
	shader, in, n := "maxpool_bwd", vk.Read, out
	switch {
	case h%2 == 0 && w%4 == 0 && dx.Off%16 == 0 && dy.Off%8 == 0 && idx.Off%8 == 0:
		// Two windows an invocation, two vec4 stores (see maxpool.comp's VEC4): the same PGD-40 runs, madry
		// 3.1–3.9 → 4.2–5.4 GB/s, small 2.5–3.6 → 3.2–5.2.
		shader, n = "maxpool_bwd4", out/2
	case h%2 == 0 && w%2 == 0 && dx.Off%8 == 0:
		shader = "maxpool_bwd2" // two vec2 stores a window (see maxpool.comp's VEC2)
	}
	if flags != 0 {
		shader, in = l.texel1Variant(shader, x)
	}
	access := []vk.Access{vk.Read, vk.Read, in, vk.Write}
	push := maxPoolPush{uint32(b * c), uint32(h), uint32(w), flags}
	return l.dispatch1D(r, shader, n, push, access, idx, dy, x, dx)
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
