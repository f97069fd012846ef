#version 450
// sgd: one SGD step with momentum and weight decay, in place, PyTorch semantics (dampening 0):
//   g' = g + wd·w;  v ← μ·v + g';  d = nesterov ? g' + μ·v : v;  w ← w − lr·d.
// With v starting at zero the first step gives v = g', as PyTorch's clone of the first gradient does.
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
    precise float nw = wi - pc.lr * d;
    w[i] = nw;
}
