package kernels

import (
	"math/bits"

	"github.com/sqnet/sqnet/vk"
)

// reducePush mirrors reduce.comp's push constants.
type reducePush struct {
	N, Chunk, Rows uint32
	Div            float32
}

// sumSerial is how many elements each invocation of a vector sum's first pass adds serially before the
// workgroup's tree: enough to amortise a workgroup's barriers, few enough to leave many workgroups for a big GPU.
const sumSerial = 16

// redWG returns the workgroup size of a tree reduction over rows of length chunk: a power of two (the shared-memory
// tree halves it), at most the library's workgroup size, and no larger than chunk needs.
func (l *Lib) redWG(chunk int) uint32 {
	p := uint32(1) << (bits.Len32(l.wg) - 1) // largest power of two ≤ l.wg
	if chunk < int(p) {
		p = uint32(1) << bits.Len32(uint32(chunk-1)) // smallest power of two ≥ chunk
	}
	return p
}

// rowGroups returns a workgroup grid with one workgroup per row, folded into 2-D when rows exceeds the device's
// maxComputeWorkGroupCount[0]; shaders read the row as gl_WorkGroupID.x + gl_WorkGroupID.y·gl_NumWorkGroups.x and
// skip the padding workgroups.
func (l *Lib) rowGroups(rows int) [3]uint32 {
	maxX := int(l.dev.Info().Limits.MaxWorkgroupCount[0])
	if rows <= maxX {
		return [3]uint32{uint32(rows), 1, 1}
	}
	return [3]uint32{uint32(maxX), uint32((rows + maxX - 1) / maxX), 1}
}

// reduceRows records out[r] = Σ f(x[r·chunk .. min((r+1)·chunk, n))) / div for every row r.
func (l *Lib) reduceRows(r *vk.Recorder, shader string, x, out vk.Range, n, chunk int, div float32) error {
	rows := (n + chunk - 1) / chunk
	p, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: []vk.Access{vk.Read, vk.Write},
		PushSize: pushSize(reducePush{}), Local: [3]uint32{l.redWG(chunk), 1, 1}})
	if err != nil {
		return err
	}
	push := reducePush{N: uint32(n), Chunk: uint32(chunk), Rows: uint32(rows), Div: div}
	return r.Dispatch(p, l.rowGroups(rows), push, x, out)
}

// sumPlan returns how a vector sum of n elements splits: into groups partial sums of chunk elements each (the
// last may be shorter), groups ≤ the reduction workgroup size so that one workgroup combines all partials in the
// second pass. groups = 1 means a single pass. The plan depends only on n and the device, so the order of
// additions, and hence the result's bits, is the same on every run.
func (l *Lib) sumPlan(n int) (groups, chunk int) {
	p := int(l.redWG(1 << 30))
	if n <= p*sumSerial {
		return 1, n
	}
	groups = min(p, (n+p*sumSerial-1)/(p*sumSerial))
	chunk = (n + groups - 1) / groups
	return (n + chunk - 1) / chunk, chunk
}

// SumScratch returns how many floats of scratch space Sum and Mean need for n elements: the first pass's partial
// sums, or 0 when n is small enough for a single pass.
func (l *Lib) SumScratch(n int) int {
	if n <= 0 {
		return 0
	}
	if g, _ := l.sumPlan(n); g > 1 {
		return g
	}
	return 0
}

// Sum records out[0] = Σ x[0..n) with a deterministic two-pass tree reduction (same input and device ⇒ identical
// bits). scratch must hold SumScratch(n) floats and overlap neither x nor out; it may be the zero Range when
// SumScratch(n) is 0. The summation error is at most about (n/(P·G) + log2(P·G))·2⁻²⁴·Σ|x| for workgroup
// size P and G partials.
func (l *Lib) Sum(r *vk.Recorder, x, out, scratch vk.Range, n int) error {
	return l.sum(r, "sum", x, out, scratch, n, false)
}

