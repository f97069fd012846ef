package kernels

import "github.com/sqnet/sqnet/vk"

// axpyPush mirrors axpy.comp's push constants.
type axpyPush struct {
	N uint32
	A float32
}

// Axpy records y = a·x + y over n elements, in place on y; the graph accumulates gradients of tensors with several
// consumers with it. x and y must not overlap.
func (l *Lib) Axpy(r *vk.Recorder, x, y vk.Range, n int, a float32) error {
	const op = "axpy"
	if err := need(op, "x", x, n); err != nil {
		return err
	}
	if err := need(op, "y", y, n); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"y", y}); err != nil {
		return err
	}
	return l.dispatch1D(r, "axpy", n, axpyPush{uint32(n), a}, []vk.Access{vk.Read, vk.ReadWrite}, x, y)
}

// AxpyRef is the CPU reference of Axpy (one rounding of a·x, then of the sum, as the shader computes it).
func AxpyRef(x, y []float32, a float32) []float32 {
	out := make([]float32, len(y))
	for i := range y {
		ax := a * x[i]
		out[i] = ax + y[i]
	}
	return out
}
