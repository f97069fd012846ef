package kernels

import "github.com/sqnet/sqnet/vk"

// reluPush mirrors relu.comp's push constants.
type reluPush struct{ N uint32 }

// ReLU records y = max(x, 0) over n elements. y may alias x (in place).
func (l *Lib) ReLU(r *vk.Recorder, x, y vk.Range, n int) error {
	const op = "relu"
	if err := needEach(op, sized{"x", x, n}, sized{"y", y, n}); err != nil {
		return err
	}
	access := []vk.Access{vk.Read, vk.Write}
	return l.dispatch1D(r, "relu_fwd", n, reluPush{uint32(n)}, access, x, y)
}

// ReLUBackward records dx = dy · [x > 0] over n elements, x being the forward input.
func (l *Lib) ReLUBackward(r *vk.Recorder, x, dy, dx vk.Range, n int) error {
	const op = "relu backward"
	if err := needEach(op, sized{"x", x, n}, sized{"dy", dy, n}, sized{"dx", dx, n}); err != nil {
		return err
	}
	access := []vk.Access{vk.Read, vk.Read, vk.Write}
	return l.dispatch1D(r, "relu_bwd", n, reluPush{uint32(n)}, access, x, dy, dx)
}

// ReLURef is the CPU reference of ReLU.
func ReLURef(x []float32) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = max(v, 0)
	}
	return y
}

// ReLUBackwardRef is the CPU reference of ReLUBackward.
func ReLUBackwardRef(x, dy []float32) []float32 {
	dx := make([]float32, len(x))
	for i, v := range x {
		if v > 0 {
			dx[i] = dy[i]
		}
	}
	return dx
}
