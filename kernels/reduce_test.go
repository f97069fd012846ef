package kernels

import (
	"fmt"
	"math"
	"math/bits"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// Reductions are checked against a float64 reference with the classic summation error bound: a float32 sum whose
// additions form a tree of depth d has |error| ≤ d·2⁻²⁴·Σ|x| (Higham, ch. 4). Here d = the serial run of each
// invocation (⌈len/P⌉) + log2 P for the workgroup tree, plus the second pass's depth for a two-pass vector sum,
// plus 2 for the rounding of the reference and slack. For long vectors that bound exceeds a single term, so the
// vector sums also run on integer-valued inputs, whose every partial sum is exact in float32 (|Σ| < 2²⁴): there the
// result must match exactly, and a missing or doubled term cannot hide.

// sumBound returns the error bound of a fixed-tree float32 sum of terms whose absolute values sum to absSum.
func sumBound(depth int, absSum float64) float64 { return float64(depth+2) * 0x1p-24 * absSum }

// treeDepth is the depth of one pass of reduce.comp over rows of length m with workgroup size p.
func treeDepth(m int, p uint32) int { return (m+int(p)-1)/int(p) + bits.Len32(p) - 1 }

// compareBounds fails at the first element whose error exceeds its own bound.
func compareBounds(t *testing.T, what string, got, want []float32, bound []float64) {
	t.Helper()
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if !(math.Abs(g-w) <= bound[i]) {
			t.Fatalf("%s: first mismatch at index %d: got %.9g, want %.9g (|diff| %.3g, bound %.3g)", what, i, g, w,
				math.Abs(g-w), bound[i])
		}
	}
}

func TestRowReduce(t *testing.T) {
	l := openLib(t)
	for _, d := range append(edgeSizes, 784, 100003) {
		for _, b := range []int{1, 131} {
			if d*b > 2_000_000 {
				b = 3
			}
			t.Run(fmt.Sprintf("B%d_D%d", b, d), func(t *testing.T) {
				x := uniform(rng(uint64(7*d+b)), b*d, -2, 2)
				bx, bs, bl := upload(t, l, x), zeros(t, l, b), zeros(t, l, b)
				run(t, l, func(r *vk.Recorder) error {
					if err := l.RowSum(r, bx.All(), bs.All(), b, d); err != nil {
						return err
					}
					return l.RowL1(r, bx.All(), bl.All(), b, d)
				})
				l1 := RowL1Ref(x, b, d)
				bound := make([]float64, b)
				for i := range bound {
					bound[i] = sumBound(treeDepth(d, l.redWG(d)), float64(l1[i]))
				}
				compareBounds(t, "row sum", download(t, bs, b), RowSumRef(x, b, d), bound)
				compareBounds(t, "row l1", download(t, bl, b), l1, bound)
			})
		}
	}
}

func TestSum(t *testing.T) {
	l := openLib(t)
	for _, n := range append(edgeSizes, 4096, 4097, 1<<20+5, 3<<20) {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			x := uniform(rng(uint64(n)+11), n, -2, 2)
			bx, bs, bm := upload(t, l, x), zeros(t, l, 1), zeros(t, l, 1)
			scratch := vk.Range{}
			g, chunk := l.sumPlan(n)
			if s := l.SumScratch(n); s > 0 {
				scratch = zeros(t, l, s).All()
			}
			run(t, l, func(r *vk.Recorder) error {
				if err := l.Sum(r, bx.All(), bs.All(), scratch, n); err != nil {
					return err
				}
				return l.Mean(r, bx.All(), bm.All(), scratch, n)
			})
			depth := treeDepth(chunk, l.redWG(chunk))
			if g > 1 {
				depth += treeDepth(g, l.redWG(g))
			}
			abs := 0.0
			for _, v := range x {
				abs += math.Abs(float64(v))
			}
			b := sumBound(depth, abs)
			if n <= 1<<16 {
				// Small sums: the bound is below one term, so it catches a lost element by itself.
				if b >= 0.5 {
					t.Fatalf("bound %g too loose for n=%d", b, n)
				}
			}
			compareBounds(t, "sum", download(t, bs, 1), []float32{SumRef(x)}, []float64{b})
			// The mean's bound is the sum's divided by n, plus the division's own rounding (≤ 3 ulp in Vulkan).
			m := MeanRef(x)
			compareBounds(t, "mean", download(t, bm, 1), []float32{m},
				[]float64{b/float64(n) + 3*0x1p-23*math.Abs(float64(m))})
		})
	}
}

