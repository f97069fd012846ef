package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// xentPush mirrors xent.comp's push constants.
type xentPush struct {
	B, K  uint32
	Scale float32
}

// cwPush mirrors cw.comp's push constants.
type cwPush struct {
	B, K         uint32
	Kappa, Scale float32
}

// checkLoss validates the operands every loss kernel shares: logits [b, k] and uint32 labels [b]. Label values
// live on the device and cannot be checked here; the kernels turn a label ≥ k into a NaN loss and NaN gradients.
func checkLoss(op string, logits, labels vk.Range, b, k, minK int) error {
	if err := positive(op, Dim{"B", b}, Dim{"K", k}); err != nil {
		return err
	}
	if k < minK {
		return fmt.Errorf("%s: K = %d; needs at least %d classes", op, k, minK)
	}
	if err := need(op, "logits", logits, b*k); err != nil {
		return err
	}
	return needU32(op, "labels", labels, b)
}

// lossBackward records the backward of a per-example loss shader: dlogits = g_i·∂loss_i/∂logits with
// g_i = scale, or scale·dloss[i] when dloss is a non-nil Range.
func (l *Lib) lossBackward(r *vk.Recorder, op, shader string, push any, logits, labels, dloss, dlogits vk.Range,
	b, k int) error {
	if err := need(op, "dlogits", dlogits, b*k); err != nil {
		return err
	}
	if dloss.Buf == nil {
		if err := disjoint(op, named{"logits", logits}, named{"labels", labels}, named{"dlogits", dlogits}); err != nil {
			return err
		}
		access := []vk.Access{vk.Read, vk.Read, vk.Write}
		return l.dispatch1D(r, shader, b, push, access, logits, labels, dlogits)
	}
	if err := need(op, "dloss", dloss, b); err != nil {
		return err
	}
	if err := disjoint(op, named{"logits", logits}, named{"labels", labels}, named{"dloss", dloss},
		named{"dlogits", dlogits}); err != nil {
		return err
	}
	access := []vk.Access{vk.Read, vk.Read, vk.Read, vk.Write}
	return l.dispatch1D(r, shader+"_up", b, push, access, logits, labels, dloss, dlogits)
}

// SoftmaxXent records the per-example softmax cross-entropy loss[i] = −log softmax(logits[i])[labels[i]] for
// logits [b, k] and uint32 labels [b], computed as a max-subtracted log-sum-exp so large logits cannot overflow.
// A label ≥ k yields a NaN loss.
func (l *Lib) SoftmaxXent(r *vk.Recorder, logits, labels, loss vk.Range, b, k int) error {
	const op = "softmax cross-entropy"
	if err := checkLoss(op, logits, labels, b, k, 1); err != nil {
		return err
	}
	if err := need(op, "loss", loss, b); err != nil {
		return err
	}
	if err := disjoint(op, named{"logits", logits}, named{"labels", labels}, named{"loss", loss}); err != nil {
		return err
	}
	access := []vk.Access{vk.Read, vk.Read, vk.Write}
	return l.dispatch1D(r, "xent_fwd", b, xentPush{uint32(b), uint32(k), 0}, access, logits, labels, loss)
}

// SoftmaxXentBackward records dlogits[i, j] = (softmax(logits[i])_j − [j = labels[i]])·g_i, where g_i = scale when
// dloss is the zero Range (scale = 1/b is the gradient of the mean loss, 1 of the summed loss, as attacks use),
// and g_i = scale·dloss[i] for per-example upstream gradients dloss [b]. A label ≥ k yields a NaN row.
func (l *Lib) SoftmaxXentBackward(r *vk.Recorder, logits, labels, dloss, dlogits vk.Range, b, k int,
	scale float32) error {
	const op = "softmax cross-entropy backward"
	if err := checkLoss(op, logits, labels, b, k, 1); err != nil {
		return err
	}
	return l.lossBackward(r, op, "xent_bwd", xentPush{uint32(b), uint32(k), scale}, logits, labels, dloss, dlogits,
		b, k)
}

// CWLoss records the untargeted Carlini–Wagner margin loss[i] = min(max_{j≠y} logits[i, j] − logits[i, y], kappa)
// with y = labels[i]: positive once the example is misclassified, the quantity an attack ascends. It is the
// negation of CW's f6 = max(z_y − max_{j≠y} z_j, −κ), so kappa is the confidence at which the attack stops
// gaining; pass +Inf for no clamp. k must be at least 2. A label ≥ k yields a NaN loss.
func (l *Lib) CWLoss(r *vk.Recorder, logits, labels, loss vk.Range, b, k int, kappa float32) error {
	const op = "cw loss"
	if err := checkLoss(op, logits, labels, b, k, 2); err != nil {
		return err
	}
	if math.IsNaN(float64(kappa)) {
		return fmt.Errorf("%s: kappa is NaN", op)
	}
	if err := need(op, "loss", loss, b); err != nil {
		return err
	}
	if err := disjoint(op, named{"logits", logits}, named{"labels", labels}, named{"loss", loss}); err != nil {
		return err
	}
	access := []vk.Access{vk.Read, vk.Read, vk.Write}
	return l.dispatch1D(r, "cw_fwd", b, cwPush{uint32(b), uint32(k), kappa, 0}, access, logits, labels, loss)
}

