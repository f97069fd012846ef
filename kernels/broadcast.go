package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// broadcastPush mirrors broadcast.comp's push constants.
type broadcastPush struct {
	N, D uint32
	S    float32
}

// RowBroadcast records y[r, j] = s·x[r] for y of shape [rows, d]: the backward pass of RowMean with s = 1/d
// (global average pooling). It equals RowBroadcastRef bit for bit.
func (l *Lib) RowBroadcast(r *vk.Recorder, x, y vk.Range, rows, d int, s float32) error {
	const op = "row broadcast"
	if err := positive(op, Dim{"rows", rows}, Dim{"d", d}); err != nil {
		return err
	}
	if rows*d > math.MaxInt32 {
		return fmt.Errorf("%s: %d elements; at most %d", op, rows*d, math.MaxInt32)
	}
	if err := needEach(op, sized{"x", x, rows}, sized{"y", y, rows * d}); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"y", y}); err != nil {
		return err
	}
	return l.dispatch1D(r, "broadcast_rows", rows*d, broadcastPush{uint32(rows * d), uint32(d), s},
		[]vk.Access{vk.Read, vk.Write}, x, y)
}

// RowBroadcastRef is the CPU reference of RowBroadcast.
func RowBroadcastRef(x []float32, rows, d int, s float32) []float32 {
	y := make([]float32, rows*d)
	for i := range y {
		y[i] = s * x[i/d]
	}
	return y
}
