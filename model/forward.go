package model

import (
	"fmt"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/quant"
)

// Net is an architecture placed in a graph: its parameter and buffer tensors by state_dict name, and the
// parameters alone (what an optimizer moves) in Params order.
type Net struct {
	Arch   Arch
	Quant  *quant.Config
	Params map[string]*graph.Tensor // parameters and batch norm's running statistics
	Order  []*graph.Tensor          // the parameters, without buffers
	// Training puts batch norm in training mode in the Forward calls that follow: batch statistics, running
	// estimates updated every time the step runs. Evaluations and attacks leave it false (running estimates).
	Training bool
}

// BNEps and BNMomentum are batch norm's ε and momentum, PyTorch's defaults.
const (
	BNEps      = 1e-5
	BNMomentum = 0.1
)

// Declare adds the architecture's parameters (and the quantizer's thresholds when q is not nil) to the graph, and
// its buffers as state.
func Declare(g *graph.Graph, a Arch, q *quant.Config) *Net {
	n := &Net{Arch: a, Quant: q, Params: map[string]*graph.Tensor{}}
	for _, p := range a.Params(q) {
		if p.Buffer {
			n.Params[p.Name] = g.State(p.Name, p.Shape...)
			continue
		}
		t := g.Param(p.Name, p.Shape...)
		n.Params[p.Name] = t
		n.Order = append(n.Order, t)
	}
	return n
}

// Forward adds the network applied to x [B, C, H, W] and returns the logits [B, Classes]. With a quantizer, mode
// says how it behaves (Soft for training, Hard or a BPDA mode for evaluation and attacks).
func (n *Net) Forward(g *graph.Graph, x *graph.Tensor, mode quant.Mode) *graph.Tensor {
	a := n.Arch
	if len(x.Shape) != 4 || x.Shape[1] != a.C || x.Shape[2] != a.H || x.Shape[3] != a.W {
		return g.Fail("model %s: input %s, want [B, %d, %d, %d]", a.Name, x, a.C, a.H, a.W)
	}
	h := x
	if n.Quant != nil {
		h = quant.Apply(g, h, n.Params[ThresholdsName], *n.Quant, mode)
	}
	return n.layers(g, h, a.Layers)
}

// layers applies a list of layers.
func (n *Net) layers(g *graph.Graph, h *graph.Tensor, ls []Layer) *graph.Tensor {
	for i := 0; i < len(ls); i++ {
		switch l := ls[i]; l.Kind {
		case "conv":
			var b *graph.Tensor
			if !l.NoBias {
				b = n.Params[l.Name+".bias"]
			}
			if i+2 < len(ls) && ls[i+1].Kind == "relu" && ls[i+2].Kind == "pool" {
				// conv → ReLU → pool as one op: one pass where the device has one (CPU drivers), without the
				// convolution's output in memory; the same values.
				h = g.Conv2DReLUMaxPool(h, n.Params[l.Name+".weight"], b, max(l.Stride, 1), l.Pad)
				i += 2
				continue
			}
			h = g.Conv2D(h, n.Params[l.Name+".weight"], b, max(l.Stride, 1), l.Pad)
		case "bn":
			h = g.BatchNorm2D(h, n.Params[l.Name+".weight"], n.Params[l.Name+".bias"], n.Params[l.Name+".running_mean"],
				n.Params[l.Name+".running_var"], n.Training, BNEps, BNMomentum)
		case "relu":
			if i+1 < len(ls) && ls[i+1].Kind == "pool" {
				// ReLU then pooling as one op: one pass each way instead of two (the same values).
				h = g.ReLUMaxPool2x2(h)
				i++
				continue
			}
			h = g.ReLU(h)
		case "pool":
			h = g.MaxPool2x2(h)
		case "gap":
			h = g.GlobalAvgPool(h)
		case "flatten":
			h = g.Reshape(h, h.Shape[0], -1)
		case "fc":
			h = g.Linear(h, n.Params[l.Name+".weight"], n.Params[l.Name+".bias"])
		case "block":
			p := n.layers(g, h, l.Pre)
			s := h
			if l.ShortcutFromPre {
				s = p
			}
			h = n.layers(g, g.Sum(n.layers(g, p, l.Body), n.layers(g, s, l.Shortcut)), l.Post)
		default:
			return g.Fail("model %s: unknown layer kind %q", n.Arch.Name, l.Kind)
		}
	}
	return h
}

// Load writes weights into a compiled program's parameter tensors.
func (n *Net) Load(p *graph.Program, w Weights) error {
	if err := n.Arch.Check(n.Quant, w); err != nil {
		return err
	}
	for name, t := range n.Params {
		if err := graph.Write(p, t, w[name]); err != nil {
			return fmt.Errorf("load %s: %w", name, err)
		}
	}
	return nil
}

// Weights reads the parameters back from a compiled program.
func (n *Net) Weights(p *graph.Program) (Weights, error) {
	w := Weights{}
	for name, t := range n.Params {
		v := make([]float32, t.Elems())
		if err := graph.Read(p, t, v); err != nil {
			return nil, err
		}
		w[name] = v
	}
	return w, nil
}
