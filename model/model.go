// Package model defines sqnet's architectures (small, madry, cifar), their parameters with PyTorch state_dict
// names and layouts, PyTorch-default initialisation, and checkpoints in safetensors.
package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/quant"
)

// Layer is one layer of an architecture.
type Layer struct {
	Kind    string // "conv", "pool", "relu", "flatten", "fc"
	Name    string // parameter prefix for conv and fc, as in PyTorch's state_dict ("conv1", "fc2")
	In, Out int    // channels (conv) or features (fc)
	Kernel  int    // conv kernel size (square)
	Pad     int    // conv zero padding
}

// Arch is a named architecture for inputs of C×H×W and Classes outputs.
type Arch struct {
	Name    string
	C, H, W int
	Classes int
	Layers  []Layer
}

// Archs lists the architecture names Lookup knows.
var Archs = []string{"small", "madry", "cifar"}

func conv(name string, in, out, k, pad int) []Layer {
	return []Layer{{Kind: "conv", Name: name, In: in, Out: out, Kernel: k, Pad: pad}, {Kind: "relu"}}
}

var (
	pool    = Layer{Kind: "pool"}
	flatten = Layer{Kind: "flatten"}
)

func fc(name string, in, out int, relu bool) []Layer {
	l := []Layer{{Kind: "fc", Name: name, In: in, Out: out}}
	if relu {
		l = append(l, Layer{Kind: "relu"})
	}
	return l
}

func cat(parts ...[]Layer) []Layer {
	var out []Layer
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Lookup returns an architecture by name for a dataset's image shape and class count.
//
//   - small: conv3×3-16 (pad 1), ReLU, pool, conv3×3-32 (pad 1), ReLU, pool, fc100, ReLU, fc (the issue's
//     "conv3×3-16, pool, conv3×3-32, pool, fc100, fc10"; padding 1 keeps 28→14→7).
//   - madry: Madry et al.'s MNIST network: conv5×5-32 pad 2, ReLU, pool, conv5×5-64 pad 2, ReLU, pool, fc1024,
//     ReLU, fc.
//   - cifar: a compact VGG: two conv3×3-32, pool, two conv3×3-64, pool, fc256, fc.
func Lookup(name string, c, h, w, classes int) (Arch, error) {
	a := Arch{Name: name, C: c, H: h, W: w, Classes: classes}
	if c <= 0 || h < 4 || w < 4 || classes < 2 {
		return a, fmt.Errorf("model %s: input %d×%d×%d with %d classes is too small", name, c, h, w, classes)
	}
	q := (h / 2 / 2) * (w / 2 / 2) // spatial size after two 2×2 pools with size-preserving convs
	switch name {
	case "small":
		a.Layers = cat(conv("conv1", c, 16, 3, 1), []Layer{pool}, conv("conv2", 16, 32, 3, 1), []Layer{pool, flatten},
			fc("fc1", 32*q, 100, true), fc("fc2", 100, classes, false))
	case "madry":
		a.Layers = cat(conv("conv1", c, 32, 5, 2), []Layer{pool}, conv("conv2", 32, 64, 5, 2), []Layer{pool, flatten},
			fc("fc1", 64*q, 1024, true), fc("fc2", 1024, classes, false))
	case "cifar":
		a.Layers = cat(conv("conv1", c, 32, 3, 1), conv("conv2", 32, 32, 3, 1), []Layer{pool},
			conv("conv3", 32, 64, 3, 1), conv("conv4", 64, 64, 3, 1), []Layer{pool, flatten},
			fc("fc1", 64*q, 256, true), fc("fc2", 256, classes, false))
	default:
		return a, fmt.Errorf("unknown model %q (known: %s)", name, strings.Join(Archs, ", "))
	}
	return a, nil
}

// ParamSpec is one parameter: its state_dict name, shape and fan-in (for initialisation).
type ParamSpec struct {
	Name  string
	Shape []int
	FanIn int
}

// Params lists the architecture's parameters in state_dict order (layer order, weight before bias), plus the
// quantizer's thresholds first when q is not nil.
func (a Arch) Params(q *quant.Config) []ParamSpec {
	var out []ParamSpec
	if q != nil {
		out = append(out, ParamSpec{Name: ThresholdsName, Shape: q.ThresholdShape(a.C)})
	}
	for _, l := range a.Layers {
		switch l.Kind {
		case "conv":
			fan := l.In * l.Kernel * l.Kernel
			out = append(out, ParamSpec{l.Name + ".weight", []int{l.Out, l.In, l.Kernel, l.Kernel}, fan},
				ParamSpec{l.Name + ".bias", []int{l.Out}, fan})
		case "fc":
			out = append(out, ParamSpec{l.Name + ".weight", []int{l.Out, l.In}, l.In},
				ParamSpec{l.Name + ".bias", []int{l.Out}, l.In})
		}
	}
	return out
}

// ThresholdsName is the state_dict name of the quantizer's thresholds.
const ThresholdsName = "quant.thresholds"

// Weights maps parameter names to values.
type Weights map[string][]float32

// Init returns PyTorch's default initialisation for every parameter: conv and linear weights and biases are
// U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5 gives exactly that bound for weights), drawn from a
// generator seeded by seed in state_dict order; thresholds start at the quantizer's defaults.
func (a Arch) Init(q *quant.Config, seed uint64) Weights {
	r := rand.New(rand.NewPCG(seed, 0x1417))
	w := Weights{}
	for _, p := range a.Params(q) {
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		v := make([]float32, n)
		if p.Name == ThresholdsName {
			base := kernels.DefaultThresholds(q.Levels)
			for i := range v {
				v[i] = base[i%len(base)]
			}
		} else {
			bound := 1 / math.Sqrt(float64(p.FanIn))
			for i := range v {
				v[i] = float32((2*r.Float64() - 1) * bound)
			}
		}
		w[p.Name] = v
	}
	return w
}

// Check verifies that w holds exactly the architecture's parameters with the right sizes.
func (a Arch) Check(q *quant.Config, w Weights) error {
	specs := a.Params(q)
	for _, p := range specs {
		v, ok := w[p.Name]
		if !ok {
			return fmt.Errorf("missing parameter %s", p.Name)
		}
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		if len(v) != n {
			return fmt.Errorf("parameter %s has %d values, %v needs %d", p.Name, len(v), p.Shape, n)
		}
	}
	if len(w) != len(specs) {
		var extra []string
		for name := range w {
			found := false
			for _, p := range specs {
				found = found || p.Name == name
			}
			if !found {
				extra = append(extra, name)
			}
		}
		sort.Strings(extra)
		return fmt.Errorf("unexpected parameters %s for model %s", strings.Join(extra, ", "), a.Name)
	}
	return nil
}
