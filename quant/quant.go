// Package quant provides the input quantizers of sqnet's models as graph ops: the soft quantizer (differentiable,
// learnable thresholds — the defence of arXiv 1810.05665), the hard quantizer (its test-time form), and BPDA
// (Athalye et al. 2018: forward hard, backward identity or the soft surrogate), which attacks use to get useful
// gradients through a quantizer that masks them. The math is in shared/DESIGN.md and kernels/quant.go.
package quant

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk"
)

// Config is a quantizer: L levels, steepness α, thresholds shared or per channel, learned or fixed.
type Config struct {
	Levels     int
	Alpha      float32
	PerChannel bool
	// Fixed keeps the thresholds at their initial values (the level midpoints): training computes no gradient
	// for them. Learned thresholds drift during noisy-sq training (small, α = 50: 0.50 → 0.45 → 0.43 over two
	// epochs on MNIST), towards the noisy background (x + U(0, ε_n) for black pixels).
	Fixed bool
}

// Default is DESIGN.md's MNIST default: two levels, α = 50 (α = 20 gives a weaker worst case; L = 4 collapses
// under PGD in the reference re-implementation).
var Default = Config{Levels: 2, Alpha: 50}

// String spells the config as Parse reads it.
func (c Config) String() string {
	s := fmt.Sprintf("%d,%g", c.Levels, c.Alpha)
	if c.PerChannel {
		s += ",per-channel"
	}
	if c.Fixed {
		s += ",fixed"
	}
	return s
}

// Validate checks the levels and the steepness.
func (c Config) Validate() error {
	if c.Levels < 2 {
		return fmt.Errorf("quantizer: L = %d levels, need at least 2", c.Levels)
	}
	if !(c.Alpha > 0) || math.IsInf(float64(c.Alpha), 0) {
		return fmt.Errorf("quantizer: α = %v, need a finite α > 0", c.Alpha)
	}
	return nil
}

// Parse reads "L,alpha" followed by the options "per-channel" and "fixed", in any order (the --quant flag).
func Parse(s string) (Config, error) {
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 4 {
		return Config{}, fmt.Errorf("--quant %q: want L,alpha[,per-channel][,fixed] (e.g. 2,50)", s)
	}
	l, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil {
		return Config{}, fmt.Errorf("--quant %q: levels %q is not an integer", s, parts[0])
	}
	a, err := strconv.ParseFloat(strings.TrimSpace(parts[1]), 32)
	if err != nil {
		return Config{}, fmt.Errorf("--quant %q: alpha %q is not a number", s, parts[1])
	}
	c := Config{Levels: l, Alpha: float32(a)}
	for _, opt := range parts[2:] {
		switch p := strings.TrimSpace(opt); {
		case p == "per-channel" && !c.PerChannel:
			c.PerChannel = true
		case p == "fixed" && !c.Fixed:
			c.Fixed = true
		default:
			return Config{}, fmt.Errorf("--quant %q: option %q: want per-channel or fixed, each at most once", s, p)
		}
	}
	return c, c.Validate()
}

// Mode is how the quantizer behaves in a graph.
type Mode int

// Quantizer modes.
const (
	// Soft is the differentiable quantizer q(x), with gradients to x and the thresholds (training, and the true
	// gradient an attack sees).
	Soft Mode = iota
	// Hard is H(x) with no gradient (its true gradient is zero almost everywhere).
	Hard
	// BPDAIdentity is H(x) forward, identity backward: ∂/∂x := 1.
	BPDAIdentity
	// BPDASoft is H(x) forward, the soft surrogate ∂q/∂x backward.
	BPDASoft
)

// ParseMode reads a mode name: soft, hard, bpda (identity), bpda-soft.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "soft":
		return Soft, nil
	case "hard":
		return Hard, nil
	case "bpda", "bpda-identity":
		return BPDAIdentity, nil
	case "bpda-soft":
		return BPDASoft, nil
	}
	return 0, fmt.Errorf("unknown quantizer mode %q (soft, hard, bpda, bpda-soft)", s)
}

func (m Mode) String() string { return [...]string{"soft", "hard", "bpda", "bpda-soft"}[m] }

// ThresholdShape returns the shape of the threshold parameter for an input of c channels.
func (c Config) ThresholdShape(channels int) []int {
	if c.PerChannel {
		return []int{channels, c.Levels - 1}
	}
	return []int{c.Levels - 1}
}

// Apply adds the quantizer to the graph: x is an NCHW input, thr the threshold tensor (ThresholdShape).
func Apply(g *graph.Graph, x, thr *graph.Tensor, c Config, mode Mode) *graph.Tensor {
	if err := c.Validate(); err != nil {
		return g.Fail("%v", err)
	}
	if len(x.Shape) != 4 {
		return g.Fail("quantizer: input %s is not NCHW", x)
	}
	s := kernels.QuantShape{N: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3], Levels: c.Levels,
		PerChannel: c.PerChannel}
	if thr.Elems() != s.Thresholds() {
		return g.Fail("quantizer: thresholds %s, want %d values", thr, s.Thresholds())
	}
	lib := g.Lib()
	y := g.Temp(x.Name+".quant", graph.F32, x.Shape...)
	op := &graph.Op{Name: "quantizer (" + mode.String() + ")", In: []*graph.Tensor{x, thr}, Out: []*graph.Tensor{y}}
	if mode == Soft {
		op.Run = func(r *vk.Recorder, at graph.Binder) error {
			return lib.SoftQuant(r, at(x), at(thr), at(y), s, c.Alpha)
		}
	} else {
		op.Run = func(r *vk.Recorder, at graph.Binder) error { return lib.HardQuant(r, at(x), at(thr), at(y), s) }
	}
	switch mode {
	case Soft, BPDASoft:
		op.Grad = func(d []*graph.Tensor) ([]*graph.Tensor, error) {
			dx := g.Temp(x.Name+".grad", graph.F32, x.Shape...)
			in := []*graph.Tensor{x, thr, d[0]}
			out := []*graph.Tensor{dx}
			// Threshold gradients only for the trained soft quantizer with learned thresholds; BPDA attacks
			// want ∂/∂x alone.
			var dthr, scratch *graph.Tensor
			if mode == Soft && !c.Fixed {
				dthr = g.Temp(thr.Name+".grad", graph.F32, thr.Shape...)
				out = append(out, dthr)
				if n := lib.SoftQuantScratch(s); n > 0 {
					scratch = g.Temp(x.Name+".quant.scratch", graph.F32, n)
					out = append(out, scratch)
				}
			}
			g.Add(&graph.Op{Name: "quantizer backward (" + mode.String() + ")", In: in, Out: out,
				Run: func(r *vk.Recorder, at graph.Binder) error {
					var dt, sc vk.Range
					if dthr != nil {
						dt = at(dthr)
					}
					if scratch != nil {
						sc = at(scratch)
					}
					return lib.SoftQuantBackward(r, at(x), at(thr), at(d[0]), at(dx), dt, sc, s, c.Alpha)
				}})
			return []*graph.Tensor{dx, dthr}, nil
		}
	case BPDAIdentity:
		op.Grad = func(d []*graph.Tensor) ([]*graph.Tensor, error) {
			return []*graph.Tensor{d[0], nil}, nil
		}
	case Hard:
		op.Grad = func([]*graph.Tensor) ([]*graph.Tensor, error) { return []*graph.Tensor{nil, nil}, nil }
	}
	g.Add(op)
	return y
}

// MarshalText spells the mode by name in JSON reports.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a mode written by MarshalText (eval.json read back by sqnet merge).
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
