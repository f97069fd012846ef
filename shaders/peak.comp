#version 450
// peak: the device's fp32 multiply-add rate with every operand in registers — no memory traffic inside the loop —
// the ceiling (the fastest loop shape found, see below) that the GEMM-shaped kernels and any peer they are compared
// with are read against. Invocation i
// runs ITERS steps of CHAINS independent vec4 recurrences s ← s·b + a (a = x[i], b = pc.b; |b| < 1 keeps them
// bounded) and stores the sum of the chains' components to y[i]: 8·CHAINS flops a step (a multiply and an add per
// component). MAD writes the step as a*b + c, the other variant as fma(): drivers may compile the two differently
// (lavapipe lowers fma() to a multiply and an add), so `bench kernels` reports both. The recurrences depend on x
// and b, known only at run time, and start apart, so no compiler can fold the loop or merge the chains.
// sqnet:variant peak_mad -DMAD=1
// sqnet:variant peak_fma -DMAD=0
#include "common.glsl"
SQNET_LOCAL_SIZE

#extension GL_EXT_control_flow_attributes : require
// 10 chains with 4 steps unrolled was the fastest of the forms tried on lavapipe (2026-12-06: 2–10 chains, 1–16
// steps unrolled): fewer chains leave the multiply and add units waiting on latency, a rolled loop pays the
// driver's per-iteration bookkeeping (6 chains rolled ran at about half the rate of 6 chains unrolled by 4).
#define CHAINS 10 // Go: kernels.peakChains
#define UNROLL 4

// Push constants (Go mirror: kernels.peakPush).
layout(push_constant) uniform Push {
    uint n;     // invocations
    uint iters; // steps per invocation
    float b;    // the multiplier
} pc;

#if MAD
#define STEP(s, b, a) ((s) * (b) + (a))
#else
#define STEP(s, b, a) fma(s, b, a)
#endif

layout(std430, set = 0, binding = 0) readonly buffer X_ { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y_ { float y[]; };

void main() {
    const uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
    const vec4 a = vec4(x[i]), b = vec4(pc.b);
    vec4 s[CHAINS];
    for (uint c = 0; c < CHAINS; c++) {
        s[c] = a + float(c);
    }
    uint k = 0;
    for (; k + UNROLL <= pc.iters; k += UNROLL) {
        [[unroll]] for (uint u = 0; u < UNROLL; u++) {
            [[unroll]] for (uint c = 0; c < CHAINS; c++) {
                s[c] = STEP(s[c], b, a);
            }
        }
    }
    for (; k < pc.iters; k++) {
        [[unroll]] for (uint c = 0; c < CHAINS; c++) {
            s[c] = STEP(s[c], b, a);
        }
    }
    vec4 t = s[0];
    for (uint c = 1; c < CHAINS; c++) {
        t += s[c];
    }
    y[i] = (t.x + t.y) + (t.z + t.w);
}
