package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// Tolerances of the soft quantizer against its float64 reference. The GPU computes in fp32: z = α(x − t) carries
// a relative rounding of ~1e-7, exp may be off by a few ulps (Vulkan: 3 + 2|z| ulps), and σ(1−σ) = e/(1+e)² has no
// cancellation, so every σ and σ' is within a few 1e-7 relatively and the sums of positive terms keep that.
var (
	// y ∈ [0, 1]: a few ulps (6e-8 each near 1) per σ, averaged over K; observed ≤ 8e-8 on lavapipe and SwiftShader.
	squantFwdTol = tol{Abs: 5e-7}
	// dx: a sum of positive terms, so relative; Vulkan's exp bound at |z| = α·|x − t| ≤ 50 is ~100 ulps (6e-6);
	// observed ≤ 2e-6.
	squantDxTol = tol{Abs: 1e-9, Rel: 1e-5}
)

// dthrTol is the threshold gradient's tolerance: its sums mix signs (dy ∈ [−2, 2]), so the error is relative to
// Σ|dy·σ'|·α/K (fp32 partial sums over ~log2(M) tree levels, plus σ' error), not to the result; observed ≤ 3e-7 of it. One
// missing or doubled chunk of a 128-image batch moves the sum by ~3e-4 of it, far outside.
func dthrTol(x, thr, dy []float32, s QuantShape, alpha float32) tol {
	k := s.Levels - 1
	mag := make([]float64, s.Thresholds())
	for i, v := range x {
		ch := s.quantChannel(i)
		for j := range k {
			_, ds := sigmoid64(float64(alpha) * (float64(v) - float64(thr[ch*k+j])))
			mag[ch*k+j] += math.Abs(float64(dy[i]) * ds)
		}
	}
	worst := 0.0
	for _, m := range mag {
		worst = max(worst, m*float64(alpha)/float64(k))
	}
	return tol{Abs: 1e-5*worst + 1e-9}
}

// quantCases cover the edge sizes (as one image row, shared and per-channel thresholds alternately), a batch of
// 128 MNIST images (two-pass reduction over 100352 elements), a batch of 128 per-channel RGB images, and odd
// shapes where planes straddle chunks.
func quantCases() []QuantShape {
	var cs []QuantShape
	for i, n := range edgeSizes {
		cs = append(cs, QuantShape{N: 1, C: 1, H: 1, W: n, Levels: 2 + i%3, PerChannel: i%2 == 1})
	}
	return append(cs,
		QuantShape{N: 128, C: 1, H: 28, W: 28, Levels: 2},
		QuantShape{N: 128, C: 3, H: 8, W: 8, Levels: 4, PerChannel: true},
		QuantShape{N: 3, C: 17, H: 1, W: 31, Levels: 5, PerChannel: true},
		QuantShape{N: 257, C: 3, H: 1, W: 3, Levels: 3},
		QuantShape{N: 2, C: 3, H: 17, W: 17, Levels: 9, PerChannel: true},
	)
}

// quantInputs returns images x in [0, 1], thresholds jittered ±0.05 around the defaults (so channels differ),
// and an output gradient dy in [−2, 2].
func quantInputs(seed uint64, s QuantShape) (x, thr, dy []float32) {
	r := rng(seed)
	x = uniform(r, s.Elems(), 0, 1)
	thr = s.InitThresholds()
	for i := range thr {
		thr[i] += 0.1 * (r.Float32() - 0.5)
	}
	dy = uniform(r, s.Elems(), -2, 2)
	return
}

