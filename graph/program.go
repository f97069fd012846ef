package graph

import (
	"fmt"
	"sort"
	"time"
	"unsafe"

	"github.com/sqnet/sqnet/vk"
)

// Program is a compiled graph: persistent tensors allocated, temporaries planned into one arena, and every op
// recorded into one command buffer per input set (one per stage and input set for a graph with stages). Inputs
// are double-buffered: Write fills the set that is not running, so the host uploads batch i+1 while the device
// runs step i.
type Program struct {
	g       *Graph
	dev     *vk.Device
	arena   *vk.Buffer
	owned   map[*Tensor]*vk.Buffer    // persistent tensors (params, state)
	inputs  [2]map[*Tensor]*vk.Buffer // the two input sets
	offsets map[*Tensor]uint64        // temporaries' offsets in the arena
	recs    [2][]*vk.Recorder         // per input set, one recorder per stage
	next    int                       // the input set Write fills and Submit runs
	running int                       // the set in flight, or −1
	stage   int                       // the stage in flight (or last run) of set last
	last    int                       // the set the last Submit ran
	peak    uint64
	persist uint64
	align   uint64
}

// Stats describes a compiled program's memory and commands.
type Stats struct {
	Ops        int    // recorded ops
	Dispatches int    // dispatches per step
	Barriers   int    // barriers per step
	ArenaBytes uint64 // peak memory of temporaries after planning
	NaiveBytes uint64 // what the temporaries would take without reuse (aligned like the arena)
	KeptBytes  uint64 // parameters, gradients, state and both input sets
}

