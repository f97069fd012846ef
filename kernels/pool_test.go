package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// poolShapes covers the sizes (1, 3, 17, 31, 64, 257 as channel or spatial sizes, odd sizes that floor),
// batch 1 and ≥ 128.
var poolShapes = [][4]int{
	{1, 1, 2, 2}, {1, 3, 3, 3}, {1, 1, 17, 31}, {1, 17, 31, 17}, {1, 2, 64, 64}, {1, 1, 257, 257},
	{2, 3, 64, 257}, {128, 3, 17, 17}, {131, 1, 28, 28}, {128, 2, 3, 2},
	{3, 5, 7, 12}, {2, 3, 6, 4}, // widths a multiple of 4 (the VEC4 variants), odd and even heights
	{1, 1, 2, 6}, {1, 3, 5, 6}, // 3 and 9 outputs: no OUT4 forward
	{2, 2, 6, 6}, // 9-output planes: OUT4's four outputs cross planes ({2, 3, 6, 4} does so in VEC4)
}

// Max pooling only selects and copies values, so forward and backward are exact (tolerance 0). The backward finds
// each window's maximum again; with ties, its dx shows whether it picked the reference's (the first) maximum.
// With relu, the fused ReLUMaxPool2x2 pair runs against relu-then-pool references.
func TestMaxPool(t *testing.T) {
	l := openLib(t)
	for _, texel := range texelModes(l) {
		l.texel = texel
		t.Run(fmt.Sprintf("texel=%v", texel), func(t *testing.T) { testMaxPool(t, l) })
	}
}

func testMaxPool(t *testing.T, l *Lib) {
	for si, s := range poolShapes {
		for _, v := range []struct{ ties, relu bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
			b, c, h, w := s[0], s[1], s[2], s[3]
			t.Run(fmt.Sprintf("%dx%dx%dx%d_ties=%v_relu=%v", b, c, h, w, v.ties, v.relu), func(t *testing.T) {
				n, out := b*c*h*w, b*c*(h/2)*(w/2)
				r := rng(uint64(100 + si))
				x := uniform(r, n, -2, 2)
				if v.ties {
					// Values on a coarse grid make equal maxima common, exercising the first-in-window rule.
					for i := range x {
						x[i] = float32(math.Round(float64(x[i])))
					}
				}
				dy := uniform(r, out, -2, 2)
				bx, bdy := upload(t, l, x), upload(t, l, dy)
				// dx starts as garbage in [5, 6): every element must be overwritten.
				by, bdx := zeros(t, l, out), upload(t, l, uniform(r, n, 5, 6))
				run(t, l, func(r *vk.Recorder) error {
					if v.relu {
						if err := l.ReLUMaxPool2x2(r, bx.All(), by.All(), b, c, h, w); err != nil {
							return err
						}
						return l.ReLUMaxPool2x2Backward(r, bx.All(), bdy.All(), bdx.All(), b, c, h, w)
					}
					if err := l.MaxPool2x2(r, bx.All(), by.All(), b, c, h, w); err != nil {
						return err
					}
					return l.MaxPool2x2Backward(r, bx.All(), bdy.All(), bdx.All(), b, c, h, w)
				})
				y, idx := MaxPool2x2Ref(x, b, c, h, w)
				dx := MaxPool2x2BackwardRef(idx, dy, b, c, h, w)
				if v.relu {
					y, _ = ReLUMaxPool2x2Ref(x, b, c, h, w)
					dx = ReLUMaxPool2x2BackwardRef(x, idx, dy, b, c, h, w)
				}
				compare(t, "maxpool forward", download(t, by, out), y, exact)
				compare(t, "maxpool backward", download(t, bdx, n), dx, exact)
			})
		}
	}
}

// TestMaxPoolNaN checks PyTorch's NaN rule: a NaN in a window is the max (the last NaN when several), forward
// and backward (the gradient goes to that NaN), in the 4-wide planes of the VEC4 paths and the 6-wide ones of the
// others.
func TestMaxPoolNaN(t *testing.T) {
	l := openLib(t)
	nan := float32(math.NaN())
	for _, c := range []struct {
		w int
		x []float32
	}{
		{4, []float32{
			1, nan, 5, 6, // windows: {1,nan,3,4} → nan@1; {5,6,nan,nan} → nan@7 (the last NaN)
			3, 4, nan, nan,
		}},
		{6, []float32{
			1, nan, 5, 6, 7, 8, // windows: nan@1; nan@9 (the last NaN); {7,8,1,2} → 8@5
			3, 4, nan, nan, 1, 2,
		}},
	} {
		t.Run(fmt.Sprintf("w=%d", c.w), func(t *testing.T) {
			out := c.w / 2
			dy := make([]float32, out)
			for i := range dy {
				dy[i] = float32(i + 1)
			}
			bx, bdy, by, bdx := upload(t, l, c.x), upload(t, l, dy), zeros(t, l, out), zeros(t, l, len(c.x))
			run(t, l, func(r *vk.Recorder) error {
				if err := l.MaxPool2x2(r, bx.All(), by.All(), 1, 1, 2, c.w); err != nil {
					return err
				}
				return l.MaxPool2x2Backward(r, bx.All(), bdy.All(), bdx.All(), 1, 1, 2, c.w)
			})
			y, idx := MaxPool2x2Ref(c.x, 1, 1, 2, c.w)
			if idx[0] != 1 || idx[1] != uint32(c.w+3) {
				t.Fatalf("reference indices %v: the NaN rule changed", idx)
			}
			compareExactNaN(t, "maxpool NaN", download(t, by, out), y)
			compare(t, "maxpool NaN backward", download(t, bdx, len(c.x)), MaxPool2x2BackwardRef(idx, dy, 1, 1, 2, c.w),
				exact)
		})
	}
}