// TestSumExact sums integer-valued inputs in {−2..2}, for which float32 arithmetic is exact in any order, so any
// lost, doubled or misplaced element shows as a mismatch.
func TestSumExact(t *testing.T) {
	l := openLib(t)
	for _, n := range []int{257, 4097, 1<<20 + 5, 3 << 20} {
		r := rng(uint64(n) + 12)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.IntN(5) - 2)
		}
		bx, bs, brow := upload(t, l, x), zeros(t, l, 1), zeros(t, l, 1)
		scratch := vk.Range{}
		if s := l.SumScratch(n); s > 0 {
			scratch = zeros(t, l, s).All()
		}
		d := n / 3 // rows of a [3, n/3] view, exact too
		run(t, l, func(r *vk.Recorder) error {
			if err := l.Sum(r, bx.All(), bs.All(), scratch, n); err != nil {
				return err
			}
			return l.RowSum(r, bx.All(), brow.All(), 1, d)
		})
		compare(t, fmt.Sprintf("sum of %d integers", n), download(t, bs, 1), []float32{SumRef(x)}, exact)
		compare(t, fmt.Sprintf("row sum of %d integers", d), download(t, brow, 1), []float32{SumRef(x[:d])}, exact)
	}
}

// TestSumPlan checks the plan's invariants: partials fit one workgroup, chunks cover n without empty rows.
func TestSumPlan(t *testing.T) {
	l := openLib(t)
	p := int(l.redWG(1 << 30))
	for _, n := range []int{1, 2, p*sumSerial - 1, p * sumSerial, p*sumSerial + 1, 1 << 20, 1<<31 - 1} {
		g, chunk := l.sumPlan(n)
		if g < 1 || g > p || chunk < 1 || (g-1)*chunk >= n || g*chunk < n {
			t.Errorf("n=%d: plan %d partials of %d elements (workgroup %d)", n, g, chunk, p)
		}
		if (g > 1) != (l.SumScratch(n) > 0) {
			t.Errorf("n=%d: %d partials but SumScratch %d", n, g, l.SumScratch(n))
		}
	}
}

func TestReduceBadInput(t *testing.T) {
	l := openLib(t)
	small, big := zeros(t, l, 4), zeros(t, l, 1<<16)
	rec := newRecorder(t, l)
	n := 1 << 16
	s := zeros(t, l, max(l.SumScratch(n), 1)).All()
	for _, c := range []struct {
		what string
		err  error
	}{
		{"sum zero n", l.Sum(rec, big.All(), small.All(), s, 0)},
		{"sum negative n", l.Sum(rec, big.All(), small.All(), s, -1)},
		{"sum x too small", l.Sum(rec, small.All(), small.All(), s, 64)},
		{"sum nil out", l.Sum(rec, big.All(), vk.Range{}, s, n)},
		{"sum missing scratch", l.Sum(rec, big.All(), small.All(), vk.Range{}, n)},
		{"sum scratch too small", l.Sum(rec, big.All(), small.All(), small.Range(0, 4), n)},
		{"sum scratch aliases x", l.Sum(rec, big.All(), small.All(), big.Range(0, 4096), n)},
		{"sum out aliases x", l.Sum(rec, big.All(), big.Range(0, 4), s, n)},
		{"mean zero n", l.Mean(rec, big.All(), small.All(), s, 0)},
		{"row sum zero B", l.RowSum(rec, big.All(), small.All(), 0, 4)},
		{"row sum zero D", l.RowSum(rec, big.All(), small.All(), 4, 0)},
		{"row sum x too small", l.RowSum(rec, small.All(), big.All(), 4, 4)},
		{"row sum out too small", l.RowSum(rec, big.All(), small.All(), 5, 4)},
		{"row l1 negative D", l.RowL1(rec, big.All(), small.All(), 1, -4)},
		{"row l1 overflow", l.RowL1(rec, big.All(), small.All(), 1<<16, 1<<16)},
		{"row l1 in place", l.RowL1(rec, big.All(), big.All(), 4, 4)},
	} {
		expectErr(t, c.what, c.err)
	}
	if rec.Dispatches() != 0 {
		t.Errorf("bad inputs recorded %d dispatches", rec.Dispatches())
	}
}

