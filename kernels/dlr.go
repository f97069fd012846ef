package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// DLRKind selects one of dlr.comp's losses.
type DLRKind int

// The losses of AutoAttack's gradient attacks (Croce & Hein 2020), all ascended by an attack.
const (
	// DLR is the untargeted Difference of Logits Ratio (z_o − z_y)/(z_π1 − z_π3 + 1e-12), z_o = max_{j≠y} z_j: the
	// CW margin divided by a logit spread, so rescaling the logits changes nothing (K ≥ 3).
	DLR DLRKind = iota
	// DLRTargeted is (z_t − z_y)/(z_π1 − (z_π3 + z_π4)/2 + 1e-12), APGD-T's loss (K ≥ 4).
	DLRTargeted
	// TargetMargin is z_t − z_y, whose gradient is the normal of FAB's linearised decision boundary (K ≥ 2).
	TargetMargin
)

// dlrPush mirrors dlr.comp's push constants.
type dlrPush struct {
	B, K  uint32
	Scale float32
}

// dlrShader is the shader base name and the fewest classes of each kind.
var dlrShader = [...]struct {
	name string
	minK int
}{DLR: {"dlr", 3}, DLRTargeted: {"dlr_t", 4}, TargetMargin: {"margin_t", 2}}

// String names the kind.
func (k DLRKind) String() string {
	if k < DLR || k > TargetMargin {
		return fmt.Sprintf("dlr kind %d", int(k))
	}
	return [...]string{"dlr", "dlr-targeted", "target-margin"}[k]
}

// Targeted reports whether the kind reads targets.
func (k DLRKind) Targeted() bool { return k != DLR }

// MinClasses is the fewest classes the kind is defined for.
func (k DLRKind) MinClasses() int {
	if k < DLR || k > TargetMargin {
		return 0
	}
	return dlrShader[k].minK
}

// checkDLR validates a DLR-family call: the kind, logits [b, k], labels [b] and, for the targeted kinds, targets [b].
func checkDLR(op string, kind DLRKind, logits, labels, targets vk.Range, b, k int) error {
	if kind < DLR || kind > TargetMargin {
		return fmt.Errorf("%s: unknown kind %d", op, kind)
	}
	if err := checkLoss(op, logits, labels, b, k, kind.MinClasses()); err != nil {
		return err
	}
	if kind.Targeted() {
		return needU32(op, "targets", targets, b)
	}
	if targets.Buf != nil {
		return fmt.Errorf("%s: the untargeted %s takes no targets", op, kind)
	}
	return nil
}

// DLRLoss records loss[i] of the given kind for logits [b, k], labels [b] and (targeted kinds) targets [b]; pass
// the zero Range as targets for DLR. A label or target ≥ k yields NaN.
func (l *Lib) DLRLoss(r *vk.Recorder, kind DLRKind, logits, labels, targets, loss vk.Range, b, k int) error {
	op := kind.String() + " loss"
	if err := checkDLR(op, kind, logits, labels, targets, b, k); err != nil {
		return err
	}
	if err := need(op, "loss", loss, b); err != nil {
		return err
	}
	ops, bufs := dlrInputs(kind, logits, labels, targets)
	if err := disjoint(op, append(ops, named{"loss", loss})...); err != nil {
		return err
	}
	return l.dispatch1D(r, dlrShader[kind].name+"_fwd", b, dlrPush{uint32(b), uint32(k), 0}, readsThenWrite(len(bufs)),
		append(bufs, loss)...)
}

// DLRLossBackward records dlogits = g_i·∂loss_i/∂logits of DLRLoss, the sort's indices held fixed, with g_i = scale
// when dloss is the zero Range, else scale·dloss[i].
func (l *Lib) DLRLossBackward(r *vk.Recorder, kind DLRKind, logits, labels, targets, dloss, dlogits vk.Range, b,
	k int, scale float32) error {
	op := kind.String() + " loss backward"
	if err := checkDLR(op, kind, logits, labels, targets, b, k); err != nil {
		return err
	}
	if err := need(op, "dlogits", dlogits, b*k); err != nil {
		return err
	}
	ops, bufs := dlrInputs(kind, logits, labels, targets)
	ops = append(ops, named{"dlogits", dlogits})
	shader := dlrShader[kind].name + "_bwd"
	if dloss.Buf != nil {
		if err := need(op, "dloss", dloss, b); err != nil {
			return err
		}
		ops = append(ops, named{"dloss", dloss})
		bufs = append(bufs, dloss)
		shader += "_up"
	}
	if err := disjoint(op, ops...); err != nil {
		return err
	}
	return l.dispatch1D(r, shader, b, dlrPush{uint32(b), uint32(k), scale}, readsThenWrite(len(bufs)),
		append(bufs, dlogits)...)
}

