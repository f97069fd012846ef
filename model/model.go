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

// Layer is one layer of an architecture, or a residual block of layers.
type Layer struct {
	Kind    string // "conv", "bn", "pool", "relu", "flatten", "fc", "gap" (global average pool) or "block"
	Name    string // parameter prefix for conv, bn and fc, as in PyTorch's state_dict ("conv1", "layer1.0.bn2")
	In, Out int    // channels (conv, bn) or features (fc)
	Kernel  int    // conv kernel size (square)
	Pad     int    // conv zero padding
	Stride  int    // conv stride (0: 1)
	NoBias  bool   // conv without a bias (one followed by batch norm)
	// A block computes Post(Body(p) + Shortcut(s)) where p = Pre(x), and s is p with ShortcutFromPre (a
	// pre-activation block's projection) or x; an empty Shortcut is the identity.
	Pre, Body, Shortcut, Post []Layer
	ShortcutFromPre           bool
}

// Arch is a named architecture for inputs of C×H×W and Classes outputs.
type Arch struct {
	Name    string
	C, H, W int
	Classes int
	Layers  []Layer
}

// Archs lists the architecture names Lookup knows.
var Archs = []string{"small", "madry", "cifar", "resnet20", "preact-resnet18"}

func conv(name string, in, out, k, pad int) []Layer {
	return []Layer{{Kind: "conv", Name: name, In: in, Out: out, Kernel: k, Pad: pad}, {Kind: "relu"}}
}

var (
	pool    = Layer{Kind: "pool"}
	flatten = Layer{Kind: "flatten"}
	relu    = Layer{Kind: "relu"}
	gap     = Layer{Kind: "gap"}
)

// convBN is a bias-free convolution (k×k, padding k/2) as residual networks use before batch norm.
func convBN(name string, in, out, k, stride int) Layer {
	return Layer{Kind: "conv", Name: name, In: in, Out: out, Kernel: k, Pad: k / 2, Stride: stride, NoBias: true}
}

func bn(name string, c int) Layer { return Layer{Kind: "bn", Name: name, In: c, Out: c} }

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

// basicBlock is ResNet's post-activation block as the CIFAR ResNets of He et al. write it (and the common PyTorch
// definition, option B): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut a 1×1 strided
// convolution with batch norm where the shape changes.
func basicBlock(name string, in, out, stride int) Layer {
	b := Layer{Kind: "block", Name: name,
		Body: []Layer{convBN(name+".conv1", in, out, 3, stride), bn(name+".bn1", out), relu,
			convBN(name+".conv2", out, out, 3, 1), bn(name+".bn2", out)},
		Post: []Layer{relu}}
	if stride != 1 || in != out {
		b.Shortcut = []Layer{convBN(name+".shortcut.0", in, out, 1, stride), bn(name+".shortcut.1", out)}
	}
	return b
}

// preActBlock is the pre-activation block (He et al. 2016) as RobustBench's PreActResNet-18 writes it:
// p = relu(bn1(x)); conv2(relu(bn2(conv1(p)))) + shortcut, the shortcut a 1×1 strided convolution of p where the
// shape changes, else x itself.
func preActBlock(name string, in, out, stride int) Layer {
	b := Layer{Kind: "block", Name: name, Pre: []Layer{bn(name+".bn1", in), relu},
		Body: []Layer{convBN(name+".conv1", in, out, 3, stride), bn(name+".bn2", out), relu,
			convBN(name+".conv2", out, out, 3, 1)}}
	if stride != 1 || in != out {
		b.Shortcut, b.ShortcutFromPre = []Layer{convBN(name+".shortcut.0", in, out, 1, stride)}, true
	}
	return b
}

// stages builds residual stages layer1…layerN: blocks[i] blocks of widths[i] channels, the first of each stage
// after the first with stride 2.
func stages(block func(name string, in, out, stride int) Layer, in int, widths, blocks []int) []Layer {
	var out []Layer
	for s, wd := range widths {
		for k := 0; k < blocks[s]; k++ {
			stride := 1
			if k == 0 && s > 0 {
				stride = 2
			}
			out = append(out, block(fmt.Sprintf("layer%d.%d", s+1, k), in, wd, stride))
			in = wd
		}
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
//   - resnet20: He et al.'s CIFAR ResNet-20 (3 stages of 3 basic blocks, 16/32/64 channels, batch norm, 1×1
//     projection shortcuts), global average pooling, linear; ~0.27 M parameters.
//   - preact-resnet18: the pre-activation ResNet-18 of RobustBench's CIFAR-10 baselines (4 stages of 2 blocks,
//     64…512 channels), ~11.2 M parameters (11,172,170).
//
// Residual networks name their tensors as the usual PyTorch definitions do (layer1.0.bn1.running_mean, …), so a
// checkpoint loads into them with load_state_dict.
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
	case "resnet20":
		a.Layers = cat([]Layer{convBN("conv1", c, 16, 3, 1), bn("bn1", 16), relu},
			stages(basicBlock, 16, []int{16, 32, 64}, []int{3, 3, 3}), []Layer{gap}, fc("linear", 64, classes, false))
	case "preact-resnet18":
		a.Layers = cat([]Layer{convBN("conv1", c, 64, 3, 1)},
			stages(preActBlock, 64, []int{64, 128, 256, 512}, []int{2, 2, 2, 2}),
			[]Layer{bn("bn", 512), relu, gap}, fc("linear", 512, classes, false))
	default:
		return a, fmt.Errorf("unknown model %q (known: %s)", name, strings.Join(Archs, ", "))
	}
	return a, nil
}

