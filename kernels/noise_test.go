package kernels

import (
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// gaussTol is Gaussian noise's tolerance per unit σ. Vulkan bounds sin and cos only absolutely (2^-11 on [−π, π])
// and Box–Muller multiplies them by r = √(−2 ln u) ≤ 5.8, so a conforming GPU may move z by 5.8·2^-11 ≈ 2.9e-3;
// SwiftShader's approximations do move it by 8.5e-4, lavapipe's by ~1e-6. A wrong word, pairing or mapping moves z
// by O(1), which this still catches; one output ulp (6e-8 near 1) is added for the final rounding.
const gaussTol = 3e-3

// TestNoise compares uniform noise (bit for bit) and Gaussian noise (gaussTol) with the CPU references, on image
// inputs in [0, 1], over the edge sizes and a batch of 128 MNIST images; also in place.
func TestNoise(t *testing.T) {
	l := openLib(t)
	for _, n := range append(edgeSizes, 128*784) {
		x := uniform(rng(uint64(n)), n, 0, 1)
		g := RNG{Seed: 0xdeadbeef12345678 + uint64(n), Stream: 3, Step: uint32(n)}
		bx := upload(t, l, x)
		bu, bg := zeros(t, l, n), zeros(t, l, n)
		binplace := upload(t, l, x)
		run(t, l, func(r *vk.Recorder) error {
			if err := l.UniformNoise(r, bx.All(), bu.All(), n, 0.3, g); err != nil {
				return err
			}
			if err := l.UniformNoise(r, binplace.All(), binplace.All(), n, 0.3, g); err != nil {
				return err
			}
			return l.GaussianNoise(r, bx.All(), bg.All(), n, 0.25, g)
		})
		want := UniformNoiseRef(x, 0.3, g)
		compare(t, "uniform noise", download(t, bu, n), want, exact)
		compare(t, "uniform noise in place", download(t, binplace, n), want, exact)
		compare(t, "gaussian noise", download(t, bg, n), GaussianNoiseRef(x, 0.25, g), tol{Abs: gaussTol*0.25 + 6e-8})
	}
}

// TestNoiseProperties checks the references' statistics so a bit-exact GPU cannot be exactly wrong: |x̃ − x| ≤ ε,
// output in [0, 1], unclipped deviations with mean ≈ 0 and variance ≈ ε²/3 (uniform) or σ² (Gaussian), and
// different streams or steps giving different noise.
func TestNoiseProperties(t *testing.T) {
	const n = 1 << 15
	x := make([]float32, n)
	for i := range x {
		x[i] = 0.5
	}
	g := RNG{Seed: 1, Stream: 2, Step: 3}
	u := UniformNoiseRef(x, 0.3, g)
	z := GaussianNoiseRef(x, 0.05, g)
	var su, su2, sz, sz2 float64
	for i := range x {
		d := float64(u[i]) - 0.5
		if math.Abs(d) > 0.3+1e-7 || u[i] < 0 || u[i] > 1 {
			t.Fatalf("uniform noise %d: %v outside the ε-ball or [0,1]", i, u[i])
		}
		su, su2 = su+d, su2+d*d
		e := float64(z[i]) - 0.5
		sz, sz2 = sz+e, sz2+e*e
	}
	if math.Abs(su/n) > 0.01 || math.Abs(su2/n-0.09/3) > 0.002 {
		t.Errorf("uniform noise: mean %v variance %v, want 0 and %v", su/n, su2/n, 0.09/3)
	}
	if math.Abs(sz/n) > 0.002 || math.Abs(sz2/n-0.0025) > 0.0002 {
		t.Errorf("gaussian noise: mean %v variance %v, want 0 and 0.0025", sz/n, sz2/n)
	}
	for _, other := range []RNG{{1, 3, 3, 0}, {1, 2, 4, 0}, {2, 2, 3, 0}, {1, 2, 3, 4}} {
		v := UniformNoiseRef(x, 0.3, other)
		same := 0
		for i := range v {
			if v[i] == u[i] {
				same++
			}
		}
		if same > n/100 {
			t.Errorf("RNG %+v repeats %d of %d values of %+v", other, same, n, g)
		}
	}
}

func TestNoiseDeterministic(t *testing.T) {
	l := openLib(t)
	const n = 4099
	x := uniform(rng(5), n, 0, 1)
	bx := upload(t, l, x)
	var outs [2][]float32
	for i := range outs {
		by := zeros(t, l, n)
		run(t, l, func(r *vk.Recorder) error { return l.GaussianNoise(r, bx.All(), by.All(), n, 0.1, RNG{Seed: 9}) })
		outs[i] = download(t, by, n)
	}
	sameBits(t, "", outs[0], outs[1])
}

func TestNoiseBadInput(t *testing.T) {
	l := openLib(t)
	small, big := zeros(t, l, 4), zeros(t, l, 64)
	rec := newRecorder(t, l)
	g := RNG{}
	expectErr(t, "zero size", l.UniformNoise(rec, big.All(), big.All(), 0, 0.1, g))
	expectErr(t, "negative size", l.GaussianNoise(rec, big.All(), big.All(), -1, 0.1, g))
	expectErr(t, "x too small", l.UniformNoise(rec, small.All(), big.All(), 64, 0.1, g))
	expectErr(t, "y too small", l.GaussianNoise(rec, big.All(), small.All(), 64, 0.1, g))
	expectErr(t, "negative eps", l.UniformNoise(rec, big.All(), big.All(), 64, -0.1, g))
	expectErr(t, "NaN sigma", l.GaussianNoise(rec, big.All(), big.All(), 64, float32(math.NaN()), g))
	expectErr(t, "infinite eps", l.UniformNoise(rec, big.All(), big.All(), 64, float32(math.Inf(1)), g))
	expectErr(t, "nil buffer", l.UniformNoise(rec, vk.Range{}, big.All(), 4, 0.1, g))
}

// TestNoiseDynamic replays one recorded noise dispatch with the step word rewritten before each submit: every replay
// equals the static kernel (and its Go reference) for that step, bit for bit, and different steps differ.
func TestNoiseDynamic(t *testing.T) {
	l := openLib(t)
	const n = 1031
	x := uniform(rng(51), n, 0, 1)
	bx, by, step := upload(t, l, x), zeros(t, l, n), uploadU32(t, l, []uint32{0})
	g := RNG{Seed: 99, Stream: 3}
	rec := newRecorder(t, l)
	if err := l.UniformNoiseDynamic(rec, bx.All(), by.All(), step.All(), n, 0.3, g); err != nil {
		t.Fatal(err)
	}
	var prev []float32
	for _, s := range []uint32{0, 1, 7, 1 << 20} {
		if err := vk.Upload(step, []uint32{s}); err != nil {
			t.Fatal(err)
		}
		if err := rec.Run(); err != nil {
			t.Fatal(err)
		}
		got := download(t, by, n)
		gs := g
		gs.Step = s
		compare(t, "dynamic uniform noise", got, UniformNoiseRef(x, 0.3, gs), exact)
		if prev != nil && bitsEqual(prev, got) < 0 {
			t.Fatalf("step %d drew the same noise as the step before", s)
		}
		prev = got
	}
	fresh, err := l.dev.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	expectErr(t, "missing step buffer", l.UniformNoiseDynamic(fresh, bx.All(), by.All(), vk.Range{}, n, 0.3, g))
	expectErr(t, "offset not a whole block", l.UniformNoiseDynamic(fresh, bx.All(), by.All(), step.All(), n, 0.3,
		RNG{Seed: 99, Offset: 6}))
	expectErr(t, "negative eps", l.UniformNoiseDynamic(fresh, bx.All(), by.All(), step.All(), n, -1, g))
}

// TestNoiseExample checks per-example uniform noise against its reference bit for bit (scalar and vec4 variants,
// several attempts replayed from one recording), and that an example's noise depends on its id and attempt only:
// the same id in another row of another batch draws the same numbers, other ids and attempts others.
func TestNoiseExample(t *testing.T) {
	l := openLib(t)
	g := ExampleRNG{Seed: 0x5eed, Stream: 7}
	for _, c := range []struct{ b, d int }{{1, 1}, {3, 5}, {2, 6}, {4, 784}, {7, 1030}} {
		n := c.b * c.d
		x := uniform(rng(uint64(n)), n, 0, 1)
		ids := make([]uint32, c.b)
		for i := range ids {
			ids[i] = uint32(1000*i + 121)
		}
		bx, by, att, bids := upload(t, l, x), zeros(t, l, n), uploadU32(t, l, []uint32{0}), uploadU32(t, l, ids)
		rec := newRecorder(t, l)
		if err := l.UniformNoiseExample(rec, bx.All(), by.All(), att.All(), bids.All(), c.b, c.d, 0.3, g); err != nil {
			t.Fatal(err)
		}
		var prev []float32
		for _, a := range []uint32{0, 1, 9} {
			if err := vk.Upload(att, []uint32{a}); err != nil {
				t.Fatal(err)
			}
			if err := rec.Run(); err != nil {
				t.Fatal(err)
			}
			got := download(t, by, n)
			ga := g
			ga.Attempt = a
			compare(t, "per-example uniform noise", got, UniformNoiseExampleRef(x, ids, c.b, c.d, 0.3, ga), exact)
			if prev != nil && n > 4 && bitsEqual(prev, got) < 0 {
				t.Fatalf("b=%d d=%d: attempt %d drew the same noise as the attempt before", c.b, c.d, a)
			}
			prev = got
		}
	}
	// Example 121 alone, then in the last row of a batch after two others: the same noise.
	const d = 784
	x := uniform(rng(3), 3*d, 0, 1)
	alone := UniformNoiseExampleRef(x[2*d:], []uint32{121}, 1, d, 0.3, g)
	batch := UniformNoiseExampleRef(x, []uint32{5, 6, 121}, 3, d, 0.3, g)
	sameBits(t, "example 121 alone and in a batch", alone, batch[2*d:])
	other := UniformNoiseExampleRef(x[2*d:], []uint32{122}, 1, d, 0.3, g)
	if bitsEqual(alone, other) < 0 {
		t.Fatal("examples 121 and 122 drew the same noise")
	}
	rec := newRecorder(t, l)
	big, w := zeros(t, l, 64), uploadU32(t, l, []uint32{0, 1})
	expectErr(t, "zero rows", l.UniformNoiseExample(rec, big.All(), big.All(), w.Range(0, 4), w.All(), 0, 4, 0.1, g))
	expectErr(t, "ids too short", l.UniformNoiseExample(rec, big.All(), big.All(), w.Range(0, 4), w.All(), 4, 4, 0.1, g))
	expectErr(t, "missing attempt", l.UniformNoiseExample(rec, big.All(), big.All(), vk.Range{}, w.All(), 2, 4, 0.1, g))
	expectErr(t, "x too small", l.UniformNoiseExample(rec, big.All(), big.All(), w.Range(0, 4), w.All(), 2, 40, 0.1, g))
	expectErr(t, "negative eps", l.UniformNoiseExample(rec, big.All(), big.All(), w.Range(0, 4), w.All(), 2, 4, -1, g))
}

// TestNoiseOffset draws a batch's noise in two slices with RNG.Offset, as two data-parallel replicas do, and
// checks the slices equal the whole batch's noise drawn at once, on the device (scalar and vec4 variants, static and
// dynamic step) and in the reference.
func TestNoiseOffset(t *testing.T) {
	l := openLib(t)
	for _, half := range []int{784, 514} { // 514: not a multiple of 4 elements, the scalar variant
		n := 2 * half
		x := uniform(rng(uint64(n)), n, 0, 1)
		g := RNG{Seed: 12, Stream: 5, Step: 9}
		whole := UniformNoiseRef(x, 0.3, g)
		var off uint32 = uint32(half)
		if half%4 != 0 {
			off = uint32(half) / 4 * 4 // the second slice starts at a whole block: split there
		}
		lo, hi := x[:off], x[off:]
		g2 := g
		g2.Offset = off
		compare(t, "reference slice 2", UniformNoiseRef(hi, 0.3, g2), whole[off:], exact)
		blo, bhi := upload(t, l, lo), upload(t, l, hi)
		olo, ohi := zeros(t, l, len(lo)), zeros(t, l, len(hi))
		bstep, dyn := uploadU32(t, l, []uint32{g.Step}), zeros(t, l, len(hi))
		run(t, l, func(r *vk.Recorder) error {
			if err := l.UniformNoise(r, blo.All(), olo.All(), len(lo), 0.3, g); err != nil {
				return err
			}
			if err := l.UniformNoise(r, bhi.All(), ohi.All(), len(hi), 0.3, g2); err != nil {
				return err
			}
			return l.UniformNoiseDynamic(r, bhi.All(), dyn.All(), bstep.All(), len(hi), 0.3, g2)
		})
		compare(t, "slice 1", download(t, olo, len(lo)), whole[:off], exact)
		compare(t, "slice 2", download(t, ohi, len(hi)), whole[off:], exact)
		compare(t, "slice 2, dynamic step", download(t, dyn, len(hi)), whole[off:], exact)
	}
}
