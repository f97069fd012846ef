#version 450
// batchnorm: BatchNorm2d over x [N, C, P] (P = H·W) with per-channel weight γ and bias β, as PyTorch computes it.
// Every variant shares the per-channel stats [C, 4]: (mean, invstd, scale = γ·invstd, shift = β − mean·scale).
//   bn_stats (MODE 0, a workgroup per channel): training mode. mean = Σx/n and M2 = Σ(x − mean)² over the n = N·P
//     values of the channel, two passes in a fixed order (serial strides, then a shared-memory binary tree: the same
//     bits every run); invstd = 1/√(M2/n + eps) (the biased variance normalises); with flag 1 the running
//     estimates move by momentum m: rm ← (1 − m)·rm + m·mean, rv ← (1 − m)·rv + m·M2/(n − 1) (unbiased, as PyTorch).
//   bn_eval_stats (MODE 1, an invocation per channel): eval mode, from the running estimates: mean = rm,
//     invstd = 1/√(rv + eps).
//   bn_apply (MODE 2, an element per invocation): y = x·scale + shift (PyTorch's CPU kernel folds it the same way).
//   bn_grad_params (MODE 3, a workgroup per channel): dβ = Σ dy, dγ = Σ dy·x̂ with x̂ = (x − mean)·invstd.
//   bn_grad_x (MODE 4, an element per invocation): training mode dx = scale·(dy − dβ/n − x̂·dγ/n) (the batch
//     statistics depend on x); flag 2 (eval mode) dx = scale·dy.
// sqnet:variant bn_stats -DMODE=0
// sqnet:variant bn_eval_stats -DMODE=1
// sqnet:variant bn_apply -DMODE=2
// sqnet:variant bn_grad_params -DMODE=3
// sqnet:variant bn_grad_x -DMODE=4
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.bnPush).
layout(push_constant) uniform Push {
    uint n;         // N (images)
    uint c;         // channels
    uint p;         // values per image and channel, H·W
    float eps;      // added to the variance
    float momentum; // running-estimate update (bn_stats with flag 1)
    uint flags;     // 1: update the running estimates (bn_stats); 2: eval mode (bn_grad_x)
} pc;

