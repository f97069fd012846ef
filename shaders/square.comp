#version 450
// square: the Square Attack (Andriushchenko et al., ECCV 2020, ℓ∞) as AutoAttack runs it, on a batch of B images
// C×H×W, each row with its own state of S floats and its own Philox stream, so a row's queries depend on its
// example id and iteration only, never on the batch it is in:
//   col 0 best margin m* (max_{j≠y} z_j − z_y, ascended)   col 1 it (queries made)   col 2 done (0/1)
//   col 3 accept the last proposal (0/1)   col 4 vh   col 5 vw   col 6 s (the square drawn for iteration it)
//   col 7 the square's channel signs (bit c: +)
// it = 0 is the start: vertical stripes x = clip(x₀ ± ε) with a sign per (channel, column) (counter (j/4, stream,
// id, 0), j = c·W + w, word j % 4, its top bit). Iteration it ≥ 1 proposes x_best with one s×s window moved to
// x₀ ± 2ε per channel, projected on the ε-ball and [0, 1]; s = sizes[it − 1] (AutoAttack's p schedule, from the
// host); the window's corner and signs are words 0, 1, 2 of Philox(0, stream + 1, id, it): vh = ⌊w0·(H − s + 1)/2³²⌋,
// vw likewise from w1, signs = w2.
// square_propose (an element per invocation): first commits the last accepted proposal (x_best ← x_new where col 3),
//   then writes the next proposal into x_new (nothing for a row that is done).
// square_accept (a row per invocation): reads the logits of x_new, and unless done: at it = 0 takes the start;
//   else accepts x_new if its margin beats m* or it is misclassified (argmax ≠ y, ties to the lower index);
//   it += 1; done once misclassified or after nIter iterations; else draws the square of iteration it.
// square_draw (a row per invocation): draws the square of the row's current it (a chunk's first iteration).
// square_propose4 (W % 4 == 0, the images 16-byte aligned; kernels.SquarePropose): four adjacent pixels of a row
//   per invocation as vec4s (lavapipe loads and stores a storage buffer one SIMD lane at a time), with the same bits;
//   a stripe's four signs are then one Philox call's four words.
// sqnet:variant square_propose -DMODE=0
// sqnet:variant square_accept -DMODE=1
// sqnet:variant square_draw -DMODE=2
// sqnet:variant square_propose4 -DMODE=0 -DVEC4=1
#include "common.glsl"
#include "philox.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.squarePush).
layout(push_constant) uniform Push {
    uint n;      // propose: elements B·C·H·W (VEC4: their vec4s); accept, draw: rows B
    uint c;      // channels (≤ 16)
    uint h;      // rows of an image
    uint w;      // columns of an image
    uint k;      // accept: classes
    uint iters;  // accept: iterations after the start (AutoAttack: 5000)
    float eps;   // propose: radius ε
    uint seedLo; // key word 0
    uint seedHi; // key word 1
    uint stream; // counter word 1 of the stripes; the squares use stream + 1
    uint s;      // state floats per row
} pc;

