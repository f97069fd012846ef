package graph

import "fmt"

// loop is a range of ops recorded n times in a row (the steps of an attack in one command buffer).
type loop struct{ start, end, n int }

// Repeat records the ops that body adds n times in a row. Tensors the iterations hand to each other (the
// adversarial image) must be State — written in place, kept — and no temporary may be used both inside and
// outside the body, so one memory plan serves every iteration; Compile checks both.
func (g *Graph) Repeat(n int, body func()) {
	if n < 1 {
		g.fail("repeat: %d iterations", n)
		return
	}
	start := len(g.ops)
	body()
	if len(g.ops) > start {
		g.loops = append(g.loops, loop{start: start, end: len(g.ops), n: n})
	}
}

// scheduled is one recorded occurrence of an op: which iteration of its loop it belongs to (0 outside loops).
type scheduled struct {
	op   *Op
	iter int
}

// schedule returns the ops in recording order, loop bodies unrolled.
func (g *Graph) schedule() []scheduled {
	var out []scheduled
	add := func(ops []*Op, iter int) {
		for _, op := range ops {
			out = append(out, scheduled{op, iter})
		}
	}
	i := 0
	for _, l := range g.loops {
		add(g.ops[i:l.start], 0)
		for it := range l.n {
			add(g.ops[l.start:l.end], it)
		}
		i = l.end
	}
	add(g.ops[i:], 0)
	return out
}

// Iteration is, while an op's Run is recording, the iteration of the repeated body it is recorded for (0 outside
// loops): an op that must differ between iterations — EOT's noise draws — reads it into its push constants.
func (g *Graph) Iteration() int { return g.iter }

// checkLoops refuses temporaries that cross a loop's boundary.
func (g *Graph) checkLoops() error {
	region := func(i int) int { // −1 outside every loop, else the loop's index
		for li, l := range g.loops {
			if i >= l.start && i < l.end {
				return li
			}
		}
		return -1
	}
	seen := map[*Tensor]int{}
	for i, op := range g.ops {
		r := region(i)
		for _, t := range append(append([]*Tensor(nil), op.In...), op.Out...) {
			root := t.root()
			if root.Kind != Temp {
				continue
			}
			if prev, ok := seen[root]; ok && prev != r {
				return fmt.Errorf("compile: temporary %s is used both inside and outside a repeated body; "+
					"make it persistent with Keep", root)
			}
			seen[root] = r
		}
	}
	return nil
}