// dlrInputs lists the inputs a DLR kernel of kind binds, in binding order, with their names for the overlap check:
// logits, labels, and the targets of the targeted kinds.
func dlrInputs(kind DLRKind, logits, labels, targets vk.Range) ([]named, []vk.Range) {
	ops, bufs := []named{{"logits", logits}, {"labels", labels}}, []vk.Range{logits, labels}
	if kind.Targeted() {
		ops, bufs = append(ops, named{"targets", targets}), append(bufs, targets)
	}
	return ops, bufs
}

// readsThenWrite is the access list of n read bindings followed by one written binding.
func readsThenWrite(n int) []vk.Access {
	access := make([]vk.Access, n+1)
	for i := range n {
		access[i] = vk.Read
	}
	access[n] = vk.Write
	return access
}

// top4 returns the indices of the four largest values of z in decreasing order, a tie keeping the lower index
// first (fewer when z is shorter), as the shader's insertion.
func top4(z []float64) []int {
	idx := make([]int, 0, 4)
	for j, v := range z {
		if len(idx) == 4 && !(v > z[idx[3]]) {
			continue
		}
		p := len(idx)
		if p == 4 {
			p = 3 // the smallest of the four drops out
		} else {
			idx = append(idx, 0)
		}
		for p > 0 && v > z[idx[p-1]] {
			idx[p] = idx[p-1]
			p--
		}
		idx[p] = j
	}
	return idx
}

// dlrRow64 is the float64 core of the DLR references: one row's loss and its gradient (the sort held fixed).
func dlrRow64(kind DLRKind, z []float64, y, t int) (float64, []float64) {
	k := len(z)
	g := make([]float64, k)
	if y < 0 || y >= k || (kind.Targeted() && (t < 0 || t >= k)) {
		for j := range g {
			g[j] = math.NaN()
		}
		return math.NaN(), g
	}
	if kind == TargetMargin {
		g[t]++
		g[y]--
		return z[t] - z[y], g
	}
	idx := top4(z)
	o, den := t, 0.0
	if kind == DLR {
		o = idx[0]
		if o == y {
			o = idx[1]
		}
		den = z[idx[0]] - z[idx[2]] + 1e-12
	} else {
		den = z[idx[0]] - 0.5*(z[idx[2]]+z[idx[3]]) + 1e-12
	}
	num := z[o] - z[y]
	q := num / den / den
	g[o] += 1 / den
	g[y] -= 1 / den
	g[idx[0]] -= q
	if kind == DLR {
		g[idx[2]] += q
	} else {
		g[idx[2]] += q / 2
		g[idx[3]] += q / 2
	}
	return num / den, g
}

// DLRLossRef is the CPU reference of DLRLoss, computed in float64 (targets nil for DLR).
func DLRLossRef(kind DLRKind, logits []float32, labels, targets []uint32, b, k int) []float32 {
	loss := make([]float32, b)
	for i := range b {
		t := 0
		if targets != nil {
			t = int(targets[i])
		}
		v, _ := dlrRow64(kind, to64s(logits[i*k:(i+1)*k]), int(labels[i]), t)
		loss[i] = float32(v)
	}
	return loss
}

// DLRLossBackwardRef is the CPU reference of DLRLossBackward; dloss nil means g_i = scale.
func DLRLossBackwardRef(kind DLRKind, logits []float32, labels, targets []uint32, dloss []float32, b, k int,
	scale float32) []float32 {
	d := make([]float32, b*k)
	for i := range b {
		t := 0
		if targets != nil {
			t = int(targets[i])
		}
		gi := float64(scale)
		if dloss != nil {
			gi *= float64(dloss[i])
		}
		_, g := dlrRow64(kind, to64s(logits[i*k:(i+1)*k]), int(labels[i]), t)
		for j, v := range g {
			d[i*k+j] = float32(gi * v)
		}
	}
	return d
}
