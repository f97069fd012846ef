package kernels

import (
	"fmt"

	"github.com/sqnet/sqnet/vk"
)

// pgdPush mirrors pgd.comp's push constants.
type pgdPush struct {
	N              uint32
	Eta, Eps       float32
	SeedLo, SeedHi uint32
	Stream, Step   uint32
}

// checkPGD validates the sizes and the radius shared by the PGD entry points.
func checkPGD(op string, n int, eps float32, bufs ...named) error {
	for _, b := range bufs {
		if err := need(op, b.name, b.r, n); err != nil {
			return err
		}
	}
	if n > maxRNGElems {
		return fmt.Errorf("%s: %d elements; at most %d per call", op, n, maxRNGElems)
	}
	return checkScale(op, "eps", eps)
}

// PGDStep records one fused ℓ∞ PGD step in place on x, given the gradient g and the clean input x0:
//
//	x ← clip(clamp(x + eta·sign(g), x0 − eps, x0 + eps), 0, 1),   sign(0) = 0,
//
// the projection onto the ε-ball then onto the image box [0, 1]. It equals PGDStepRef bit for bit. Neither g nor
// x0 may alias x.
func (l *Lib) PGDStep(r *vk.Recorder, x, g, x0 vk.Range, n int, eta, eps float32) error {
	const op = "pgd step"
	if err := checkPGD(op, n, eps, named{"x", x}, named{"g", g}, named{"x0", x0}); err != nil {
		return err
	}
	if err := checkScale(op, "eta", eta); err != nil {
		return err
	}
	shader, per := vec4Variant("pgd_step", n, x, g, x0)
	return l.dispatch1D(r, shader, n/per, pgdPush{N: uint32(n), Eta: eta, Eps: eps},
		[]vk.Access{vk.Read, vk.Read, vk.ReadWrite}, x0, g, x)
}

// FGSM records x ← clip(x0 + eps·sign(g), 0, 1): the fast gradient sign method, which is exactly the PGD step
// from x = x0 with eta = eps (the ball projection is then a no-op), done in one dispatch without first copying x0
// into x. g is the loss gradient at x0. x must not alias x0 or g.
func (l *Lib) FGSM(r *vk.Recorder, x, g, x0 vk.Range, n int, eps float32) error {
	const op = "fgsm"
	if err := checkPGD(op, n, eps, named{"x", x}, named{"g", g}, named{"x0", x0}); err != nil {
		return err
	}
	shader, per := vec4Variant("pgd_fgsm", n, x, g, x0)
	return l.dispatch1D(r, shader, n/per, pgdPush{N: uint32(n), Eps: eps},
		[]vk.Access{vk.Read, vk.Read, vk.Write}, x0, g, x)
}

// PGDRandomStart records the random start x ← clip(x0 + eps·s, 0, 1), s ~ U[−1, 1) i.i.d. per element from the
// Philox stream g (s = PhiloxSymmetric(word), the same draw as UniformNoise, so use a Stream of the attack's own;
// Step may number the restart). It equals PGDRandomStartRef bit for bit. x must not alias x0.
func (l *Lib) PGDRandomStart(r *vk.Recorder, x, x0 vk.Range, n int, eps float32, g RNG) error {
	const op = "pgd random start"
	if err := checkPGD(op, n, eps, named{"x", x}, named{"x0", x0}); err != nil {
		return err
	}
	k := PhiloxKey(g.Seed)
	p := pgdPush{N: uint32(n), Eps: eps, SeedLo: k[0], SeedHi: k[1], Stream: g.Stream, Step: g.Step}
	return l.dispatchBlocks(r, "pgd_init", n, p, []vk.Access{vk.Read, vk.Write}, x0, x)
}

// sign32 is sign with sign(0) = 0 and sign(NaN) = 0, as the shader's sgn.
func sign32(v float32) float32 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// PGDStepRef is the CPU reference of PGDStep: it returns the new x.
func PGDStepRef(x, g, x0 []float32, eta, eps float32) []float32 {
	out := make([]float32, len(x))
	for i := range x {
		s := float32(x[i] + float32(eta*sign32(g[i])))
		lo, hi := float32(x0[i]-eps), float32(x0[i]+eps)
		out[i] = clip01(min(max(s, lo), hi))
	}
	return out
}

// FGSMRef is the CPU reference of FGSM.
func FGSMRef(g, x0 []float32, eps float32) []float32 {
	out := make([]float32, len(x0))
	for i := range x0 {
		out[i] = clip01(float32(x0[i] + float32(eps*sign32(g[i]))))
	}
	return out
}

// PGDRandomStartRef is the CPU reference of PGDRandomStart. It equals UniformNoiseRef(x0, eps, g): a random start
// is uniform noise of radius ε.
func PGDRandomStartRef(x0 []float32, eps float32, g RNG) []float32 {
	return UniformNoiseRef(x0, eps, g)
}
