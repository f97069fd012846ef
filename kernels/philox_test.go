package kernels

import (
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// philoxKAT are Random123's known answers for Philox4x32-10 (kat_vectors), which Philox4x32 reproduces from the
// algorithm's definition.
var philoxKAT = []struct {
	ctr  [4]uint32
	key  [2]uint32
	want [4]uint32
}{
	{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
	{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
		[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
	{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
		[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
}

func TestPhiloxKnownAnswersCPU(t *testing.T) {
	for _, v := range philoxKAT {
		if got := Philox4x32(v.ctr, v.key); got != v.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", v.ctr, v.key, got, v.want)
		}
	}
}

// TestPhiloxKnownAnswersGPU runs the shader's Philox on the known-answer counters, and on runs of consecutive
// counters (first word wrapping past 2^32) against the Go reference, bit for bit.
func TestPhiloxKnownAnswersGPU(t *testing.T) {
	l := openLib(t)
	for _, v := range philoxKAT {
		out := uploadU32(t, l, make([]uint32, 4))
		run(t, l, func(r *vk.Recorder) error { return l.PhiloxBits(r, out.All(), 4, v.ctr, v.key) })
		got := downloadU32(t, out, 4)
		compareU32(t, "philox KAT", got, v.want[:])
	}
	for _, n := range append(edgeSizes, 4099) {
		ctr := [4]uint32{0xfffffff0, 7, 11, 13}
		key := PhiloxKey(0x0123456789abcdef)
		out := uploadU32(t, l, make([]uint32, n))
		run(t, l, func(r *vk.Recorder) error { return l.PhiloxBits(r, out.All(), n, ctr, key) })
		compareU32(t, "philox bits", downloadU32(t, out, n), PhiloxBitsRef(ctr, key, n))
	}
}

// TestPhiloxUniformStats is a sanity check of the float mappings: ranges, and mean/variance of 2^16 draws within
// 5 standard errors (a deterministic seed, so this cannot flake).
func TestPhiloxUniformStats(t *testing.T) {
	const n = 1 << 16
	w := PhiloxBitsRef([4]uint32{0, 1, 2, 0}, PhiloxKey(42), n)
	var s, s2, zs, zs2 float64
	for i, x := range w {
		u, v := PhiloxUniform(x), PhiloxSymmetric(x)
		if !(u >= 0 && u < 1) || !(v >= -1 && v < 1) || philoxOpen01(x) <= 0 || philoxOpen01(x) > 1 {
			t.Fatalf("word %d = %08x maps outside range: %v %v %v", i, x, u, v, philoxOpen01(x))
		}
		s += float64(u)
		s2 += float64(u) * float64(u)
	}
	for b := 0; b < n/4; b++ {
		z := PhiloxNormal([4]uint32{w[4*b], w[4*b+1], w[4*b+2], w[4*b+3]})
		for _, v := range z {
			zs += float64(v)
			zs2 += float64(v) * float64(v)
		}
	}
	mean, vr := s/n, s2/n-(s/n)*(s/n)
	if math.Abs(mean-0.5) > 5*math.Sqrt(1.0/12/n) || math.Abs(vr-1.0/12) > 0.002 {
		t.Errorf("uniform mean %v variance %v, want 0.5 and 1/12", mean, vr)
	}
	zm, zv := zs/n, zs2/n-(zs/n)*(zs/n)
	if math.Abs(zm) > 5/math.Sqrt(n) || math.Abs(zv-1) > 0.03 {
		t.Errorf("normal mean %v variance %v, want 0 and 1", zm, zv)
	}
}

func TestPhiloxBadInput(t *testing.T) {
	l := openLib(t)
	small := uploadU32(t, l, make([]uint32, 4))
	rec := newRecorder(t, l)
	expectErr(t, "zero words", l.PhiloxBits(rec, small.All(), 0, [4]uint32{}, [2]uint32{}))
	expectErr(t, "negative words", l.PhiloxBits(rec, small.All(), -1, [4]uint32{}, [2]uint32{}))
	expectErr(t, "buffer too small", l.PhiloxBits(rec, small.All(), 5, [4]uint32{}, [2]uint32{}))
	expectErr(t, "nil buffer", l.PhiloxBits(rec, vk.Range{}, 4, [4]uint32{}, [2]uint32{}))
}