#if MODE == 0
#if defined(VEC4) && VEC4
#define T vec4
#else
#define T float
#endif
layout(std430, set = 0, binding = 0) readonly buffer X0 { T x0[]; };
layout(std430, set = 0, binding = 1) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 2) readonly buffer St { float st[]; };
layout(std430, set = 0, binding = 3) buffer XBest { T xbest[]; };
layout(std430, set = 0, binding = 4) buffer XNew { T xnew[]; };
#elif MODE == 1
layout(std430, set = 0, binding = 0) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 1) readonly buffer L { uint labels[]; };
layout(std430, set = 0, binding = 2) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 3) readonly buffer Sizes { float sizes[]; };
layout(std430, set = 0, binding = 4) buffer St { float st[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 1) readonly buffer Sizes { float sizes[]; };
layout(std430, set = 0, binding = 2) buffer St { float st[]; };
#endif

#if MODE != 0
// draw writes the square of iteration it into row b's state.
void draw(uint b, uint it) {
    uint s = uint(sizes[it - 1u]);
    uvec4 r = philox4x32_10(uvec4(0u, pc.stream + 1u, ids[b], it), uvec2(pc.seedLo, pc.seedHi));
    uint hi, lo;
    umulExtended(r.x, pc.h - s + 1u, hi, lo);
    st[b * pc.s + 4u] = float(hi);
    umulExtended(r.y, pc.w - s + 1u, hi, lo);
    st[b * pc.s + 5u] = float(hi);
    st[b * pc.s + 6u] = float(s);
    st[b * pc.s + 7u] = float(r.z & ((1u << pc.c) - 1u));
}
#endif

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
#if MODE == 0 && defined(VEC4) && VEC4
    // Element e = 4i + k: pixels px .. px + 3 of one row (W % 4 == 0), the same window test and values per lane.
    uint plane = pc.h * pc.w;
    uint e = 4u * i;
    uint row = e / (pc.c * plane);
    uint r = row * pc.s;
    uint rest = e - row * pc.c * plane;
    uint ch = rest / plane;
    uint py = (rest - ch * plane) / pc.w;
    uint px = rest - ch * plane - py * pc.w;
    vec4 xb = xbest[i];
    if (st[r + 3u] != 0.0) {
        xb = xnew[i];
        xbest[i] = xb;
    }
    if (st[r + 2u] != 0.0) {
        return;
    }
    vec4 o = x0[i];
    uint it = uint(st[r + 1u]);
    if (it == 0u) {
        uint j = ch * pc.w + px; // a multiple of 4: its four signs are the words of one Philox call
        uvec4 q = philox4x32_10(uvec4(j / 4u, pc.stream, ids[row], 0u), uvec2(pc.seedLo, pc.seedHi));
        vec4 sg = vec4((q.x >> 31) != 0u ? 1.0 : -1.0, (q.y >> 31) != 0u ? 1.0 : -1.0,
                       (q.z >> 31) != 0u ? 1.0 : -1.0, (q.w >> 31) != 0u ? 1.0 : -1.0);
        precise vec4 v = o + pc.eps * sg;
        xnew[i] = clamp(v, 0.0, 1.0);
        return;
    }
    uint vh = uint(st[r + 4u]), vw = uint(st[r + 5u]), s = uint(st[r + 6u]);
    float sg = ((uint(st[r + 7u]) >> ch) & 1u) != 0u ? 1.0 : -1.0;
    precise float e2 = 2.0 * pc.eps;
    precise vec4 v = xb + e2 * sg;
    precise vec4 lo = o - pc.eps;
    precise vec4 hi = o + pc.eps;
    vec4 moved = clamp(clamp(v, lo, hi), 0.0, 1.0);
    bool inRow = py >= vh && py < vh + s;
    vec4 out4 = xb;
    for (uint k = 0u; k < 4u; k++) {
        if (inRow && px + k >= vw && px + k < vw + s) {
            out4[k] = moved[k];
        }
    }
    xnew[i] = out4;
#elif MODE == 0
    uint plane = pc.h * pc.w;
    uint row = i / (pc.c * plane);
    uint r = row * pc.s;
    uint rest = i - row * pc.c * plane;
    uint ch = rest / plane;
    uint py = (rest - ch * plane) / pc.w;
    uint px = rest - ch * plane - py * pc.w;
    float xb = xbest[i];
    if (st[r + 3u] != 0.0) {
        xb = xnew[i];
        xbest[i] = xb;
    }
    if (st[r + 2u] != 0.0) {
        return;
    }
    float o = x0[i];
    uint it = uint(st[r + 1u]);
    if (it == 0u) {
        uint j = ch * pc.w + px;
        uvec4 q = philox4x32_10(uvec4(j / 4u, pc.stream, ids[row], 0u), uvec2(pc.seedLo, pc.seedHi));
        float sg = (q[j % 4u] >> 31) != 0u ? 1.0 : -1.0;
        precise float v = o + pc.eps * sg;
        xnew[i] = clamp(v, 0.0, 1.0);
        return;
    }
    uint vh = uint(st[r + 4u]), vw = uint(st[r + 5u]), s = uint(st[r + 6u]);
    if (py >= vh && py < vh + s && px >= vw && px < vw + s) {
        float sg = ((uint(st[r + 7u]) >> ch) & 1u) != 0u ? 1.0 : -1.0;
        precise float e2 = 2.0 * pc.eps;
        precise float v = xb + e2 * sg;
        precise float lo = o - pc.eps;
        precise float hi = o + pc.eps;
        xnew[i] = clamp(clamp(v, lo, hi), 0.0, 1.0);
    } else {
        xnew[i] = xb;
    }
#elif MODE == 1
    uint r = i * pc.s;
    if (st[r + 2u] != 0.0) {
        st[r + 3u] = 0.0;
        return;
    }
    uint base = i * pc.k;
    uint y = labels[i];
    // argmax (ties → the lower index, a NaN the largest, as kernels.Argmax) and the best other class.
    uint jb = 0u;
    float top = z[base];
    for (uint j = 1u; j < pc.k; j++) {
        float v = z[base + j];
        if (v > top || (isnan(v) && !isnan(top))) {
            top = v;
            jb = j;
        }
    }
    uint jo = y == 0u ? 1u : 0u;
    float other = z[base + jo];
    for (uint j = jo + 1u; j < pc.k; j++) {
        float v = z[base + j];
        if (j != y && (v > other || (isnan(v) && !isnan(other)))) {
            other = v;
        }
    }
    float m = y < pc.k ? other - z[base + y] : uintBitsToFloat(0x7fc00000u);
    bool fooled = jb != y;
    uint it = uint(st[r + 1u]);
    bool accept = it == 0u || m > st[r] || fooled;
    if (accept) {
        st[r] = m;
    }
    st[r + 3u] = accept ? 1.0 : 0.0;
    it++;
    st[r + 1u] = float(it);
    if (fooled || it > pc.iters) {
        st[r + 2u] = 1.0;
    } else {
        draw(i, it);
    }
#else
    uint it = uint(st[i * pc.s + 1u]);
    if (it > 0u && st[i * pc.s + 2u] == 0.0) {
        draw(i, it);
    }
#endif
}
