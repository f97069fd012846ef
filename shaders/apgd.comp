#version 450
// apgd: the device side of Auto-PGD (Croce & Hein 2020, Algorithm 1, ℓ∞) on a batch of B examples of D values,
// every per-example quantity (step size, best loss, checkpoint bookkeeping) in a state buffer of S floats a row:
//   col 0 η (step size)      col 1 best loss        col 2 previous loss     col 3 increases since the checkpoint
//   col 4 best loss at the last checkpoint          col 5 halved at the last checkpoint (0/1)
//   col 6 improved this step (0/1)                  col 7 halve now (0/1)
// apgd_init (a row per invocation): the random start x = clip(x₀ + ε·t/(max|t| + 1e-12), 0, 1), t ~ U[−1, 1) from
//   Philox (key = seed, counter = (j/4, stream, id, attempt), word j % 4 for element j of the example with id),
//   so an example's start depends on its id, never on its batch.
// apgd_step (an element per invocation): z = P(x + η·sign(g)), x' = P(x + a·(z − x) + (1 − a)·(x − x_old)) with
//   P the projection onto the ε-ball around x₀ and then [0, 1]; x_old ← x, x ← x'. a = 1 on the first step, else
//   the momentum 0.75.
// apgd_track (a row per invocation): after the loss at the new point, counts an increase over the previous loss,
//   keeps the best loss (flag col 6), and at a checkpoint (after k steps) halves η where fewer than ρ·k steps raised
//   the loss, or where η was not halved at the last checkpoint and the best loss has not improved since (col 7;
//   the host's graph then restores the best point and its gradient there). mode 0 initialises the row from the
//   start point's loss. Every call writes (loss, η, best loss) to row `iter` of the trace [iters + 1, B, 3].
// apgd_step4 (D % 4 == 0, the ranges 16-byte aligned; kernels.vec4Variant) steps four elements of a row per
// invocation as vec4s, with the same bits (n and d then count vec4s).
// sqnet:variant apgd_init -DMODE=0
// sqnet:variant apgd_step -DMODE=1
// sqnet:variant apgd_track -DMODE=2
// sqnet:variant apgd_step4 -DMODE=1 -DVEC4=1
#include "common.glsl"
#include "philox.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.apgdPush).
layout(push_constant) uniform Push {
    uint n;       // init: rows B; step: elements B·D; track: rows B
    uint d;       // values per example
    float eps;    // radius ε
    float a;      // step: momentum factor (1 on the first step); track: ρ
    uint seedLo;  // init: key word 0
    uint seedHi;  // init: key word 1
    uint stream;  // init: counter word 1; track: 0 = initialise, 1 = a step
    uint attempt; // init: counter word 3 (restart or target); track: the checkpoint's interval k (0: none)
    float eta0;   // track: the initial step size (2ε)
    uint iter;    // track: trace row
    uint s;       // state floats per row
} pc;

#if MODE == 0
layout(std430, set = 0, binding = 0) readonly buffer X0 { float x0[]; };
layout(std430, set = 0, binding = 1) readonly buffer Ids { uint ids[]; };
layout(std430, set = 0, binding = 2) writeonly buffer X { float x[]; };
#elif MODE == 1
#if defined(VEC4) && VEC4
#define T vec4
#else
#define T float
#endif
layout(std430, set = 0, binding = 0) readonly buffer X0 { T x0[]; };
layout(std430, set = 0, binding = 1) readonly buffer G { T g[]; };
layout(std430, set = 0, binding = 2) readonly buffer St { float st[]; };
layout(std430, set = 0, binding = 3) buffer X { T x[]; };
layout(std430, set = 0, binding = 4) buffer XOld { T xold[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer Loss { float loss[]; };
layout(std430, set = 0, binding = 1) buffer St { float st[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Trace { float trace[]; };
#endif

float sgn(float v) {
    return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0);
}

vec4 sgn(vec4 v) {
    return vec4(sgn(v.x), sgn(v.y), sgn(v.z), sgn(v.w));
}

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
#if MODE == 0
    uvec2 key = uvec2(pc.seedLo, pc.seedHi);
    uint base = i * pc.d;
    uint id = ids[i];
    float m = 0.0;
    for (uint j = 0u; j < pc.d; j += 4u) {
        uvec4 w = philox4x32_10(uvec4(j / 4u, pc.stream, id, pc.attempt), key);
        for (uint q = 0u; q < 4u && j + q < pc.d; q++) {
            m = max(m, abs(philox_symmetric(w[q])));
        }
    }
    precise float den = m + 1e-12;
    for (uint j = 0u; j < pc.d; j += 4u) {
        uvec4 w = philox4x32_10(uvec4(j / 4u, pc.stream, id, pc.attempt), key);
        for (uint q = 0u; q < 4u && j + q < pc.d; q++) {
            precise float u = pc.eps * (philox_symmetric(w[q]) / den);
            precise float v = x0[base + j + q] + u;
            x[base + j + q] = clamp(v, 0.0, 1.0);
        }
    }
#elif MODE == 1
    uint row = i / pc.d;
    float eta = st[row * pc.s];
    T o = x0[i];
    T v = x[i];
    precise T lo = o - pc.eps;
    precise T hi = o + pc.eps;
    precise T s1 = v + eta * sgn(g[i]);
    T z = clamp(clamp(s1, lo, hi), 0.0, 1.0);
    precise T s2 = v + (z - v) * pc.a + (v - xold[i]) * (1.0 - pc.a);
    xold[i] = v;
    x[i] = clamp(clamp(s2, lo, hi), 0.0, 1.0);
#else
    uint b = i * pc.s;
    float l = loss[i];
    if (pc.stream == 0u) {
        st[b + 0] = pc.eta0;
        st[b + 1] = l;
        st[b + 2] = l;
        st[b + 3] = 0.0;
        st[b + 4] = l;
        st[b + 5] = 1.0; // as if halved: the first checkpoint only applies the count condition
        st[b + 6] = 0.0;
        st[b + 7] = 0.0;
    } else {
        float cnt = st[b + 3] + (l > st[b + 2] ? 1.0 : 0.0);
        st[b + 2] = l;
        bool improved = l > st[b + 1];
        float best = improved ? l : st[b + 1];
        st[b + 1] = best;
        st[b + 6] = improved ? 1.0 : 0.0;
        bool halve = false;
        if (pc.attempt > 0u) {
            precise float need = pc.a * float(pc.attempt);
            bool osc = cnt < need;
            bool stuck = st[b + 5] == 0.0 && st[b + 4] >= best;
            halve = osc || stuck;
            st[b + 5] = halve ? 1.0 : 0.0;
            st[b + 4] = best;
            cnt = 0.0;
            if (halve) {
                st[b + 0] = st[b + 0] * 0.5;
            }
        }
        st[b + 3] = cnt;
        st[b + 7] = halve ? 1.0 : 0.0;
    }
    uint t = (pc.iter * pc.n + i) * 3u;
    trace[t + 0] = l;
    trace[t + 1] = st[b + 0];
    trace[t + 2] = st[b + 1];
#endif
}