// ParamSpec is one parameter or buffer: its state_dict name, shape, fan-in (for initialisation) and start value.
type ParamSpec struct {
	Name  string
	Shape []int
	FanIn int
	// Buffer marks batch norm's running statistics: state a forward pass in training mode updates, not a
	// parameter the optimizer moves.
	Buffer bool
	// Fill, when Const, is the start value of every element (batch norm: weight 1, bias 0, running_var 1);
	// otherwise PyTorch's U(−1/√FanIn, 1/√FanIn).
	Fill  float32
	Const bool
}

// Params lists the architecture's parameters and buffers in state_dict order (layer order; weight, bias, then
// running_mean and running_var), plus the quantizer's thresholds first when q is not nil. batch norm's
// num_batches_tracked, an integer, is not among them: checkpoints write it (BatchNorms).
func (a Arch) Params(q *quant.Config) []ParamSpec {
	var out []ParamSpec
	if q != nil {
		out = append(out, ParamSpec{Name: ThresholdsName, Shape: q.ThresholdShape(a.C)})
	}
	walk(a.Layers, func(l Layer) {
		switch l.Kind {
		case "conv":
			fan := l.In * l.Kernel * l.Kernel
			out = append(out, ParamSpec{Name: l.Name + ".weight", Shape: []int{l.Out, l.In, l.Kernel, l.Kernel}, FanIn: fan})
			if !l.NoBias {
				out = append(out, ParamSpec{Name: l.Name + ".bias", Shape: []int{l.Out}, FanIn: fan})
			}
		case "fc":
			out = append(out, ParamSpec{Name: l.Name + ".weight", Shape: []int{l.Out, l.In}, FanIn: l.In},
				ParamSpec{Name: l.Name + ".bias", Shape: []int{l.Out}, FanIn: l.In})
		case "bn":
			c := []int{l.Out}
			out = append(out, ParamSpec{Name: l.Name + ".weight", Shape: c, Fill: 1, Const: true},
				ParamSpec{Name: l.Name + ".bias", Shape: c, Const: true},
				ParamSpec{Name: l.Name + ".running_mean", Shape: c, Const: true, Buffer: true},
				ParamSpec{Name: l.Name + ".running_var", Shape: c, Fill: 1, Const: true, Buffer: true})
		}
	})
	return out
}

// walk calls f on every layer in state_dict order: a block's Pre, Body, then Shortcut, then Post.
func walk(ls []Layer, f func(Layer)) {
	for _, l := range ls {
		if l.Kind == "block" {
			walk(l.Pre, f)
			walk(l.Body, f)
			walk(l.Shortcut, f)
			walk(l.Post, f)
			continue
		}
		f(l)
	}
}

// BatchNorms lists the names of the architecture's batch-norm layers (their num_batches_tracked buffers).
func (a Arch) BatchNorms() []string {
	var out []string
	walk(a.Layers, func(l Layer) {
		if l.Kind == "bn" {
			out = append(out, l.Name)
		}
	})
	return out
}

// ThresholdsName is the state_dict name of the quantizer's thresholds.
const ThresholdsName = "quant.thresholds"

// Weights maps parameter names to values.
type Weights map[string][]float32

// Init returns PyTorch's default initialisation for every parameter: conv and linear weights and biases are
// U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5 gives exactly that bound for weights), drawn from a
// generator seeded by seed in state_dict order; batch norm starts at weight 1, bias 0, running mean 0 and
// variance 1; thresholds start at the quantizer's defaults.
func (a Arch) Init(q *quant.Config, seed uint64) Weights {
	r := rand.New(rand.NewPCG(seed, 0x1417))
	w := Weights{}
	for _, p := range a.Params(q) {
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		v := make([]float32, n)
		switch {
		case p.Name == ThresholdsName:
			base := kernels.DefaultThresholds(q.Levels)
			for i := range v {
				v[i] = base[i%len(base)]
			}
		case p.Const:
			for i := range v {
				v[i] = p.Fill
			}
		default:
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