func TestQuant(t *testing.T) {
	l := openLib(t)
	const alpha = 50
	for ci, s := range quantCases() {
		name := fmt.Sprintf("%+v", s)
		n := s.Elems()
		x, thr, dy := quantInputs(uint64(ci)+1, s)
		bx, bt, bdy := upload(t, l, x), upload(t, l, thr), upload(t, l, dy)
		by, bh, bdx, bdx2 := zeros(t, l, n), zeros(t, l, n), zeros(t, l, n), zeros(t, l, n)
		bdt := zeros(t, l, s.Thresholds())
		scratch := vk.Range{}
		if m := l.SoftQuantScratch(s); m > 0 {
			scratch = zeros(t, l, m).All()
		}
		run(t, l, func(r *vk.Recorder) error {
			if err := l.SoftQuant(r, bx.All(), bt.All(), by.All(), s, alpha); err != nil {
				return err
			}
			if err := l.HardQuant(r, bx.All(), bt.All(), bh.All(), s); err != nil {
				return err
			}
			if err := l.SoftQuantBackward(r, bx.All(), bt.All(), bdy.All(), bdx.All(), bdt.All(), scratch, s, alpha); err != nil {
				return err
			}
			return l.SoftQuantBackward(r, bx.All(), bt.All(), bdy.All(), bdx2.All(), vk.Range{}, vk.Range{}, s, alpha)
		})
		compare(t, name+" soft forward", download(t, by, n), SoftQuantRef(x, thr, s, alpha), squantFwdTol)
		compare(t, name+" hard forward", download(t, bh, n), HardQuantRef(x, thr, s), exact)
		dx, dthr := SoftQuantBackwardRef(x, thr, dy, s, alpha)
		compare(t, name+" dx", download(t, bdx, n), dx, squantDxTol)
		compare(t, name+" dx (input gradient only)", download(t, bdx2, n), dx, squantDxTol)
		compare(t, name+" dthr", download(t, bdt, s.Thresholds()), dthr, dthrTol(x, thr, dy, s, alpha))
	}
}

// TestQuantReference pins the references to the definitions at points worked by hand: at x = t the sigmoid is ½
// and its slope α/4 (L = 2), far from every threshold q is the hard level, and H counts strict inequalities.
func TestQuantReference(t *testing.T) {
	s := QuantShape{N: 1, C: 1, H: 1, W: 3, Levels: 2}
	thr := DefaultThresholds(2)
	compare(t, "default thresholds L=2", thr, []float32{0.5}, exact)
	compare(t, "default thresholds L=5", DefaultThresholds(5), []float32{0.125, 0.375, 0.625, 0.875}, exact)
	x := []float32{0.5, 0, 1}
	compare(t, "q", SoftQuantRef(x, thr, s, 50), []float32{0.5, 0, 1}, tol{Abs: 1e-10})
	compare(t, "H", HardQuantRef(x, thr, s), []float32{0, 0, 1}, exact)
	dx, dt := SoftQuantBackwardRef(x, thr, []float32{1, 1, 1}, s, 50)
	compare(t, "dq/dx", dx, []float32{12.5, 0, 0}, tol{Abs: 1e-9})
	compare(t, "dq/dt", dt, []float32{-12.5}, tol{Abs: 1e-9})
}