// Mean records out[0] = Σ x[0..n) / n, reduced as Sum.
func (l *Lib) Mean(r *vk.Recorder, x, out, scratch vk.Range, n int) error {
	return l.sum(r, "mean", x, out, scratch, n, true)
}

func (l *Lib) sum(r *vk.Recorder, op string, x, out, scratch vk.Range, n int, mean bool) error {
	if err := positive(op, Dim{"n", n}); err != nil {
		return err
	}
	if err := need(op, "x", x, n); err != nil {
		return err
	}
	if err := need(op, "out", out, 1); err != nil {
		return err
	}
	div := float32(1)
	if mean {
		div = float32(n)
	}
	g, chunk := l.sumPlan(n)
	if g == 1 {
		if err := disjoint(op, named{"x", x}, named{"out", out}); err != nil {
			return err
		}
		return l.reduceRows(r, "reduce_sum", x, out, n, chunk, div)
	}
	if err := need(op, "scratch", scratch, g); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"out", out}, named{"scratch", scratch}); err != nil {
		return err
	}
	if err := l.reduceRows(r, "reduce_sum", x, scratch, n, chunk, 1); err != nil {
		return err
	}
	return l.reduceRows(r, "reduce_sum", scratch, out, g, g, div)
}

// RowSum records out[i] = Σ_j x[i, j] for x of shape [b, d]: one workgroup per row, a fixed tree (deterministic).
func (l *Lib) RowSum(r *vk.Recorder, x, out vk.Range, b, d int) error {
	return l.rows(r, "row sum", "reduce_sum", x, out, b, d, 1)
}

// RowL1 records out[i] = Σ_j |x[i, j]|, the per-example ℓ1 norm of x of shape [b, d] (e.g. of an input gradient),
// reduced as RowSum.
func (l *Lib) RowL1(r *vk.Recorder, x, out vk.Range, b, d int) error {
	return l.rows(r, "row l1", "reduce_l1", x, out, b, d, 1)
}

// RowMean records out[i] = (Σ_j x[i, j]) / d, reduced as RowSum: global average pooling of NCHW x as [N·C, H·W].
func (l *Lib) RowMean(r *vk.Recorder, x, out vk.Range, b, d int) error {
	return l.rows(r, "row mean", "reduce_sum", x, out, b, d, float32(d))
}

// rows records out[i] = Σ_j f(x[i, j]) / div for x of shape [b, d] with the reduction shader of f.
func (l *Lib) rows(r *vk.Recorder, op, shader string, x, out vk.Range, b, d int, div float32) error {
	if err := positive(op, Dim{"B", b}, Dim{"D", d}); err != nil {
		return err
	}
	if err := need(op, "x", x, b*d); err != nil {
		return err
	}
	if err := need(op, "out", out, b); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"out", out}); err != nil {
		return err
	}
	return l.reduceRows(r, shader, x, out, b*d, d, div)
}

// SumRef is the CPU reference of Sum: accumulated in float64, then rounded once.
func SumRef(x []float32) float32 {
	s := 0.0
	for _, v := range x {
		s += float64(v)
	}
	return float32(s)
}

// MeanRef is the CPU reference of Mean.
func MeanRef(x []float32) float32 {
	s := 0.0
	for _, v := range x {
		s += float64(v)
	}
	return float32(s / float64(len(x)))
}

// RowSumRef is the CPU reference of RowSum (float64 accumulation).
func RowSumRef(x []float32, b, d int) []float32 {
	out := make([]float32, b)
	for i := range out {
		out[i] = SumRef(x[i*d : (i+1)*d])
	}
	return out
}

// RowL1Ref is the CPU reference of RowL1 (float64 accumulation).
func RowL1Ref(x []float32, b, d int) []float32 {
	out := make([]float32, b)
	for i := range out {
		s := 0.0
		for _, v := range x[i*d : (i+1)*d] {
			s += abs64(float64(v))
		}
		out[i] = float32(s)
	}
	return out
}

func abs64(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
