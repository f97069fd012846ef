package graph

import (
	"fmt"
	"strings"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk"
)

// Kind says where a tensor's memory comes from and how long it lives.
type Kind int

// Tensor kinds.
const (
	// Temp tensors live in the planned arena, from the first to the last command that touches them.
	Temp Kind = iota
	// Input tensors are written by the host before each run; they are double-buffered so the next batch can be
	// uploaded while the current step runs.
	Input
	// Param tensors are learnable parameters: allocated once, kept across runs.
	Param
	// State tensors are kept across runs too: parameter gradients, optimizer state, outputs the host reads.
	State
)

func (k Kind) String() string {
	return [...]string{"temp", "input", "param", "state"}[k]
}

// DType is a tensor's element type; both are 4 bytes.
type DType int

// Element types.
const (
	F32 DType = iota
	U32
)

// Tensor is a node of the graph: a shape, an element type and, once the graph is compiled, a device range.
type Tensor struct {
	Name  string
	Shape []int
	Kind  Kind
	DType DType
	// Grad is the tensor's gradient after Backward, for parameters and for tensors passed to Backward's wrt.
	Grad *Tensor

	g     *Graph
	id    int
	alias *Tensor   // a view: this tensor is the same memory as alias, with another shape
	init  []float32 // a constant's value, uploaded by Compile
}

// Elems is the number of elements.
func (t *Tensor) Elems() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Bytes is the tensor's size in bytes.
func (t *Tensor) Bytes() uint64 { return uint64(t.Elems()) * 4 }

func (t *Tensor) String() string { return fmt.Sprintf("%s%v", t.Name, t.Shape) }

// root returns the tensor that owns the memory of a view.
func (t *Tensor) root() *Tensor {
	for t.alias != nil {
		t = t.alias
	}
	return t
}

// Binder gives a recorded command the device range of a tensor.
type Binder func(*Tensor) vk.Range

// Op is one recorded step of the graph: it reads In, writes Out, and records its kernels with Run. Grad, for
// forward ops, appends the ops that compute the inputs' gradients from the outputs' and returns them (dOut[i] nil
// means no gradient flows into output i; a nil result means the input gets none). Packages above graph (quant,
// attack) define their own ops this way.
type Op struct {
	Name string
	In   []*Tensor
	Out  []*Tensor
	Run  func(r *vk.Recorder, at Binder) error
	Grad func(dOut []*Tensor) ([]*Tensor, error)
	// Flops counts the op's arithmetic (a multiply-add is 2) for profiles; set for the GEMM-shaped ops whose
	// speed is compute-bound, 0 for the rest, whose profile reports bytes moved instead.
	Flops float64
}

// Graph is a static computation over fixed shapes: built once (forward, then Backward, then an optimizer step),
// compiled into a Program whose command buffers are replayed every step.
type Graph struct {
	lib     *kernels.Lib
	tensors []*Tensor
	ops     []*Op
	err     error // the first construction error; reported by Compile
	names   map[string]int
	seeds   map[*Tensor]float32 // each backward pass's seed (the loss's own gradient) and its scale
	needs   map[*Tensor]bool    // tensors that need a gradient, set by Backward
	loops   []loop              // op ranges recorded several times
	iter    int                 // the loop iteration being recorded (Iteration)
	stages  []int               // the first op of every stage after the first (Stage)
}

// New starts an empty graph on a kernel library.
func New(lib *kernels.Lib) *Graph { return &Graph{lib: lib, names: map[string]int{}} }

// Lib returns the graph's kernel library.
func (g *Graph) Lib() *kernels.Lib { return g.lib }

// Err returns the first error met while building the graph. Builders record errors instead of returning them so
// that model code reads as a chain of layers; Compile refuses a graph with an error.
func (g *Graph) Err() error { return g.err }

// fail records the first construction error and returns a placeholder tensor so building can continue.
func (g *Graph) fail(format string, args ...any) *Tensor {
	if g.err == nil {
		g.err = fmt.Errorf(format, args...)
	}
	return g.tensor("invalid", []int{1}, Temp, F32)
}

func (g *Graph) tensor(name string, shape []int, kind Kind, dt DType) *Tensor {
	// Unique names make error messages and checkpoints unambiguous.
	if n := g.names[name]; n > 0 {
		g.names[name] = n + 1
		name = fmt.Sprintf("%s.%d", name, n)
	} else {
		g.names[name] = 1
	}
	t := &Tensor{Name: name, Shape: append([]int(nil), shape...), Kind: kind, DType: dt, g: g, id: len(g.tensors)}
	g.tensors = append(g.tensors, t)
	return t
}

// Temp declares an intermediate tensor, for ops defined outside this package.
func (g *Graph) Temp(name string, dt DType, shape ...int) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.fail("%s: %v", name, err)
	}
	return g.tensor(name, shape, Temp, dt)
}

// Fail records a construction error (the first one wins) and returns a placeholder tensor, for ops defined
// outside this package.
func (g *Graph) Fail(format string, args ...any) *Tensor { return g.fail(format, args...) }

// checkShape validates a shape: at least one dimension, every dimension positive.
func checkShape(shape []int) error {
	if len(shape) == 0 {
		return fmt.Errorf("empty shape")
	}
	for _, d := range shape {
		if d <= 0 {
			return fmt.Errorf("shape %v has a non-positive dimension", shape)
		}
	}
	return nil
}

// Input declares a host-written input (images, labels).
func (g *Graph) Input(name string, dt DType, shape ...int) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.fail("input %s: %v", name, err)
	}
	return g.tensor(name, shape, Input, dt)
}

// Param declares a learnable parameter (initialised by the host after Compile).
func (g *Graph) Param(name string, shape ...int) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.fail("param %s: %v", name, err)
	}
	return g.tensor(name, shape, Param, F32)
}

// Const declares a constant tensor (State) holding data, uploaded once when the graph is compiled.
func (g *Graph) Const(name string, data []float32, shape ...int) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.fail("const %s: %v", name, err)
	}
	t := g.tensor(name, shape, State, F32)
	if t.Elems() != len(data) {
		return g.fail("const %s: %d values for shape %v", name, len(data), shape)
	}
	t.init = data
	return t
}

// Keep marks a tensor whose value the host reads after a run (logits, losses, an input gradient), so the planner
// never reuses its memory.
func (g *Graph) Keep(t *Tensor) {
	r := t.root()
	if r.Kind == Temp {
		r.Kind = State
	}
}

// Params lists the graph's parameters in declaration order.
func (g *Graph) Params() []*Tensor {
	var out []*Tensor
	for _, t := range g.tensors {
		if t.Kind == Param {
			out = append(out, t)
		}
	}
	return out
}

// Add appends an op to the graph and returns it.
func (g *Graph) Add(op *Op) *Op {
	g.ops = append(g.ops, op)
	return op
}

// same checks that two tensors have equal shapes.
func same(a, b *Tensor) bool {
	if len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}

// shapeString renders shapes for messages.
func shapeString(ts ...*Tensor) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

// State declares a persistent tensor that starts at zero (optimizer moments).
func (g *Graph) State(name string, shape ...int) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.fail("state %s: %v", name, err)
	}
	return g.tensor(name, shape, State, F32)
}
