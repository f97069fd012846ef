// philox.glsl: Philox4x32-10 counter-based RNG (Random123), the GPU twin of kernels/philox.go; the two must give
// identical bits for the same counter and key. Mapping used by sqnet kernels (see kernels/philox.go):
//   key = (seed lo, seed hi), counter = (element / 4, stream, step, 0), element i takes word i % 4.

const uint PHILOX_M0 = 0xD2511F53u;
const uint PHILOX_M1 = 0xCD9E8D57u;
const uint PHILOX_W0 = 0x9E3779B9u;
const uint PHILOX_W1 = 0xBB67AE85u;

// philox_round is one Philox round: two 32×32→64 multiplies, words shuffled and xored with the key.
uvec4 philox_round(uvec4 c, uvec2 k) {
    uint hi0, lo0, hi1, lo1;
    umulExtended(PHILOX_M0, c.x, hi0, lo0);
    umulExtended(PHILOX_M1, c.z, hi1, lo1);
    return uvec4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
}

// philox4x32_10 returns Philox4x32-10 of counter c under key k: ten rounds, the key bumped between rounds.
uvec4 philox4x32_10(uvec4 c, uvec2 k) {
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k += uvec2(PHILOX_W0, PHILOX_W1);
        }
        c = philox_round(c, k);
    }
    return c;
}

// philox_uniform maps a word to [0, 1): top 24 bits · 2^-24, exact in fp32.
float philox_uniform(uint w) {
    return float(w >> 8) * (1.0 / 16777216.0);
}

// philox_symmetric maps a word to [-1, 1): (top 24 bits − 2^23) · 2^-23, exact in fp32.
float philox_symmetric(uint w) {
    return float(int(w >> 8) - 8388608) * (1.0 / 8388608.0);
}

// philox_open01 maps a word to (0, 1]: (top 24 bits + 1) · 2^-24, so Box–Muller's log never sees 0.
float philox_open01(uint w) {
    return float((w >> 8) + 1u) * (1.0 / 16777216.0);
}

// philox_normal4 turns one block's four words into four standard normals by Box–Muller on (w0, w1) and (w2, w3)
// (u ∈ (0, 1] from the first word, θ ∈ [−π, π) from the second),
// in the same order of operations as kernels.PhiloxNormal.
vec4 philox_normal4(uvec4 w) {
    vec4 z;
    for (int p = 0; p < 2; p++) {
        float u = philox_open01(w[2 * p]);
        precise float l = -2.0 * log(u);
        float r = sqrt(l);
        // θ = π·s, s ∈ [−1, 1): Vulkan bounds sin/cos error (absolutely, 2^-11) only on [−π, π].
        precise float th = 3.14159274 * philox_symmetric(w[2 * p + 1]);
        z[2 * p] = r * cos(th);
        z[2 * p + 1] = r * sin(th);
    }
    return z;
}
