package graph

import (
	"fmt"
	"sort"
)

// Lifetime is one buffer's need: Size bytes, live from step First to step Last inclusive (steps are the positions
// of the recorded commands that produce and consume it).
type Lifetime struct {
	Size        uint64
	First, Last int
}

// Plan assigns each lifetime a byte offset in one arena so that buffers whose lifetimes overlap never share bytes,
// and returns the offsets and the arena size (peak memory). It places the largest buffers first, each at the
// lowest aligned offset that fits between the buffers already placed and alive at the same time (the greedy-by-size
// strategy of TensorFlow Lite's arena planner): near-optimal on the chains of layers that networks are.
func Plan(lts []Lifetime, align uint64) ([]uint64, uint64, error) {
	if align == 0 || align&(align-1) != 0 {
		return nil, 0, fmt.Errorf("plan: alignment %d is not a power of two", align)
	}
	order := make([]int, len(lts))
	for i, l := range lts {
		if l.Last < l.First {
			return nil, 0, fmt.Errorf("plan: buffer %d lives from step %d to %d", i, l.First, l.Last)
		}
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		la, lb := lts[order[a]], lts[order[b]]
		if la.Size != lb.Size {
			return la.Size > lb.Size
		}
		return la.First < lb.First
	})
	offs := make([]uint64, len(lts))
	type placed struct{ lo, hi uint64 }
	var done []int
	var peak uint64
	for _, i := range order {
		li := lts[i]
		size := (li.Size + align - 1) &^ (align - 1)
		var busy []placed
		for _, j := range done {
			lj := lts[j]
			if lj.First <= li.Last && li.First <= lj.Last {
				busy = append(busy, placed{offs[j], offs[j] + (lj.Size+align-1)&^(align-1)})
			}
		}
		sort.Slice(busy, func(a, b int) bool { return busy[a].lo < busy[b].lo })
		var off uint64
		for _, b := range busy {
			if off+size <= b.lo {
				break
			}
			off = max(off, b.hi)
		}
		offs[i] = off
		peak = max(peak, off+size)
		done = append(done, i)
	}
	return offs, peak, nil
}