// TestMaxPoolGradient checks the backward kernel against central differences of MaxPool2x2Ref, loss = Σ w·y. The
// inputs are a permutation of values 0.01 apart, so no window has a near tie and a step of h = 2.5e-3 stays on one
// linear piece; then the difference quotient is exact up to float32 rounding of x ± h (≈ 1e-7/h).
// With relu the fused pair is checked the same way against relu-then-pool; the values are offset by 0.005 so none
// lies within h of ReLU's kink at 0.
func TestMaxPoolGradient(t *testing.T) {
	for _, relu := range []bool{false, true} {
		t.Run(fmt.Sprintf("relu=%v", relu), func(t *testing.T) { testMaxPoolGradient(t, relu) })
	}
}

func testMaxPoolGradient(t *testing.T, relu bool) {
	l := openLib(t)
	const b, c, h, w = 2, 3, 7, 9
	n, out := b*c*h*w, b*c*(h/2)*(w/2)
	r := rng(5)
	x := make([]float32, n)
	for i, p := range r.Perm(n) {
		x[i] = -2 + 0.005 + 0.01*float32(p)
	}
	wt := uniform(r, out, -1, 1)
	bx, bw := upload(t, l, x), upload(t, l, wt)
	by, bdx := zeros(t, l, out), zeros(t, l, n)
	run(t, l, func(r *vk.Recorder) error {
		if relu {
			if err := l.ReLUMaxPool2x2(r, bx.All(), by.All(), b, c, h, w); err != nil {
				return err
			}
			return l.ReLUMaxPool2x2Backward(r, bx.All(), bw.All(), bdx.All(), b, c, h, w)
		}
		if err := l.MaxPool2x2(r, bx.All(), by.All(), b, c, h, w); err != nil {
			return err
		}
		return l.MaxPool2x2Backward(r, bx.All(), bw.All(), bdx.All(), b, c, h, w)
	})
	loss := func(xs []float64) float64 {
		x32 := make([]float32, len(xs))
		for i, v := range xs {
			x32[i] = float32(v)
			if relu {
				x32[i] = max(x32[i], 0) // relu, then pool: the unfused composition
			}
		}
		y, _ := MaxPool2x2Ref(x32, b, c, h, w)
		s := 0.0
		for i, v := range y {
			s += float64(wt[i]) * float64(v)
		}
		return s
	}
	gradCheck(t, "maxpool", download(t, bdx, n), numericGrad(loss, to64s(x), 2.5e-3), tol{Abs: 1e-4, Rel: 1e-4})
}

func TestMaxPoolBadInput(t *testing.T) {
	l := openLib(t)
	small, big, big2 := zeros(t, l, 4), zeros(t, l, 256), zeros(t, l, 256)
	rec := newRecorder(t, l)
	x, y := big.All(), big2.Range(0, 512)
	for _, c := range []struct {
		what string
		err  error
	}{
		{"zero batch", l.MaxPool2x2(rec, x, y, 0, 1, 4, 4)},
		{"negative channels", l.MaxPool2x2(rec, x, y, 1, -1, 4, 4)},
		{"height 1", l.MaxPool2x2(rec, x, y, 1, 1, 1, 8)},
		{"width 1", l.MaxPool2x2(rec, x, y, 1, 1, 8, 1)},
		{"x too small", l.MaxPool2x2(rec, small.All(), y, 1, 1, 4, 4)},
		{"y too small", l.MaxPool2x2(rec, x, small.Range(0, 12), 1, 1, 4, 4)},
		{"nil x", l.MaxPool2x2(rec, vk.Range{}, y, 1, 1, 4, 4)},
		{"y aliases x", l.MaxPool2x2(rec, x, big.Range(0, 64), 1, 1, 4, 4)},
		{"relu y aliases x", l.ReLUMaxPool2x2(rec, x, big.Range(64, 64), 1, 1, 4, 4)},
		{"overflow", l.MaxPool2x2(rec, x, y, 1<<16, 1<<8, 64, 64)},
		{"backward zero height", l.MaxPool2x2Backward(rec, x, y, big2.All(), 1, 1, 0, 4)},
		{"backward x too small", l.MaxPool2x2Backward(rec, small.All(), y, big2.All(), 1, 1, 4, 4)},
		{"backward dx too small", l.MaxPool2x2Backward(rec, x, y, small.All(), 1, 1, 4, 4)},
		{"backward dy too small", l.MaxPool2x2Backward(rec, x, small.Range(0, 12), big2.All(), 1, 1, 4, 4)},
		{"backward dx aliases dy", l.MaxPool2x2Backward(rec, x, y, big2.Range(0, 64), 1, 1, 4, 4)},
		{"backward dx aliases x", l.ReLUMaxPool2x2Backward(rec, x, y, big.Range(0, 64), 1, 1, 4, 4)},
	} {
		expectErr(t, c.what, c.err)
	}
	if rec.Dispatches() != 0 {
		t.Errorf("bad inputs recorded %d dispatches", rec.Dispatches())
	}
}

// compareExactNaN is compare with tolerance 0 in which NaN matches NaN (compare's exact mode rejects NaN, since
// NaN != NaN), for tests that check NaN propagation.
func compareExactNaN(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if g != w && !(g != g && w != w) {
			t.Fatalf("%s: first mismatch at index %d: got %.9g, want %.9g", what, i, g, w)
		}
	}
}
