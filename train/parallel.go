package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/dist"
	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
)

// replicaSpec places one data-parallel replica: its rows of the global batch (rows from index·rows) and the
// elements of one image, so its noise and random starts draw what one device would draw for those rows.
type replicaSpec struct {
	index, rows, imageElems int
}

// rows is how many examples of each batch this configuration's graph holds.
func (c Config) rows() int {
	if c.replica != nil {
		return c.replica.rows
	}
	return c.Batch
}

// rngOffset is where this replica's rows start in the Philox streams of the step's noise (kernels.RNG.Offset).
func (c Config) rngOffset() uint32 {
	if c.replica == nil {
		return 0
	}
	return uint32(c.replica.index * c.replica.rows * c.replica.imageElems)
}

// parallel is data-parallel training: replicas of the training step on several devices of this process (lib and
// Config.ExtraDevices) and, with Config.Comm, in several processes. Each replica runs forward and backward on its
// rows of the global batch — stage 0 of its program, every gradient already scaled by 1/global batch — then the
// host sums the gradients in a fixed order (this process's replicas 0, 1, …, then across processes with
// Comm.SumFloats), writes the sum into replica 0 and runs its optimizer (stage 1) once; replica 0's weights and
// batch-norm buffers are then copied to the other replicas of the process, and rank 0's buffers to every process.
// Every process applies the same update to the same weights, so replicas stay identical.
type parallel struct {
	libs  []*kernels.Lib
	reps  []*session
	comm  dist.Comm
	first int // the global index of reps[0]
	rows  int
	sz    int
	acc   []float32 // the packed gradients, then loss sum, correct count and the two stop flags
	tmp   []float32
	loss  []float32
	cnt   []uint32
	bufs  []string // batch norm's buffers, sorted: what rank 0 broadcasts
}

// flags in the packed buffer's tail: set by any replica, seen by all.
const (
	tailLoss = iota
	tailCorrect
	tailInterrupt
	tailOutOfTime
	tailLen
)

// parallelReplicas is how many replicas a configuration spreads its batch over (1: not data-parallel).
func (c Config) parallelReplicas() int {
	n := 1 + len(c.ExtraDevices)
	if c.Comm != nil {
		n *= c.Comm.Size()
	}
	return n
}

// CheckSplit refuses a global batch that does not split evenly over r data-parallel replicas; the CLI calls it
// before any output, Run again on the real configuration.
func CheckSplit(batch, r int) error {
	if r > 1 && batch%r != 0 {
		return fmt.Errorf("--batch %d does not split evenly over %d replicas", batch, r)
	}
	return nil
}

// checkParallel refuses what data-parallel training cannot split.
func (c Config) checkParallel(imageElems int) error {
	r := c.parallelReplicas()
	if r == 1 {
		return nil
	}
	if err := CheckSplit(c.Batch, r); err != nil {
		return err
	}
	switch {
	case (c.Batch/r*imageElems)%4 != 0:
		return fmt.Errorf("a replica's %d images of %d values are not a whole number of RNG blocks of 4; "+
			"choose a --batch whose share per replica is even", c.Batch/r, imageElems)
	case c.OnTrack != nil:
		return fmt.Errorf("tracking inside epochs is not available in data-parallel training")
	}
	return nil
}

// newParallel compiles one replica per device of this process (s, already compiled for lib, is replica 0) and
// gives them replica 0's weights and optimizer state.
func newParallel(lib *kernels.Lib, cfg Config, a model.Arch) (*parallel, error) {
	libs := append([]*kernels.Lib{lib}, cfg.ExtraDevices...)
	p := &parallel{libs: libs, comm: cfg.Comm, rows: cfg.Batch / cfg.parallelReplicas(), sz: a.C * a.H * a.W}
	if cfg.Comm != nil {
		p.first = cfg.Comm.Rank() * len(libs)
	}
	for j, l := range libs {
		s, err := compile(l, p.config(cfg, j), a)
		if err != nil {
			p.close()
			return nil, err
		}
		p.reps = append(p.reps, s)
	}
	for name, t := range p.reps[0].net.Params {
		if !slices.Contains(p.reps[0].net.Order, t) {
			p.bufs = append(p.bufs, name)
		}
	}
	slices.Sort(p.bufs)
	n := 0
	for _, t := range p.grads(p.reps[0]) {
		n += t.Elems()
	}
	p.acc, p.tmp = make([]float32, n+tailLen), make([]float32, n)
	p.loss, p.cnt = make([]float32, p.rows), make([]uint32, 1)
	return p, nil
}

// config is replica j's configuration.
func (p *parallel) config(cfg Config, j int) Config {
	cfg.replica = &replicaSpec{index: p.first + j, rows: p.rows, imageElems: p.sz}
	return cfg
}

// grads lists a replica's parameter gradients in state_dict order (the packing order).
func (p *parallel) grads(s *session) []*graph.Tensor {
	var out []*graph.Tensor
	for _, t := range s.net.Order {
		if t.Grad != nil {
			out = append(out, t.Grad)
		}
	}
	return out
}

// load gives every replica the weights and optimizer state (opt may be nil).
func (p *parallel) load(w model.Weights, opt map[string][]float32) error {
	for _, s := range p.reps {
		if err := s.load(w, opt); err != nil {
			return err
		}
	}
	return nil
}