// Compile allocates and records the graph. The graph must not change afterwards.
func (g *Graph) Compile() (*Program, error) {
	if g.err != nil {
		return nil, g.err
	}
	dev := g.lib.Device()
	p := &Program{g: g, dev: dev, owned: map[*Tensor]*vk.Buffer{}, offsets: map[*Tensor]uint64{}, running: -1, stage: -1}
	p.inputs[0], p.inputs[1] = map[*Tensor]*vk.Buffer{}, map[*Tensor]*vk.Buffer{}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	if err := g.checkLoops(); err != nil {
		return nil, err
	}
	// Lifetimes of the temporaries, in op order (a loop's body once: no temporary crosses its boundary, so every
	// iteration reuses the same plan); a view extends its root's.
	first, last := map[*Tensor]int{}, map[*Tensor]int{}
	for i, op := range g.ops {
		for _, t := range append(append([]*Tensor(nil), op.In...), op.Out...) {
			r := t.root()
			if r.Kind != Temp {
				continue
			}
			if _, seen := first[r]; !seen {
				first[r] = i
			}
			last[r] = i
		}
	}
	var temps []*Tensor
	var lts []Lifetime
	for _, t := range g.tensors {
		if _, ok := first[t]; ok && t.alias == nil {
			temps = append(temps, t)
			lts = append(lts, Lifetime{Size: t.Bytes(), First: first[t], Last: last[t]})
		}
	}
	align := max(dev.Info().Limits.MinStorageBufferAlignment, 16)
	offs, peak, err := Plan(lts, align)
	if err != nil {
		return nil, err
	}
	p.peak, p.align = peak, align
	if peak > 0 {
		if p.arena, err = dev.Alloc(peak); err != nil {
			return nil, fmt.Errorf("compile: arena of %s for temporaries: %w", vk.HumanBytes(peak), err)
		}
	}
	for i, t := range temps {
		p.offsets[t] = offs[i]
	}
	for _, t := range g.tensors {
		if t.alias != nil {
			continue
		}
		switch t.Kind {
		case Param, State:
			b, err := dev.Alloc(t.Bytes())
			if err != nil {
				return nil, fmt.Errorf("compile: %s: %w", t, err)
			}
			// Zero state (gradients, optimizer moments) so a first step starts from a defined value; constants
			// get their value.
			init := make([]byte, t.Bytes())
			if t.init != nil {
				init = bytesOf(t.init)
			}
			if err := b.Write(0, init); err != nil {
				return nil, err
			}
			p.owned[t] = b
			p.persist += t.Bytes()
		case Input:
			for s := range p.inputs {
				b, err := dev.Alloc(t.Bytes())
				if err != nil {
					return nil, fmt.Errorf("compile: input %s: %w", t, err)
				}
				p.inputs[s][t] = b
				p.persist += t.Bytes()
			}
		}
	}
	for s := range p.recs {
		for range g.Stages() {
			rec, err := dev.NewRecorder()
			if err != nil {
				return nil, err
			}
			p.recs[s] = append(p.recs[s], rec)
		}
	}
	if err := p.record(); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// record records every op into the program's command buffers, loops unrolled. Values that change from run to run
// (RNG steps, Adam's corrections) are inputs the host writes, so one recording serves every run.
func (p *Program) record() error {
	if err := p.Wait(); err != nil {
		return err
	}
	for s, recs := range p.recs {
		for k, rec := range recs {
			if err := rec.Reset(); err != nil {
				return err
			}
			if k > 0 {
				// What the earlier stage wrote (and the host wrote in between) must be visible to this one.
				if err := rec.Barrier(); err != nil {
					return err
				}
			}
		}
		at := p.bindings(s)
		for _, sc := range p.g.schedule() {
			p.g.iter = sc.iter
			if err := sc.op.Run(recs[sc.stage], at); err != nil {
				return fmt.Errorf("record %s: %w", sc.op.Name, err)
			}
		}
		p.g.iter = 0
		for _, rec := range recs {
			if err := rec.End(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Rerecord records every op again, for ops whose Run reads settings the host changed since Compile (an attack's
// attempt number in a push constant); it waits for a step in flight first.
func (p *Program) Rerecord() error { return p.record() }

// bindings returns the range of every tensor for input set s.
func (p *Program) bindings(s int) Binder {
	return func(t *Tensor) vk.Range {
		r := t.root()
		switch r.Kind {
		case Input:
			return p.inputs[s][r].Range(0, t.Bytes())
		case Temp:
			return p.arena.Range(p.offsets[r], t.Bytes())
		}
		return p.owned[r].Range(0, t.Bytes())
	}
}

// Stats reports the program's memory plan and command counts.
func (p *Program) Stats() Stats {
	var naive uint64
	for t := range p.offsets {
		naive += (t.Bytes() + p.align - 1) / p.align * p.align
	}
	st := Stats{Ops: len(p.g.ops), ArenaBytes: p.peak, NaiveBytes: naive, KeptBytes: p.persist}
	for _, rec := range p.recs[0] {
		st.Dispatches += rec.Dispatches()
		st.Barriers += rec.Barriers()
	}
	return st
}

// bytesOf views a slice of 4-byte values as bytes.
func bytesOf[T ~float32 | ~uint32 | ~int32](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// buffer returns where a persistent or input tensor lives for the host: inputs in the set Write fills next.
func (p *Program) buffer(t *Tensor, forWrite bool) (*vk.Buffer, error) {
	r := t.root()
	if r.g != p.g {
		return nil, fmt.Errorf("%s belongs to another graph", t)
	}
	switch r.Kind {
	case Input:
		if !forWrite {
			return nil, fmt.Errorf("%s is an input: the host writes it, it does not read it back", t)
		}
		return p.inputs[p.next][r], nil
	case Temp:
		return nil, fmt.Errorf("%s is a temporary whose memory is reused; mark it with Keep to read it", t)
	}
	return p.owned[r], nil
}

// Write copies host data into an input (into the set the next Submit runs, never the one in flight) or a
// parameter.
func Write[T ~float32 | ~uint32 | ~int32](p *Program, t *Tensor, data []T) error {
	if len(data) != t.Elems() {
		return fmt.Errorf("write %s: %d values for %d elements", t, len(data), t.Elems())
	}
	b, err := p.buffer(t, true)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return b.Write(0, bytesOf(data))
}

// Read copies a parameter, gradient or kept tensor to the host. Call it after Wait.
func Read[T ~float32 | ~uint32 | ~int32](p *Program, t *Tensor, dst []T) error {
	if len(dst) != t.Elems() {
		return fmt.Errorf("read %s: room for %d values, it has %d", t, len(dst), t.Elems())
	}
	if p.running >= 0 {
		return fmt.Errorf("read %s: a step is in flight; Wait first", t)
	}
	b, err := p.buffer(t, false)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return b.Read(0, bytesOf(dst))
}

// Submit starts the step on the input set last written; the next Write then fills the other set. At most one
// step is in flight: Submit waits for the previous one first. A program with stages runs its first stage only;
// SubmitStage runs the others.
func (p *Program) Submit() error {
	if err := p.Wait(); err != nil {
		return err
	}
	if err := p.recs[p.next][0].Submit(); err != nil {
		return err
	}
	p.running, p.last, p.stage = p.next, p.next, 0
	p.next = 1 - p.next
	return nil
}

// Stages is the number of stages of the program's step (1 for a graph without Graph.Stage).
func (p *Program) Stages() int { return len(p.recs[0]) }

// SubmitStage starts stage k (k ≥ 1) of the step the last Submit started, on the same input set, once the stage
// before it has finished (it waits for it); the host may read and write persistent tensors in between.
func (p *Program) SubmitStage(k int) error {
	if k < 1 || k >= len(p.recs[0]) {
		return fmt.Errorf("submit stage %d: the program has stages 0–%d", k, len(p.recs[0])-1)
	}
	if err := p.Wait(); err != nil {
		return err
	}
	if p.stage != k-1 {
		return fmt.Errorf("submit stage %d: the last stage run was %d", k, p.stage)
	}
	if err := p.recs[p.last][k].Submit(); err != nil {
		return err
	}
	p.running, p.stage = p.last, k
	return nil
}

// Wait blocks until the step (or stage) in flight, if any, has finished.
func (p *Program) Wait() error {
	if p.running < 0 {
		return nil
	}
	err := p.recs[p.running][p.stage].Wait()
	p.running = -1
	return err
}

// Run submits a step, every stage of it in turn, and waits for it.
func (p *Program) Run() error {
	if err := p.Submit(); err != nil {
		return err
	}
	for k := 1; k < p.Stages(); k++ {
		if err := p.SubmitStage(k); err != nil {
			return err
		}
	}
	return p.Wait()
}

// Close waits for the device and frees everything the program allocated.
func (p *Program) Close() {
	p.Wait()
	for _, recs := range p.recs {
		for _, r := range recs {
			r.Close()
		}
	}
	for _, b := range p.owned {
		b.Free()
	}
	for _, set := range p.inputs {
		for _, b := range set {
			b.Free()
		}
	}
	p.arena.Free()
}

// OpTime is the device time spent in the ops of one name during a profiled run.
type OpTime struct {
	Name    string  `json:"name"`
	Count   int     `json:"count"`   // recorded occurrences
	Seconds float64 `json:"seconds"` // device time, from the timestamps around each occurrence
	Flops   float64 `json:"flops"`   // the occurrences' arithmetic (Op.Flops), 0 for memory-bound ops
	// Bytes is what the occurrences read and wrote, counting each input and output tensor once (a lower bound:
	// a kernel that rereads its input moves more).
	Bytes float64 `json:"bytes"`
}

// Profile is a profiled run: the device time of every op name, most expensive first, how many ops were timed,
// and the run's wall time from submit to completion next to the span its timestamps cover — the difference is the
// time outside the command buffer's kernels and barriers (submission, the wait, the driver).
type Profile struct {
	Ops         []OpTime `json:"ops"`
	Recorded    int      `json:"recorded_ops"`
	WallSeconds float64  `json:"wall_seconds"` // submit to completion
	SpanSeconds float64  `json:"span_seconds"` // the first timestamp to the last
}

// Profile runs the program once more, from a separate recording with a timestamp after every op, on the input set
// the last Run used, and returns the device time per op name with each name's arithmetic and bytes moved. The time
// of an op runs from the previous op's timestamp to its own, so it includes the barrier in front of it. Only the
// first vk.MaxTimestamps − 1 ops of a longer schedule are timed (Recorded says how many were). It needs a queue with
// timestamps. The run is a real one: a training step profiled this way trains.
func (p *Program) Profile() (*Profile, error) {
	var times []OpTime
	recorded := 0
	if err := p.Wait(); err != nil {
		return nil, err
	}
	rec, err := p.dev.NewRecorder()
	if err != nil {
		return nil, err
	}
	defer rec.Close()
	at := p.bindings(1 - p.next)
	if err := rec.Timestamp("start"); err != nil {
		return nil, err
	}
	sched := p.g.schedule()
	for _, sc := range sched {
		if recorded == vk.MaxTimestamps-1 {
			break
		}
		p.g.iter = sc.iter
		err := sc.op.Run(rec, at)
		if err == nil {
			err = rec.Timestamp(sc.op.Name)
		}
		if err != nil {
			p.g.iter = 0
			return nil, fmt.Errorf("profile %s: %w", sc.op.Name, err)
		}
		recorded++
	}
	p.g.iter = 0
	start := time.Now()
	if err := rec.Run(); err != nil {
		return nil, err
	}
	wall := time.Since(start).Seconds()
	ts, err := rec.Timings()
	if err != nil {
		return nil, err
	}
	byName := map[string]*OpTime{}
	for i := 1; i < len(ts); i++ {
		o := byName[ts[i].Label]
		if o == nil {
			o = &OpTime{Name: ts[i].Label}
			byName[o.Name] = o
		}
		op := sched[i-1].op
		o.Count++
		o.Seconds += (ts[i].Ns - ts[i-1].Ns) / 1e9
		o.Flops += op.Flops
		for _, ts := range [][]*Tensor{op.In, op.Out} {
			for _, t := range ts {
				o.Bytes += 4 * float64(t.Elems())
			}
		}
	}
	for _, o := range byName {
		times = append(times, *o)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Seconds > times[j].Seconds })
	return &Profile{Ops: times, Recorded: recorded, WallSeconds: wall, SpanSeconds: (ts[len(ts)-1].Ns - ts[0].Ns) / 1e9}, nil
}
