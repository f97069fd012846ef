package graph

import "fmt"

// Backward appends the ops that compute the gradient of scale·Σᵢ loss[i] with respect to each tensor in wrt and
// sets their Grad fields: training passes the parameters (g.Params()), an attack the input image alone, so it
// pays for no parameter gradient. Pass scale = 1/B for the gradient of the mean loss over a batch of B. A graph may
// hold several backward passes (adversarial training: the attack's, then the training step's); each sets Grad
// anew. Ops without a Grad function (an attack's projected step, a copy, noise) are constants to
// differentiation: no gradient flows through them. A parameter that the loss does not depend on through a
// differentiable path (thresholds under a hard quantizer) is left without Grad.
func (g *Graph) Backward(loss *Tensor, scale float32, wrt ...*Tensor) error {
	if g.err != nil {
		return g.err
	}
	// Which tensors need a gradient: parameters, wrt, and everything computed from them.
	needs := map[*Tensor]bool{}
	for _, t := range wrt {
		if t.g != g {
			return fmt.Errorf("backward: %s belongs to another graph", t)
		}
		needs[t] = true
	}
	fwd := g.ops
	producer := map[*Tensor]*Op{}
	for _, op := range fwd {
		any := false
		for _, in := range op.In {
			any = any || (needs[in] && op.Grad != nil)
		}
		for _, out := range op.Out {
			producer[out] = op
			if any {
				needs[out] = true
			}
		}
	}
	if producer[loss] == nil {
		return fmt.Errorf("backward: %s is not computed by the graph", loss)
	}
	if !needs[loss] {
		return fmt.Errorf("backward: %s does not depend on any of %s", loss, shapeString(wrt...))
	}
	g.needs = needs
	seedT := &Tensor{Name: "seed", Shape: loss.Shape, g: g, id: -1}
	if g.seeds == nil {
		g.seeds = map[*Tensor]float32{}
	}
	g.seeds[seedT] = scale
	grads := map[*Tensor]*Tensor{loss: seedT}
	for i := len(fwd) - 1; i >= 0; i-- {
		op := fwd[i]
		dOut := make([]*Tensor, len(op.Out))
		flows := false
		for j, out := range op.Out {
			dOut[j] = grads[out]
			flows = flows || dOut[j] != nil
		}
		if !flows {
			continue
		}
		wants := false
		for _, in := range op.In {
			wants = wants || needs[in]
		}
		if !wants || op.Grad == nil {
			continue
		}
		dIn, err := op.Grad(dOut)
		if err != nil {
			return fmt.Errorf("backward through %s: %w", op.Name, err)
		}
		if g.err != nil {
			return fmt.Errorf("backward through %s: %w", op.Name, g.err)
		}
		for j, in := range op.In {
			if j >= len(dIn) || dIn[j] == nil || !needs[in] {
				continue
			}
			if !same(dIn[j], in) {
				return fmt.Errorf("backward through %s: gradient %s does not match input %s", op.Name, dIn[j], in)
			}
			if prev := grads[in]; prev != nil {
				// A tensor with several consumers: its gradient is the sum of theirs.
				g.accumulate(dIn[j], prev)
				continue
			}
			grads[in] = dIn[j]
		}
	}
	got := 0
	for _, t := range wrt {
		t.Grad = grads[t] // nil when this pass gives t no gradient, even if an earlier pass did
		if t.Grad != nil {
			g.Keep(t.Grad)
			got++
		}
	}
	if got == 0 {
		return fmt.Errorf("backward: no tensor of %s gets a gradient from %s", shapeString(wrt...), loss)
	}
	return nil
}

// SeedScale reports whether a gradient is the reverse-mode seed (the gradient of scale·Σ loss with respect to the
// loss itself), and its scale: loss ops then use their kernels' scale-only path.
func (g *Graph) SeedScale(t *Tensor) (float32, bool) {
	scale, ok := g.seeds[t]
	return scale, ok
}

// errSeedThroughView reports a loss that is a view: losses must be computed by a loss op, which takes the seed.
var errSeedThroughView = fmt.Errorf("the loss must be the output of a loss op, not a view")

// NeedsGrad reports, while Backward builds a backward pass, whether t needs a gradient: ops skip the kernels
// of gradients nobody uses (the input image's, in training).
func (g *Graph) NeedsGrad(t *Tensor) bool { return g.needs[t] }
