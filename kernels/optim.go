package kernels

import (
	"fmt"
	"math"
	"slices"

	"github.com/sqnet/sqnet/vk"
)

// SGDParams are the hyper-parameters of SGDStep, as torch.optim.SGD's (dampening 0).
type SGDParams struct {
	LR          float32 // learning rate, ≥ 0
	Momentum    float32 // μ, ≥ 0 (0: plain SGD)
	WeightDecay float32 // L2 penalty added to the gradient, ≥ 0
	Nesterov    bool    // Nesterov momentum (needs Momentum > 0)
}

// sgdPush mirrors sgd.comp's push constants.
type sgdPush struct {
	N                uint32
	LR, Momentum, WD float32
	Nesterov         uint32
}

// AdamParams are the hyper-parameters of AdamStep, as torch.optim.Adam's (amsgrad off).
type AdamParams struct {
	LR           float32 // learning rate, ≥ 0
	Beta1, Beta2 float32 // moment decay rates in [0, 1)
	Eps          float32 // added to √v̂, ≥ 0
	WeightDecay  float32 // L2 penalty added to the gradient, ≥ 0
}

// DefaultAdam returns PyTorch's defaults with learning rate lr: β = (0.9, 0.999), ε = 1e-8, no weight decay.
func DefaultAdam(lr float32) AdamParams {
	return AdamParams{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// adamPush mirrors adam.comp's push constants.
type adamPush struct {
	N                             uint32
	OneMinusB1, Beta2, OneMinusB2 float32
	Eps, WD                       float32
	StepSize, BC2Sqrt             float32
}

// finiteNonNeg reports whether v is finite and ≥ 0.
func finiteNonNeg(v float32) bool { return v >= 0 && !math.IsInf(float64(v), 1) }

func (p SGDParams) check(op string) error {
	switch {
	case !finiteNonNeg(p.LR):
		return fmt.Errorf("%s: learning rate %v; it must be finite and ≥ 0", op, p.LR)
	case !finiteNonNeg(p.Momentum):
		return fmt.Errorf("%s: momentum %v; it must be finite and ≥ 0", op, p.Momentum)
	case !finiteNonNeg(p.WeightDecay):
		return fmt.Errorf("%s: weight decay %v; it must be finite and ≥ 0", op, p.WeightDecay)
	case p.Nesterov && p.Momentum == 0:
		return fmt.Errorf("%s: Nesterov momentum needs momentum > 0", op)
	}
	return nil
}

func (p AdamParams) check(op string, t int) error {
	switch {
	case !finiteNonNeg(p.LR):
		return fmt.Errorf("%s: learning rate %v; it must be finite and ≥ 0", op, p.LR)
	case !(p.Beta1 >= 0 && p.Beta1 < 1) || !(p.Beta2 >= 0 && p.Beta2 < 1):
		return fmt.Errorf("%s: betas (%v, %v); each must be in [0, 1)", op, p.Beta1, p.Beta2)
	case !finiteNonNeg(p.Eps):
		return fmt.Errorf("%s: eps %v; it must be finite and ≥ 0", op, p.Eps)
	case !finiteNonNeg(p.WeightDecay):
		return fmt.Errorf("%s: weight decay %v; it must be finite and ≥ 0", op, p.WeightDecay)
	case t < 1:
		return fmt.Errorf("%s: step t = %d; steps count from 1", op, t)
	}
	return nil
}

// push derives the per-step constants. The bias corrections 1 − β^t are computed in float64: in fp32 (let alone
// with GLSL's pow, whose error is bounded only through exp2·log2) 1 − 0.999^t loses about four digits at small t.
func (p AdamParams) push(n, t int) adamPush {
	c := AdamCorrections(p, t)
	return adamPush{
		N: uint32(n), OneMinusB1: float32(1 - float64(p.Beta1)), Beta2: p.Beta2,
		OneMinusB2: float32(1 - float64(p.Beta2)), Eps: p.Eps, WD: p.WeightDecay,
		StepSize: c[0], BC2Sqrt: c[1],
	}
}

// AdamCorrections returns what step t contributes to an Adam update, derived in float64: the step size
// lr/(1 − β1^t) and √(1 − β2^t). AdamStepDynamic reads these two floats from a buffer, so a recorded training step
// replays with t advancing when the host rewrites them before each submit.
func AdamCorrections(p AdamParams, t int) [2]float32 {
	bc1 := 1 - math.Pow(float64(p.Beta1), float64(t))
	bc2 := 1 - math.Pow(float64(p.Beta2), float64(t))
	return [2]float32{float32(float64(p.LR) / bc1), float32(math.Sqrt(bc2))}
}

// SGDStep records one SGD step in place on the parameters w and the momentum buffer v (start it at zero), given
// the gradient g, all of n elements, with PyTorch's semantics: g' = g + wd·w; v ← μ·v + g'; w ← w − lr·v (with
// Nesterov, w ← w − lr·(g' + μ·v)). With μ = 0 v still holds g' afterwards. It equals SGDStepRef bit for bit.
func (l *Lib) SGDStep(r *vk.Recorder, w, g, v vk.Range, n int, p SGDParams) error {
	const op = "sgd step"
	if err := needEach(op, sized{"w", w, n}, sized{"g", g, n}, sized{"v", v, n}); err != nil {
		return err
	}
	if err := p.check(op); err != nil {
		return err
	}
	push := sgdPush{N: uint32(n), LR: p.LR, Momentum: p.Momentum, WD: p.WeightDecay}
	if p.Nesterov {
		push.Nesterov = 1
	}
	return l.dispatch1D(r, "sgd", n, push, []vk.Access{vk.ReadWrite, vk.Read, vk.ReadWrite}, w, g, v)
}

// SGDStepDynamic is SGDStep with the learning rate read from lr (one float) at run time instead of baked into the
// recording (p.LR is unused): a schedule rewrites lr before each replay. It equals SGDStep with that rate bit for
// bit.
func (l *Lib) SGDStepDynamic(r *vk.Recorder, w, g, v, lr vk.Range, n int, p SGDParams) error {
	const op = "sgd step (dynamic)"
	if err := needEach(op, sized{"w", w, n}, sized{"g", g, n}, sized{"v", v, n}, sized{"lr", lr, 1}); err != nil {
		return err
	}
	if err := p.check(op); err != nil {
		return err
	}
	push := sgdPush{N: uint32(n), Momentum: p.Momentum, WD: p.WeightDecay}
	if p.Nesterov {
		push.Nesterov = 1
	}
	return l.dispatch1D(r, "sgd_dyn", n, push, []vk.Access{vk.ReadWrite, vk.Read, vk.ReadWrite, vk.Read}, w, g, v, lr)
}

// AdamStep records Adam step t (counting from 1) in place on the parameters w and the moment buffers m and v (start
// them at zero), given the gradient g, all of n elements, with torch.optim.Adam's semantics (see adam.comp). The
// step t is an argument rather than device state: the host turns it into the bias corrections. The moments equal
// AdamStepRef bit for bit; w agrees to within the GPU's sqrt and division error (Vulkan allows 2.5-3 ulps).
func (l *Lib) AdamStep(r *vk.Recorder, w, g, m, v vk.Range, n, t int, p AdamParams) error {
	const op = "adam step"
	if err := needEach(op, sized{"w", w, n}, sized{"g", g, n}, sized{"m", m, n}, sized{"v", v, n}); err != nil {
		return err
	}
	if err := p.check(op, t); err != nil {
		return err
	}
	shader, per := vec4Variant("adam", n, w, g, m, v)
	access, bufs := []vk.Access{vk.ReadWrite, vk.Read, vk.ReadWrite, vk.ReadWrite}, []vk.Range{w, g, m, v}
	shader, access, bufs = l.adamTexels(shader, per, access, bufs)
	return l.dispatch1D(r, shader, n/per, p.push(n, t), access, bufs...)
}

// adamTexels turns an Adam dispatch of the VEC4 variant shader (per = 4) into its TEX variant where the library
// reads texels and w, g, m and v all fit vec4 texel views: g is bound as texels, and texel views of w, m and v are
// bound after the others (see adam.comp's TEX). Otherwise it returns its arguments as they are.
func (l *Lib) adamTexels(shader string, per int, access []vk.Access, bufs []vk.Range) (string, []vk.Access, []vk.Range) {
	w, g, m, v := bufs[0], bufs[1], bufs[2], bufs[3]
	if per != 4 || !adamTexelReads || !l.texelFits(vk.Texel4, w, g, m, v) {
		return shader, access, bufs
	}
	access = append(slices.Clone(access), vk.Texel4, vk.Texel4, vk.Texel4)
	access[1] = vk.Texel4
	return shader + "_t", access, append(slices.Clone(bufs), w, m, v)
}

// adamTexelReads lets AdamStep and AdamStepDynamic read through texel views (adam.comp's TEX); tests turn it off to
// compare the two reads.
var adamTexelReads = true

// AdamStepDynamic is AdamStep with the step's bias corrections read from corr (two floats: AdamCorrections(p, t))
// at run time instead of baked into the recording; p.LR is unused (it is inside corr). It equals AdamStep for the
// same t bit for bit.
func (l *Lib) AdamStepDynamic(r *vk.Recorder, w, g, m, v, corr vk.Range, n int, p AdamParams) error {
	const op = "adam step (dynamic)"
	if err := needEach(op, sized{"w", w, n}, sized{"g", g, n}, sized{"m", m, n}, sized{"v", v, n},
		sized{"corr", corr, 2}); err != nil {
		return err
	}
	if err := p.check(op, 1); err != nil {
		return err
	}
	shader, per := vec4Variant("adam_dyn", n, w, g, m, v)
	access := []vk.Access{vk.ReadWrite, vk.Read, vk.ReadWrite, vk.ReadWrite, vk.Read}
	shader, access, bufs := l.adamTexels(shader, per, access, []vk.Range{w, g, m, v, corr})
	return l.dispatch1D(r, shader, n/per, p.push(n, 1), access, bufs...)
}

// SGDStepRef is the CPU reference of SGDStep: it updates w and v in place.
func SGDStepRef(w, g, v []float32, p SGDParams) {
	for i := range w {
		gp := float32(g[i] + float32(p.WeightDecay*w[i]))
		v[i] = float32(float32(p.Momentum*v[i]) + gp)
		d := v[i]
		if p.Nesterov {
			d = float32(gp + float32(p.Momentum*v[i]))
		}
		w[i] = float32(w[i] - float32(p.LR*d))
	}
}

// AdamStepRef is the CPU reference of AdamStep (step t): it updates w, m and v in place, in the shader's order of
// fp32 operations.
func AdamStepRef(w, g, m, v []float32, t int, p AdamParams) {
	c := p.push(len(w), t)
	for i := range w {
		gp := float32(g[i] + float32(c.WD*w[i]))
		m[i] = float32(m[i] + float32(c.OneMinusB1*float32(gp-m[i])))
		v[i] = float32(float32(c.Beta2*v[i]) + float32(float32(c.OneMinusB2*gp)*gp))
		den := float32(float32(float32(math.Sqrt(float64(v[i])))/c.BC2Sqrt) + c.Eps)
		w[i] = float32(w[i] - float32(c.StepSize*float32(m[i]/den)))
	}
}
