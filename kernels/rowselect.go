package kernels

import (
	"fmt"

	"github.com/sqnet/sqnet/vk"
)

// rowPush mirrors rowselect.comp's push constants.
type rowPush struct {
	N, D, S, Col uint32
	Beta         float32
}

// checkRows validates b rows of d values and the operands that hold b·d floats.
func checkRows(op string, b, d int, ops ...sized) error {
	if err := positive(op, Dim{"B", b}, Dim{"D", d}); err != nil {
		return err
	}
	return needEach(op, ops...)
}

// RowSelect records dst[r, :] = src[r, :] for every row r of b rows of d values whose flag flags[r·stride + col]
// is nonzero (the attacks keep, restore and commit per-example points with it). src and dst must not overlap.
func (l *Lib) RowSelect(r *vk.Recorder, flags, src, dst vk.Range, b, d, stride, col int) error {
	const op = "row select"
	if err := checkRows(op, b, d, sized{"src", src, b * d}, sized{"dst", dst, b * d}); err != nil {
		return err
	}
	if stride < 1 || col < 0 || col >= stride {
		return fmt.Errorf("%s: flag column %d of rows of %d", op, col, stride)
	}
	if err := need(op, "flags", flags, (b-1)*stride+col+1); err != nil {
		return err
	}
	if err := disjoint(op, named{"src", src}, named{"dst", dst}, named{"flags", flags}); err != nil {
		return err
	}
	// Four elements of a row per invocation when a row holds a multiple of four (no vec4 straddles two rows) and
	// the row data are 16-byte aligned; the same for Witness and FABBackstep.
	shader, per := vec4Variant("rowselect", d, src, dst)
	p := rowPush{N: uint32(b * d / per), D: uint32(d / per), S: uint32(stride), Col: uint32(col)}
	return l.dispatch1D(r, shader, b*d/per, p, []vk.Access{vk.Read, vk.Read, vk.ReadWrite}, flags, src, dst)
}

// Witness records, for each of b rows whose prediction pred[r] (uint32) differs from labels[r], adv[r, :] = x[r, :]
// and fooled[r] = 1 (other rows unchanged): every point an attack visits is checked against a classifier, and the
// latest one that fools it is kept.
func (l *Lib) Witness(r *vk.Recorder, pred, labels, x, adv, fooled vk.Range, b, d int) error {
	const op = "witness"
	if err := checkRows(op, b, d, sized{"x", x, b * d}, sized{"adv", adv, b * d}, sized{"fooled", fooled, b}); err != nil {
		return err
	}
	if err := needU32(op, "pred", pred, b); err != nil {
		return err
	}
	if err := needU32(op, "labels", labels, b); err != nil {
		return err
	}
	if err := disjoint(op, named{"pred", pred}, named{"labels", labels}, named{"x", x}, named{"adv", adv},
		named{"fooled", fooled}); err != nil {
		return err
	}
	shader, per := vec4Variant("witness", d, x, adv)
	p := rowPush{N: uint32(b * d / per), D: uint32(d / per)}
	return l.dispatch1D(r, shader, b*d/per, p, []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite, vk.ReadWrite},
		pred, labels, x, adv, fooled)
}

// FABBackstep records x[r, :] = x0[r, :] + beta·(x[r, :] − x0[r, :]) for each of b rows whose prediction pred[r]
// differs from labels[r]: FAB's step back towards the clean image from an adversarial point.
func (l *Lib) FABBackstep(r *vk.Recorder, pred, labels, x0, x vk.Range, b, d int, beta float32) error {
	const op = "fab backstep"
	if err := checkRows(op, b, d, sized{"x0", x0, b * d}, sized{"x", x, b * d}); err != nil {
		return err
	}
	if err := needU32(op, "pred", pred, b); err != nil {
		return err
	}
	if err := needU32(op, "labels", labels, b); err != nil {
		return err
	}
	if !(beta >= 0 && beta <= 1) {
		return fmt.Errorf("%s: β = %v, want 0 ≤ β ≤ 1", op, beta)
	}
	if err := disjoint(op, named{"pred", pred}, named{"labels", labels}, named{"x0", x0}, named{"x", x}); err != nil {
		return err
	}
	shader, per := vec4Variant("fab_backstep", d, x0, x)
	p := rowPush{N: uint32(b * d / per), D: uint32(d / per), Beta: beta}
	return l.dispatch1D(r, shader, b*d/per, p, []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite},
		pred, labels, x0, x)
}

// RowSelectRef is the CPU reference of RowSelect: the new dst.
func RowSelectRef(flags, src, dst []float32, b, d, stride, col int) []float32 {
	out := append([]float32(nil), dst...)
	for i := range b {
		if flags[i*stride+col] != 0 {
			copy(out[i*d:(i+1)*d], src[i*d:(i+1)*d])
		}
	}
	return out
}

// WitnessRef is the CPU reference of Witness: the new adv and fooled.
func WitnessRef(pred, labels []uint32, x, adv, fooled []float32, b, d int) ([]float32, []float32) {
	na, nf := append([]float32(nil), adv...), append([]float32(nil), fooled...)
	for i := range b {
		if pred[i] != labels[i] {
			copy(na[i*d:(i+1)*d], x[i*d:(i+1)*d])
			nf[i] = 1
		}
	}
	return na, nf
}

// FABBackstepRef is the CPU reference of FABBackstep: the new x.
func FABBackstepRef(pred, labels []uint32, x0, x []float32, b, d int, beta float32) []float32 {
	out := append([]float32(nil), x...)
	for i := range b {
		if pred[i] == labels[i] {
			continue
		}
		for j := i * d; j < (i+1)*d; j++ {
			out[j] = float32(x0[j] + float32(beta*float32(x[j]-x0[j])))
		}
	}
	return out
}
