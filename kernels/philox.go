package kernels

import (
	"math"
)

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the Random123 library) is
// sqnet's counter-based RNG: a pure function of a 128-bit counter and a 64-bit key, so every GPU invocation draws
// its own numbers without state, and the CPU reference reproduces them bit for bit. shaders/philox.glsl is the GPU
// twin of this file; keep the two identical.
//
// sqnet's mapping (used by the noise and PGD random-start kernels):
//
//	key     = (seed & 0xffffffff, seed >> 32)
//	counter = (i / 4, stream, step, 0)      for element i of a tensor
//	value   = word i % 4 of Philox4x32-10(counter, key)
//
// so one Philox call feeds four consecutive elements, a tensor may hold up to 2^34 elements before a counter
// repeats, and (seed, stream, step) name independent streams: stream separates users (noise, PGD restarts, …),
// step separates iterations (training step, restart index).

// Philox4x32-10 constants from Random123.
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9 // golden ratio
	philoxW1 = 0xBB67AE85 // sqrt(3) − 1
)

// Philox4x32 returns Philox4x32-10 of counter ctr under key: ten rounds, the key bumped by the Weyl constants
// between rounds, exactly as Random123's philox4x32_R(10, ...).
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	c, k := ctr, key
	for round := 0; round < 10; round++ {
		if round > 0 {
			k[0] += philoxW0
			k[1] += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(c[0])
		p1 := uint64(philoxM1) * uint64(c[2])
		hi0, lo0 := uint32(p0>>32), uint32(p0)
		hi1, lo1 := uint32(p1>>32), uint32(p1)
		c = [4]uint32{hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0}
	}
	return c
}

// PhiloxKey splits a 64-bit seed into the Philox key (low word first).
func PhiloxKey(seed uint64) [2]uint32 { return [2]uint32{uint32(seed), uint32(seed >> 32)} }

// PhiloxBitsRef returns n raw 32-bit words: word i is word i%4 of Philox4x32(ctr + (i/4, 0, 0, 0), key), the
// first counter word wrapping modulo 2^32. It is the CPU reference of Lib.PhiloxBits; with ctr = (0, stream, step,
// 0) and key = PhiloxKey(seed) it gives the words the noise kernels use for (seed, stream, step).
func PhiloxBitsRef(ctr [4]uint32, key [2]uint32, n int) []uint32 {
	out := make([]uint32, n)
	for b := 0; 4*b < n; b++ {
		c := ctr
		c[0] += uint32(b)
		w := Philox4x32(c, key)
		for j := 0; j < 4 && 4*b+j < n; j++ {
			out[4*b+j] = w[j]
		}
	}
	return out
}

// PhiloxUniform maps a 32-bit word to a float32 uniform in [0, 1): its top 24 bits times 2^-24, exact in fp32 so
// the GPU and Go agree bit for bit.
func PhiloxUniform(w uint32) float32 { return float32(w>>8) * (1.0 / (1 << 24)) }

// PhiloxSymmetric maps a 32-bit word to a float32 uniform in [−1, 1) with step 2^-23: (top 24 bits − 2^23)·2^-23,
// exact in fp32. Noise and random starts scale it by ε, one rounding.
func PhiloxSymmetric(w uint32) float32 { return float32(int32(w>>8)-(1<<23)) * (1.0 / (1 << 23)) }

// philoxOpen01 maps a word to (0, 1]: (top 24 bits + 1)·2^-24, so log never sees 0 in Box–Muller.
func philoxOpen01(w uint32) float32 { return float32((w>>8)+1) * (1.0 / (1 << 24)) }

// PhiloxNormal turns the four words of one Philox block into four standard normals by Box–Muller on the pairs
// (w0, w1) and (w2, w3): z0 = r·cos θ, z1 = r·sin θ with r = √(−2 ln u), u ∈ (0, 1] from the first word and θ =
// π·s, s ∈ [−1, 1) from the second (θ within [−π, π], where Vulkan bounds the error of sin and cos). It
// computes in float32 the way the shader does; the GPU's log, sqrt, cos and sin may differ by a few ulps, which is
// why Gaussian noise is compared with a tolerance rather than bit for bit.
func PhiloxNormal(w [4]uint32) [4]float32 {
	var z [4]float32
	for p := 0; p < 2; p++ {
		u := philoxOpen01(w[2*p])
		r := float32(math.Sqrt(float64(float32(-2 * float32(math.Log(float64(u)))))))
		th := float32(float32(math.Pi) * PhiloxSymmetric(w[2*p+1]))
		z[2*p] = r * float32(math.Cos(float64(th)))
		z[2*p+1] = r * float32(math.Sin(float64(th)))
	}
	return z
}