// TestQuantGradient checks the backward kernel against central differences of the float64 forward reference,
// loss = Σ w·q(x) with random w, for x and for the thresholds, with per-channel and shared thresholds. α = 5 keeps
// the differences well conditioned (with α = 50 the sigmoid's curvature makes h = 1e-4 differences unreliable
// near thresholds); TestQuant covers α = 50 against the analytic reference. Tolerance: the kernel is fp32, so
// ~1e-6 relative to the gradient's scale, and O(h²) truncation is far below that.
func TestQuantGradient(t *testing.T) {
	l := openLib(t)
	const alpha = 5
	for _, s := range []QuantShape{
		{N: 2, C: 3, H: 3, W: 3, Levels: 4, PerChannel: true},
		{N: 3, C: 2, H: 2, W: 5, Levels: 3},
		{N: 2, C: 2, H: 2, W: 4, Levels: 3, PerChannel: true}, // planes of 8: the vec4 variants
	} {
		name := fmt.Sprintf("%+v", s)
		x, thr, w := quantInputs(99, s)
		n := s.Elems()
		bx, bt, bw := upload(t, l, x), upload(t, l, thr), upload(t, l, w)
		bdx, bdt := zeros(t, l, n), zeros(t, l, s.Thresholds())
		scratch := vk.Range{}
		if m := l.SoftQuantScratch(s); m > 0 {
			scratch = zeros(t, l, m).All()
		}
		run(t, l, func(r *vk.Recorder) error {
			return l.SoftQuantBackward(r, bx.All(), bt.All(), bw.All(), bdx.All(), bdt.All(), scratch, s, alpha)
		})
		x64, t64 := to64s(x), to64s(thr)
		loss := func(xs, ts []float64) float64 {
			y := SoftQuantRef64(xs, ts, s, alpha)
			sum := 0.0
			for i, v := range y {
				sum += float64(w[i]) * v
			}
			return sum
		}
		gx := numericGrad(func(xs []float64) float64 { return loss(xs, t64) }, x64, 1e-4)
		gt := numericGrad(func(ts []float64) float64 { return loss(x64, ts) }, t64, 1e-4)
		gradCheck(t, name+" dx", download(t, bdx, n), gx, tol{Abs: 1e-6, Rel: 1e-5})
		gradCheck(t, name+" dthr", download(t, bdt, s.Thresholds()), gt, tol{Abs: 1e-5, Rel: 1e-5})
	}
}

// TestQuantVec4SameBits: the vec4 variants of the forward pass and the input gradient (planes of 4k elements)
// give the scalar variants' bits — 64 elements in one row take them, the same 64 with one more do not.
func TestQuantVec4SameBits(t *testing.T) {
	l := openLib(t)
	const alpha = 50
	x, thr, dy := quantInputs(5, QuantShape{N: 1, C: 1, H: 1, W: 65, Levels: 3})
	var ys, dxs [2][]float32
	for k, n := range []int{64, 65} {
		s := QuantShape{N: 1, C: 1, H: 1, W: n, Levels: 3}
		bx, bt, bdy, by, bdx := upload(t, l, x[:n]), upload(t, l, thr), upload(t, l, dy[:n]), zeros(t, l, n), zeros(t, l, n)
		run(t, l, func(r *vk.Recorder) error {
			if err := l.SoftQuant(r, bx.All(), bt.All(), by.All(), s, alpha); err != nil {
				return err
			}
			return l.SoftQuantBackward(r, bx.All(), bt.All(), bdy.All(), bdx.All(), vk.Range{}, vk.Range{}, s, alpha)
		})
		ys[k], dxs[k] = download(t, by, 64), download(t, bdx, 64)
	}
	if i := bitsEqual(ys[0], ys[1]); i >= 0 {
		t.Errorf("q(x[%d]) = %v with squant_fwd4, %v with squant_fwd", i, ys[0][i], ys[1][i])
	}
	if i := bitsEqual(dxs[0], dxs[1]); i >= 0 {
		t.Errorf("dx[%d] = %v with squant_bwdx4, %v with squant_bwdx", i, dxs[0][i], dxs[1][i])
	}
}

// TestQuantDeterministic runs the two-pass threshold gradient twice on a 128-image batch: identical bits.
func TestQuantDeterministic(t *testing.T) {
	l := openLib(t)
	s := QuantShape{N: 128, C: 3, H: 8, W: 8, Levels: 3, PerChannel: true}
	x, thr, dy := quantInputs(7, s)
	n := s.Elems()
	bx, bt, bdy := upload(t, l, x), upload(t, l, thr), upload(t, l, dy)
	scratch := zeros(t, l, max(l.SoftQuantScratch(s), 1))
	var outs [2][]float32
	for i := range outs {
		bdx, bdt := zeros(t, l, n), zeros(t, l, s.Thresholds())
		run(t, l, func(r *vk.Recorder) error {
			return l.SoftQuantBackward(r, bx.All(), bt.All(), bdy.All(), bdx.All(), bdt.All(), scratch.All(), s, 50)
		})
		outs[i] = append(download(t, bdt, s.Thresholds()), download(t, bdx, n)...)
	}
	sameBits(t, "", outs[0], outs[1])
}

