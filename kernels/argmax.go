package kernels

import "github.com/sqnet/sqnet/vk"

// argmaxPush mirrors argmax.comp's push constants.
type argmaxPush struct{ B, K uint32 }

// Argmax records pred[i] = argmax_j x[i, j] (uint32) for x [b, k]: ties go to the first index, and a NaN counts
// as the largest value (the first NaN wins), as torch.argmax.
func (l *Lib) Argmax(r *vk.Recorder, x, pred vk.Range, b, k int) error {
	const op = "argmax"
	if err := positive(op, Dim{"B", b}, Dim{"K", k}); err != nil {
		return err
	}
	if err := need(op, "x", x, b*k); err != nil {
		return err
	}
	if err := needU32(op, "pred", pred, b); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"pred", pred}); err != nil {
		return err
	}
	return l.dispatch1D(r, "argmax_row", b, argmaxPush{uint32(b), uint32(k)}, []vk.Access{vk.Read, vk.Write}, x, pred)
}

// Correct records pred [b] as Argmax does and count[0] (uint32) = the number of rows whose pred equals labels[i]
// (a label ≥ k never does), in one dispatch of one workgroup: each invocation scans a fixed set of rows and the
// counts are summed with a fixed tree, so the result needs no atomics and no second pass.
func (l *Lib) Correct(r *vk.Recorder, x, labels, pred, count vk.Range, b, k int) error {
	const op = "correct count"
	if err := positive(op, Dim{"B", b}, Dim{"K", k}); err != nil {
		return err
	}
	if err := need(op, "x", x, b*k); err != nil {
		return err
	}
	for _, o := range []named{{"labels", labels}, {"pred", pred}} {
		if err := needU32(op, o.name, o.r, b); err != nil {
			return err
		}
	}
	if err := needU32(op, "count", count, 1); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"labels", labels}, named{"pred", pred},
		named{"count", count}); err != nil {
		return err
	}
	p, err := l.pipeline(vk.PipelineSpec{Shader: "argmax_count",
		Bindings: []vk.Access{vk.Read, vk.Write, vk.Read, vk.Write},
		PushSize: pushSize(argmaxPush{}), Local: [3]uint32{l.redWG(b), 1, 1}})
	if err != nil {
		return err
	}
	return r.Dispatch(p, [3]uint32{1, 1, 1}, argmaxPush{uint32(b), uint32(k)}, x, pred, labels, count)
}

// ArgmaxRef is the CPU reference of Argmax.
func ArgmaxRef(x []float32, b, k int) []uint32 {
	pred := make([]uint32, b)
	for i := range b {
		row := x[i*k : (i+1)*k]
		jb := 0
		for j := 1; j < k; j++ {
			if after(row[j], row[jb]) {
				jb = j
			}
		}
		pred[i] = uint32(jb)
	}
	return pred
}

// CorrectRef is the CPU reference of Correct: the predictions and the number equal to their label.
func CorrectRef(x []float32, labels []uint32, b, k int) ([]uint32, uint32) {
	pred := ArgmaxRef(x, b, k)
	var n uint32
	for i, p := range pred {
		if p == labels[i] {
			n++
		}
	}
	return pred, n
}