// BenchmarkSum compares the two-pass plan with a single workgroup looping over the whole vector (the alternative
// the issue asks to measure), at 4M floats.
func BenchmarkSum(b *testing.B) {
	l := openLib(b)
	n := 4 << 20
	bx, out := upload(b, l, uniform(rng(1), n, -2, 2)), zeros(b, l, 1)
	scratch := zeros(b, l, l.SumScratch(n))
	for _, c := range []struct {
		name string
		fn   func(r *vk.Recorder) error
	}{
		{"two-pass", func(r *vk.Recorder) error { return l.Sum(r, bx.All(), out.All(), scratch.All(), n) }},
		{"one-workgroup", func(r *vk.Recorder) error { return l.reduceRows(r, "reduce_sum", bx.All(), out.All(), n, n, 1) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			rec, err := l.dev.NewRecorder()
			if err != nil {
				b.Fatal(err)
			}
			defer rec.Close()
			if err := c.fn(rec); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := rec.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*4*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// TestElemDeterministic runs every kernel of this file group twice on the same inputs into fresh buffers and
// requires identical bits: the reductions' order is fixed by the sizes and the device alone.
func TestElemDeterministic(t *testing.T) {
	l := openLib(t)
	const n, b, k, d = 3<<20 + 7, 131, 10, 784
	r := rng(77)
	x := uniform(r, n, -2, 2)
	labels := make([]uint32, b)
	for i := range labels {
		labels[i] = uint32(r.IntN(k))
	}
	bx, by := upload(t, l, x), uploadU32(t, l, labels)
	z := bx.Range(0, b*k*4)
	scratch := zeros(t, l, l.SumScratch(n))
	var outs [2][]float32
	for i := range outs {
		sum, rows, loss, dz := zeros(t, l, 1), zeros(t, l, b), zeros(t, l, b), zeros(t, l, b*k)
		cw, dcw := zeros(t, l, b), zeros(t, l, b*k)
		pool, dpool := zeros(t, l, 2*7*7), zeros(t, l, 2*15*15)
		run(t, l, func(rec *vk.Recorder) error {
			for _, err := range []error{
				l.Sum(rec, bx.All(), sum.All(), scratch.All(), n),
				l.RowL1(rec, bx.All(), rows.All(), b, d),
				l.SoftmaxXent(rec, z, by.All(), loss.All(), b, k),
				l.SoftmaxXentBackward(rec, z, by.All(), vk.Range{}, dz.All(), b, k, 1/float32(b)),
				l.CWLoss(rec, z, by.All(), cw.All(), b, k, float32(math.Inf(1))),
				l.CWLossBackward(rec, z, by.All(), vk.Range{}, dcw.All(), b, k, float32(math.Inf(1)), 1),
				l.MaxPool2x2(rec, bx.Range(0, 2*15*15*4), pool.All(), 2, 1, 15, 15),
				l.MaxPool2x2Backward(rec, bx.Range(0, 2*15*15*4), bx.Range(4096, 2*7*7*4), dpool.All(), 2, 1, 15, 15),
			} {
				if err != nil {
					return err
				}
			}
			return nil
		})
		for _, o := range []struct {
			buf *vk.Buffer
			n   int
		}{{sum, 1}, {rows, b}, {loss, b}, {dz, b * k}, {cw, b}, {dcw, b * k}, {pool, 2 * 7 * 7},
			{dpool, 2 * 15 * 15}} {
			outs[i] = append(outs[i], download(t, o.buf, o.n)...)
		}
	}
	if i := bitsEqual(outs[0], outs[1]); i >= 0 {
		t.Fatalf("two runs differ at output element %d: %v vs %v", i, outs[0][i], outs[1][i])
	}
}
