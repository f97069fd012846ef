package dist

import (
	"fmt"
	"sync"
)

// Loopback returns the n communicators of an in-process job, one per goroutine that plays a rank: what tests use
// to run the multi-process code path without MPI. Sums are taken in rank order (the ordered reduction), so a
// loopback job is bit-identical run to run.
func Loopback(n int) []Comm {
	j := &loopJob{n: n, in: make([][]float32, n)}
	j.cond = sync.NewCond(&j.mu)
	out := make([]Comm, n)
	for r := range out {
		out[r] = &loopComm{job: j, rank: r}
	}
	return out
}

type loopJob struct {
	mu      sync.Mutex
	cond    *sync.Cond
	n       int
	in      [][]float32 // each rank's buffer of the call under way
	arrived int
	round   int // completed collective calls
	result  []float32
	left    int // ranks that have not yet copied the result of the last round
	closed  bool
}

type loopComm struct {
	job  *loopJob
	rank int
}

func (c *loopComm) Rank() int { return c.rank }
func (c *loopComm) Size() int { return c.job.n }

// collect runs one collective call: every rank hands in buf; the last to arrive computes the result with combine;
// every rank then copies it into its buf.
func (c *loopComm) collect(buf []float32, combine func(in [][]float32) []float32) error {
	j := c.job
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.left > 0 { // the previous round's result is still being read
		j.cond.Wait()
	}
	if j.closed {
		return fmt.Errorf("loopback: a rank has closed the job")
	}
	round := j.round
	j.in[c.rank] = buf
	j.arrived++
	if j.arrived == j.n {
		for r := range j.in {
			if len(j.in[r]) != len(buf) {
				j.closed = true
				j.cond.Broadcast()
				return fmt.Errorf("loopback: rank %d gave %d values, rank %d %d", r, len(j.in[r]), c.rank, len(buf))
			}
		}
		j.result = combine(j.in)
		j.arrived, j.left = 0, j.n
		j.round++
		j.cond.Broadcast()
	}
	for j.round == round && !j.closed {
		j.cond.Wait()
	}
	if j.round == round {
		return fmt.Errorf("loopback: a rank has closed the job")
	}
	copy(buf, j.result)
	j.left--
	if j.left == 0 {
		j.cond.Broadcast()
	}
	return nil
}

func (c *loopComm) SumFloats(buf []float32) error {
	return c.collect(buf, func(in [][]float32) []float32 {
		all := make([]float32, 0, len(buf)*len(in))
		for _, b := range in {
			all = append(all, b...)
		}
		out := make([]float32, len(buf))
		sumInRankOrder(out, all, len(in))
		return out
	})
}

func (c *loopComm) Broadcast(buf []float32) error {
	return c.collect(buf, func(in [][]float32) []float32 { return append([]float32(nil), in[0]...) })
}

// Close leaves the job; a rank still waiting in a call gets an error instead of hanging.
func (c *loopComm) Close() error {
	j := c.job
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	j.cond.Broadcast()
	return nil
}
