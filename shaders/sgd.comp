#version 450
// sgd: one SGD step with momentum and weight decay, in place, PyTorch semantics (dampening 0):
//   g' = g + wd·w;  v ← μ·v + g';  d = nesterov ? g' + μ·v : v;  w ← w − lr·d.
// With v starting at zero the first step gives v = g', as PyTorch's clone of the first gradient does.
// sgd_dyn reads lr from a one-float buffer instead of the push constants: the recorded step replays while the host
// rewrites the buffer each step (a learning-rate schedule).
// sqnet:variant sgd -DDYNAMIC=0
// sqnet:variant sgd_dyn -DDYNAMIC=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.sgdPush).
layout(push_constant) uniform Push {
    uint n;         // elements
    float lr;       // learning rate
    float momentum; // μ
    float wd;       // weight decay
    uint nesterov;  // 1: Nesterov momentum
} pc;

layout(std430, set = 0, binding = 0) buffer W { float w[]; };
layout(std430, set = 0, binding = 1) readonly buffer G { float g[]; };
layout(std430, set = 0, binding = 2) buffer V { float v[]; };
#if DYNAMIC
layout(std430, set = 0, binding = 3) readonly buffer LR { float lrbuf[]; };
#endif

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
    // precise: every product and sum rounded on its own, as in the Go reference (no fused multiply-adds).
    float wi = w[i];
    precise float gp = g[i] + pc.wd * wi;
    precise float vi = pc.momentum * v[i] + gp;
    v[i] = vi;
    precise float d = pc.nesterov != 0u ? gp + pc.momentum * vi : vi;
#if DYNAMIC
    float lr = lrbuf[0];
#else
    float lr = pc.lr;
#endif
    precise float nw = wi - lr * d;
    w[i] = nw;
}