func TestQuantBadInput(t *testing.T) {
	l := openLib(t)
	good := QuantShape{N: 128, C: 1, H: 28, W: 28, Levels: 2}
	n := good.Elems()
	big, small, thr := zeros(t, l, n), zeros(t, l, 4), zeros(t, l, 16)
	b, sm, tr := big.All(), small.All(), thr.All()
	scratch := zeros(t, l, l.SoftQuantScratch(good)).All()
	rec := newRecorder(t, l)
	nan := float32(math.NaN())
	for _, c := range []struct {
		what string
		s    QuantShape
	}{
		{"zero N", QuantShape{N: 0, C: 1, H: 28, W: 28, Levels: 2}},
		{"negative W", QuantShape{N: 1, C: 1, H: 28, W: -28, Levels: 2}},
		{"L = 1", QuantShape{N: 1, C: 1, H: 28, W: 28, Levels: 1}},
		{"L = 0", QuantShape{N: 1, C: 1, H: 28, W: 28, Levels: 0}},
		{"too many per-channel thresholds for thr", QuantShape{N: 1, C: 17, H: 1, W: 1, Levels: 2, PerChannel: true}},
	} {
		expectErr(t, c.what+" forward", l.SoftQuant(rec, b, tr, b, c.s, 50))
		expectErr(t, c.what+" hard", l.HardQuant(rec, b, tr, b, c.s))
		expectErr(t, c.what+" backward", l.SoftQuantBackward(rec, b, tr, b, b, tr, scratch, c.s, 50))
	}
	expectErr(t, "α = 0", l.SoftQuant(rec, b, tr, b, good, 0))
	expectErr(t, "α < 0", l.SoftQuantBackward(rec, b, tr, b, b, tr, scratch, good, -1))
	expectErr(t, "α NaN", l.SoftQuant(rec, b, tr, b, good, nan))
	expectErr(t, "α +Inf", l.SoftQuant(rec, b, tr, b, good, float32(math.Inf(1))))
	expectErr(t, "x too small", l.SoftQuant(rec, sm, tr, b, good, 50))
	expectErr(t, "y too small", l.HardQuant(rec, b, tr, sm, good))
	expectErr(t, "dy too small", l.SoftQuantBackward(rec, b, tr, sm, b, tr, scratch, good, 50))
	expectErr(t, "dx too small", l.SoftQuantBackward(rec, b, tr, b, sm, vk.Range{}, vk.Range{}, good, 50))
	expectErr(t, "scratch missing", l.SoftQuantBackward(rec, b, tr, b, b, tr, vk.Range{}, good, 50))
	expectErr(t, "scratch too small", l.SoftQuantBackward(rec, b, tr, b, b, tr, sm, good, 50))
	expectErr(t, "nil thresholds", l.SoftQuant(rec, b, vk.Range{}, b, good, 50))
	perC := QuantShape{N: 1, C: 17, H: 1, W: 1, Levels: 2, PerChannel: true}
	expectErr(t, "dthr too small", l.SoftQuantBackward(rec, b, zeros(t, l, 17).All(), b, b, tr, scratch, perC, 50))
	// more channels than one dispatch dimension holds (65535 on lavapipe and SwiftShader)
	wide := QuantShape{N: 1, C: int(l.dev.Info().Limits.MaxWorkgroupCount[2]) + 1, H: 1, W: 1, Levels: 2, PerChannel: true}
	if wide.C < 1<<20 {
		wb := zeros(t, l, wide.C).All()
		expectErr(t, "too many channels", l.SoftQuantBackward(rec, wb, wb, wb, zeros(t, l, wide.C).All(), zeros(t, l, wide.C).All(),
			vk.Range{}, wide, 50))
	}
}