#if MODE == 0
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer G { float gamma[]; };
layout(std430, set = 0, binding = 2) readonly buffer B { float beta[]; };
layout(std430, set = 0, binding = 3) buffer RM { float rmean[]; };
layout(std430, set = 0, binding = 4) buffer RV { float rvar[]; };
layout(std430, set = 0, binding = 5) writeonly buffer S { float st[]; };
#elif MODE == 1
layout(std430, set = 0, binding = 0) readonly buffer G { float gamma[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float beta[]; };
layout(std430, set = 0, binding = 2) readonly buffer RM { float rmean[]; };
layout(std430, set = 0, binding = 3) readonly buffer RV { float rvar[]; };
layout(std430, set = 0, binding = 4) writeonly buffer S { float st[]; };
#elif MODE == 2
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer S { float st[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };
#elif MODE == 3
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, set = 0, binding = 2) readonly buffer S { float st[]; };
layout(std430, set = 0, binding = 3) writeonly buffer DG { float dgamma[]; };
layout(std430, set = 0, binding = 4) writeonly buffer DB { float dbeta[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, set = 0, binding = 2) readonly buffer S { float st[]; };
layout(std430, set = 0, binding = 3) readonly buffer DG { float dgamma[]; };
layout(std430, set = 0, binding = 4) readonly buffer DB { float dbeta[]; };
layout(std430, set = 0, binding = 5) writeonly buffer DX { float dx[]; };
#endif

#if MODE == 0 || MODE == 3
// One slot per invocation; the workgroup size is a power of two chosen by the host (kernels.Lib.redWG).
shared float red[gl_WorkGroupSize.x];
shared float red2[gl_WorkGroupSize.x];

// treeSum combines the workgroup's partials a (and b) in a fixed binary tree; every invocation gets the totals.
vec2 treeSum(float a, float b) {
    uint t = gl_LocalInvocationID.x;
    red[t] = a;
    red2[t] = b;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s /= 2u) {
        if (t < s) {
            red[t] += red[t + s];
            red2[t] += red2[t + s];
        }
        barrier();
    }
    vec2 r = vec2(red[0], red2[0]);
    barrier(); // every invocation has read the totals before the slots are reused
    return r;
}

// at is the index of value j (0 ≤ j < N·P) of channel ch: image j / P, pixel j % P.
uint at(uint ch, uint j) {
    uint img = j / pc.p;
    return (img * pc.c + ch) * pc.p + (j - img * pc.p);
}
#endif

void main() {
#if MODE == 0 || MODE == 3
    // A workgroup per channel, folded into a 2-D grid when C exceeds maxComputeWorkGroupCount[0]; the early
    // return is uniform across the workgroup, so the barriers stay in uniform control flow.
    uint ch = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (ch >= pc.c) {
        return;
    }
    uint t = gl_LocalInvocationID.x;
    uint total = pc.n * pc.p;
#if MODE == 0
    float s = 0.0;
    for (uint j = t; j < total; j += gl_WorkGroupSize.x) {
        s += x[at(ch, j)];
    }
    float mean = treeSum(s, 0.0).x / float(total);
    float m2 = 0.0;
    for (uint j = t; j < total; j += gl_WorkGroupSize.x) {
        float d = x[at(ch, j)] - mean;
        m2 += d * d;
    }
    m2 = treeSum(m2, 0.0).x;
    if (t == 0u) {
        float invstd = 1.0 / sqrt(m2 / float(total) + pc.eps);
        float scale = gamma[ch] * invstd;
        st[4u * ch] = mean;
        st[4u * ch + 1u] = invstd;
        st[4u * ch + 2u] = scale;
        st[4u * ch + 3u] = beta[ch] - mean * scale;
        if ((pc.flags & 1u) != 0u) {
            float m = pc.momentum;
            rmean[ch] = (1.0 - m) * rmean[ch] + m * mean;
            rvar[ch] = (1.0 - m) * rvar[ch] + m * (m2 / float(total - 1u));
        }
    }
#else
    float mean = st[4u * ch], invstd = st[4u * ch + 1u];
    float sdy = 0.0, sdyx = 0.0;
    for (uint j = t; j < total; j += gl_WorkGroupSize.x) {
        uint i = at(ch, j);
        float g = dy[i];
        sdy += g;
        sdyx += g * ((x[i] - mean) * invstd);
    }
    vec2 r = treeSum(sdy, sdyx);
    if (t == 0u) {
        dbeta[ch] = r.x;
        dgamma[ch] = r.y;
    }
#endif
#elif MODE == 1
    uint ch = sqnet_flat_id();
    if (ch >= pc.c) {
        return;
    }
    float invstd = 1.0 / sqrt(rvar[ch] + pc.eps);
    float scale = gamma[ch] * invstd;
    st[4u * ch] = rmean[ch];
    st[4u * ch + 1u] = invstd;
    st[4u * ch + 2u] = scale;
    st[4u * ch + 3u] = beta[ch] - rmean[ch] * scale;
#else
    uint i = sqnet_flat_id();
    if (i >= pc.n * pc.c * pc.p) {
        return;
    }
    uint ch = (i / pc.p) % pc.c;
#if MODE == 2
    y[i] = x[i] * st[4u * ch + 2u] + st[4u * ch + 3u];
#else
    float scale = st[4u * ch + 2u];
    if ((pc.flags & 2u) != 0u) {
        dx[i] = scale * dy[i];
        return;
    }
    float total = float(pc.n * pc.p);
    float xhat = (x[i] - st[4u * ch]) * st[4u * ch + 1u];
    dx[i] = scale * (dy[i] - dbeta[ch] / total - xhat * (dgamma[ch] / total));
#endif
#endif
}