// processRows is this process's share of every batch: its replicas' rows, which it alone reads and decodes.
func (p *parallel) processRows() data.Rows {
	return data.Rows{From: p.first * p.rows, N: len(p.reps) * p.rows}
}

// write uploads each replica's rows of this process's share of the batch (processRows) and prepares step t.
func (p *parallel) write(xb []float32, yb []uint32, t int) error {
	for j, s := range p.reps {
		lo := j * p.rows
		if err := graph.Write(s.prog, s.x, xb[lo*p.sz:(lo+p.rows)*p.sz]); err != nil {
			return err
		}
		if err := graph.Write(s.prog, s.y, yb[lo:lo+p.rows]); err != nil {
			return err
		}
		if err := s.prepare(t); err != nil {
			return err
		}
	}
	return nil
}

// step runs one training step on the batch written last: the replicas' forward and backward passes (at the same
// time, one per device), the reduction and the update. interrupt and outOfTime are this process's wishes to stop
// after the step; the returned flags are whether any process had them, so every process stops at the same step.
func (p *parallel) step(interrupt, outOfTime bool) (lossSum float64, correct int, stop, late bool, err error) {
	for _, s := range p.reps {
		if err := s.prog.Submit(); err != nil {
			return 0, 0, false, false, err
		}
	}
	n := len(p.tmp)
	var local float64
	for j, s := range p.reps {
		if err := s.prog.Wait(); err != nil {
			return 0, 0, false, false, err
		}
		dst := p.acc[:n]
		if j > 0 {
			dst = p.tmp
		}
		off := 0
		for _, g := range p.grads(s) {
			if err := graph.Read(s.prog, g, dst[off:off+g.Elems()]); err != nil {
				return 0, 0, false, false, err
			}
			off += g.Elems()
		}
		if j > 0 {
			for i, v := range p.tmp {
				p.acc[i] += v
			}
		}
		if err := graph.Read(s.prog, s.loss, p.loss); err != nil {
			return 0, 0, false, false, err
		}
		if err := graph.Read(s.prog, s.correct, p.cnt); err != nil {
			return 0, 0, false, false, err
		}
		for _, l := range p.loss {
			local += float64(l)
		}
		correct += int(p.cnt[0])
	}
	tail := p.acc[n:]
	tail[tailLoss], tail[tailCorrect] = float32(local), float32(correct)
	tail[tailInterrupt], tail[tailOutOfTime] = flag(interrupt), flag(outOfTime)
	if p.comm != nil {
		if err := p.comm.SumFloats(p.acc); err != nil {
			return 0, 0, false, false, err
		}
	}
	if math.IsNaN(float64(tail[tailLoss])) {
		return math.NaN(), 0, false, false, nil
	}
	// Replica 0 applies the summed gradient.
	r0 := p.reps[0]
	off := 0
	for _, g := range p.grads(r0) {
		if err := graph.Write(r0.prog, g, p.acc[off:off+g.Elems()]); err != nil {
			return 0, 0, false, false, err
		}
		off += g.Elems()
	}
	if err := r0.prog.SubmitStage(1); err != nil {
		return 0, 0, false, false, err
	}
	if err := r0.prog.Wait(); err != nil {
		return 0, 0, false, false, err
	}
	if err := p.share(); err != nil {
		return 0, 0, false, false, err
	}
	return float64(tail[tailLoss]), int(tail[tailCorrect] + 0.5), tail[tailInterrupt] > 0, tail[tailOutOfTime] > 0, nil
}

// share makes every replica hold replica 0's weights, and every process rank 0's batch-norm buffers (each
// replica's forward pass updated its own running statistics from its own rows, as PyTorch's DistributedDataParallel
// does; like it, rank 0's are the ones kept).
func (p *parallel) share() error {
	r0 := p.reps[0]
	if p.comm != nil && len(p.bufs) > 0 {
		var packed []float32
		for _, name := range p.bufs {
			v := make([]float32, r0.net.Params[name].Elems())
			if err := graph.Read(r0.prog, r0.net.Params[name], v); err != nil {
				return err
			}
			packed = append(packed, v...)
		}
		if err := p.comm.Broadcast(packed); err != nil {
			return err
		}
		for _, name := range p.bufs {
			t := r0.net.Params[name]
			if err := graph.Write(r0.prog, t, packed[:t.Elems()]); err != nil {
				return err
			}
			packed = packed[t.Elems():]
		}
	}
	if len(p.reps) == 1 {
		return nil
	}
	w, err := r0.net.Weights(r0.prog)
	if err != nil {
		return err
	}
	for _, s := range p.reps[1:] {
		if err := s.net.Load(s.prog, w); err != nil {
			return err
		}
	}
	return nil
}

// switchAlpha recompiles every replica for a new α (see switchAlpha).
func (p *parallel) switchAlpha(cfg Config) error {
	for j, s := range p.reps {
		n, err := switchAlpha(p.libs[j], s, p.config(cfg, j))
		if err != nil {
			return err
		}
		p.reps[j] = n
	}
	return nil
}

// close frees every replica's program.
func (p *parallel) close() {
	for _, s := range p.reps {
		s.prog.Close()
	}
}

func flag(b bool) float32 {
	if b {
		return 1
	}
	return 0
}
