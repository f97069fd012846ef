package model

import (
	"fmt"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/quant"
)

// Net is an architecture placed in a graph: its parameter tensors by state_dict name, in Params order.
type Net struct {
	Arch   Arch
	Quant  *quant.Config
	Params map[string]*graph.Tensor
	Order  []*graph.Tensor
}

// Declare adds the architecture's parameters (and the quantizer's thresholds when q is not nil) to the graph.
func Declare(g *graph.Graph, a Arch, q *quant.Config) *Net {
	n := &Net{Arch: a, Quant: q, Params: map[string]*graph.Tensor{}}
	for _, p := range a.Params(q) {
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
	for i := 0; i < len(a.Layers); i++ {
		switch l := a.Layers[i]; l.Kind {
		case "conv":
			h = g.Conv2D(h, n.Params[l.Name+".weight"], n.Params[l.Name+".bias"], 1, l.Pad)
		case "relu":
			if i+1 < len(a.Layers) && a.Layers[i+1].Kind == "pool" {
				// ReLU then pooling as one op: one pass each way instead of two (the same values).
				h = g.ReLUMaxPool2x2(h)
				i++
				continue
			}
			h = g.ReLU(h)
		case "pool":
			h = g.MaxPool2x2(h)
		case "flatten":
			h = g.Reshape(h, h.Shape[0], -1)
		case "fc":
			h = g.Linear(h, n.Params[l.Name+".weight"], n.Params[l.Name+".bias"])
		default:
			return g.Fail("model %s: unknown layer kind %q", a.Name, l.Kind)
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
