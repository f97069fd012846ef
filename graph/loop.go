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

// Stage ends the graph's current stage: the ops added afterwards are recorded into a command buffer of their own,
// which the host submits separately (Program.SubmitStage) after the earlier stages have run, so it can act in
// between — data-parallel training sums the gradients of several devices after the backward stage and before the
// optimizer's. A graph without Stage is one stage, one command buffer, as always. Stage inside Repeat's body is an
// error.
func (g *Graph) Stage() {
	n := len(g.ops)
	if k := len(g.stages); (k > 0 && g.stages[k-1] == n) || n == 0 {
		return // an empty stage would be a submit of nothing
	}
	g.stages = append(g.stages, n)
}

// Stages is the number of stages the graph's ops fall into (1 without Stage).
func (g *Graph) Stages() int { return len(g.stages) + 1 }

// stageOf returns the stage of op index i.
func (g *Graph) stageOf(i int) int {
	s := 0
	for s < len(g.stages) && i >= g.stages[s] {
		s++
	}
	return s
}

// scheduled is one recorded occurrence of an op: which iteration of its loop it belongs to (0 outside loops) and
// which stage it is recorded into.
type scheduled struct {
	op    *Op
	iter  int
	stage int
}

// schedule returns the ops in recording order, loop bodies unrolled.
func (g *Graph) schedule() []scheduled {
	var out []scheduled
	add := func(from, to, iter int) {
		for i := from; i < to; i++ {
			out = append(out, scheduled{g.ops[i], iter, g.stageOf(i)})
		}
	}
	i := 0
	for _, l := range g.loops {
		add(i, l.start, 0)
		for it := range l.n {
			add(l.start, l.end, it)
		}
		i = l.end
	}
	add(i, len(g.ops), 0)
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
	for _, b := range g.stages {
		for _, l := range g.loops {
			if b > l.start && b < l.end {
				return fmt.Errorf("compile: a stage boundary (op %d) falls inside a repeated body (ops %d–%d)", b,
					l.start, l.end-1)
			}
		}
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