// CWLossBackward records dlogits of CWLoss: g_i at the first argmax j* ≠ y, −g_i at y, zero elsewhere, and a zero
// row where the margin exceeds kappa (the clamp is flat there). g_i is scale, or scale·dloss[i] when dloss is a
// non-nil Range [b] of upstream gradients.
func (l *Lib) CWLossBackward(r *vk.Recorder, logits, labels, dloss, dlogits vk.Range, b, k int,
	kappa, scale float32) error {
	const op = "cw loss backward"
	if err := checkLoss(op, logits, labels, b, k, 2); err != nil {
		return err
	}
	if math.IsNaN(float64(kappa)) {
		return fmt.Errorf("%s: kappa is NaN", op)
	}
	return l.lossBackward(r, op, "cw_bwd", cwPush{uint32(b), uint32(k), kappa, scale}, logits, labels, dloss,
		dlogits, b, k)
}

// xentRow64 is the float64 core of SoftmaxXentRef: the loss of one row and its softmax, or NaN for a bad label.
func xentRow64(z []float64, y int) (loss float64, p []float64) {
	m := z[0]
	for _, v := range z[1:] {
		m = max(m, v)
	}
	s := 0.0
	for _, v := range z {
		s += math.Exp(v - m)
	}
	p = make([]float64, len(z))
	for j, v := range z {
		p[j] = math.Exp(v-m) / s
	}
	if y < 0 || y >= len(z) {
		return math.NaN(), p
	}
	return math.Log(s) - (z[y] - m), p
}

// SoftmaxXentRef is the CPU reference of SoftmaxXent, computed in float64.
func SoftmaxXentRef(logits []float32, labels []uint32, b, k int) []float32 {
	loss := make([]float32, b)
	for i := range b {
		v, _ := xentRow64(to64s(logits[i*k:(i+1)*k]), int(labels[i]))
		loss[i] = float32(v)
	}
	return loss
}

// SoftmaxXentBackwardRef is the CPU reference of SoftmaxXentBackward; dloss nil means g_i = scale.
func SoftmaxXentBackwardRef(logits []float32, labels []uint32, dloss []float32, b, k int, scale float32) []float32 {
	d := make([]float32, b*k)
	for i := range b {
		g := float64(scale)
		if dloss != nil {
			g *= float64(dloss[i])
		}
		y := int(labels[i])
		_, p := xentRow64(to64s(logits[i*k:(i+1)*k]), y)
		for j := range k {
			v := p[j]
			if j == y {
				v--
			}
			if y >= k {
				v = math.NaN()
			}
			d[i*k+j] = float32(v * g)
		}
	}
	return d
}

// cwRow is the core of the CW references: the first argmax j* ≠ y (NaN counting as largest) and the margin
// z_j* − z_y, computed in float32 like the kernel, so the reference is exact.
func cwRow(z []float32, y int) (int, float32) {
	jb := 0
	if y == 0 {
		jb = 1
	}
	for j := jb + 1; j < len(z); j++ {
		if j != y && after(z[j], z[jb]) {
			jb = j
		}
	}
	if y >= len(z) {
		return jb, float32(math.NaN())
	}
	return jb, z[jb] - z[y]
}

// after reports whether v replaces best in a first-maximum scan in which NaN counts as the largest value.
func after(v, best float32) bool {
	return v > best || (v != v && best == best)
}

// CWLossRef is the CPU reference of CWLoss.
func CWLossRef(logits []float32, labels []uint32, b, k int, kappa float32) []float32 {
	loss := make([]float32, b)
	for i := range b {
		_, m := cwRow(logits[i*k:(i+1)*k], int(labels[i]))
		if m > kappa {
			m = kappa
		}
		loss[i] = m
	}
	return loss
}

// CWLossBackwardRef is the CPU reference of CWLossBackward; dloss nil means g_i = scale.
func CWLossBackwardRef(logits []float32, labels []uint32, dloss []float32, b, k int, kappa, scale float32) []float32 {
	d := make([]float32, b*k)
	for i := range b {
		g := scale
		if dloss != nil {
			g *= dloss[i]
		}
		y := int(labels[i])
		jb, m := cwRow(logits[i*k:(i+1)*k], y)
		row := d[i*k : (i+1)*k]
		switch {
		case y >= k:
			for j := range row {
				row[j] = float32(math.NaN())
			}
		case m <= kappa:
			row[jb], row[y] = g, -g
		}
	}
	return d
}
