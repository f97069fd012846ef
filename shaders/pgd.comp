#version 450
// pgd: the ℓ∞ attack's elementwise steps, fused.
//   pgd_step:  x ← clip(clamp(x + η·sign(g), x₀ − ε, x₀ + ε), 0, 1), sign(0) = 0, in place on x.
//   pgd_fgsm:  x ← clip(x₀ + ε·sign(g), 0, 1): FGSM, the PGD step from x = x₀ with η = ε (the ball clamp is then a
//              no-op), in one dispatch without copying x₀ first.
//   pgd_init:  x ← clip(x₀ + ε·s, 0, 1), s ~ U[−1, 1) from Philox (counter (i/4, stream, step, 0), key = seed):
//              the random start. One invocation per Philox block of four elements.
// sqnet:variant pgd_step -DMODE=0
// sqnet:variant pgd_fgsm -DMODE=1
// sqnet:variant pgd_init -DMODE=2
// sqnet:variant pgd_step4 -DMODE=0 -DVEC4=1
// sqnet:variant pgd_fgsm4 -DMODE=1 -DVEC4=1
// The VEC4 variants of the step and FGSM (n % 4 == 0, every range 16-byte aligned; kernels.vec4Variant) take four
// elements an invocation through vec4 views, with the same operations per element: the same bits. On lavapipe a
// storage-buffer access costs about the same per invocation whatever its width (small's PGD-40 step: 0.5 ms of
// its ~19 before).
#if !defined(VEC4)
#define VEC4 0
#endif
#include "common.glsl"
#include "philox.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.pgdPush).
layout(push_constant) uniform Push {
    uint n;      // elements
    float eta;   // step size η (pgd_step)
    float eps;   // radius ε
    uint seedLo; // pgd_init: key word 0
    uint seedHi; // pgd_init: key word 1
    uint stream; // pgd_init: counter word 1
    uint step;   // pgd_init: counter word 2
} pc;

#if VEC4
#define ELEM vec4
#else
#define ELEM float
#endif
layout(std430, set = 0, binding = 0) readonly buffer X0 { ELEM x0[]; };
#if MODE == 0
layout(std430, set = 0, binding = 1) readonly buffer G { ELEM g[]; };
layout(std430, set = 0, binding = 2) buffer X { ELEM x[]; };
#elif MODE == 1
layout(std430, set = 0, binding = 1) readonly buffer G { ELEM g[]; };
layout(std430, set = 0, binding = 2) writeonly buffer X { ELEM x[]; };
#else
layout(std430, set = 0, binding = 1) writeonly buffer X { float x[]; };
#endif

// sgn is sign with sign(0) = 0 (and NaN gradients treated as 0, so a NaN never reaches x).
float sgn(float v) {
    return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0);
}

// sgn of each component, the same rule: 1 − 0, 0 − 1, or 0 − 0 (both comparisons false for 0 and NaN).
vec4 sgn(vec4 v) {
    return vec4(greaterThan(v, vec4(0.0))) - vec4(lessThan(v, vec4(0.0)));
}

void main() {
#if MODE == 2
    uint b = sqnet_flat_id();
    if (b >= (pc.n + 3u) / 4u) {
        return;
    }
    uvec4 w = philox4x32_10(uvec4(b, pc.stream, pc.step, 0u), uvec2(pc.seedLo, pc.seedHi));
    for (uint j = 0u; j < 4u; j++) {
        uint i = 4u * b + j;
        if (i >= pc.n) {
            break;
        }
        // two roundings (ε·s, then the sum), never fused: the Go reference rounds the same way.
        precise float u = pc.eps * philox_symmetric(w[j]);
        precise float s = x0[i] + u;
        x[i] = clamp(s, 0.0, 1.0);
    }
#else
    uint i = sqnet_flat_id();
    if (i >= (VEC4 != 0 ? pc.n / 4u : pc.n)) {
        return;
    }
    ELEM o = x0[i];
#if MODE == 0
    precise ELEM s = x[i] + pc.eta * sgn(g[i]);
    precise ELEM lo = o - pc.eps;
    precise ELEM hi = o + pc.eps;
    x[i] = clamp(clamp(s, lo, hi), 0.0, 1.0);
#else
    precise ELEM s = o + pc.eps * sgn(g[i]);
    x[i] = clamp(s, 0.0, 1.0);
#endif
#endif
}
