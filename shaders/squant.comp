#version 450
// squant: the soft quantizer q(x) = 1/K · Σ_k σ(α (x − t_k)), K = L − 1 thresholds per channel c of an NCHW input
// (shared thresholds are the case C = 1, HW = C·H·W), and its gradients:
//   squant_fwd:   y = q(x)
//   squant_bwdx:  dx = dy · α/K · Σ_k σ_k (1 − σ_k)                  (input gradient only: attacks, frozen t)
//   squant_bwd:   dx as above, and the first pass of ∂/∂t_k = −α/K · Σ_{n,p} dy · σ_k (1 − σ_k): one workgroup
//                 per (chunk of CHUNK_E·WG elements of channel c, c) writes, for each k in turn, its chunk's sum
//                 reduced in a fixed tree order to part[(c·K + k)·B + chunk] · partScale. squant_reduce then sums
//                 the B chunks in a fixed order (or, when B = 1, the host binds dthr as part with partScale = −α/K).
// σ(1 − σ) is computed as e/(1 + e)² with e = exp(−|z|), free of the cancellation in 1 − σ near σ = 1.
// Thresholds are thr[c·K + k].
// sqnet:variant squant_fwd -DMODE=0 -DVEC4=0
// sqnet:variant squant_bwd -DMODE=1 -DVEC4=0
// sqnet:variant squant_bwdx -DMODE=2 -DVEC4=0
// sqnet:variant squant_fwd4 -DMODE=0 -DVEC4=1
// sqnet:variant squant_bwd4 -DMODE=1 -DVEC4=1
// sqnet:variant squant_bwdx4 -DMODE=2 -DVEC4=1
// The VEC4 variants (HW % 4 == 0, 16-byte aligned ranges; kernels.vec4Variant) take four consecutive elements of one
// plane per invocation, or per element slot of squant_bwd, through vec4 views: the same operations per element,
// so y and dx keep their bits; squant_bwd4 adds a slot's four terms in order, a different fixed order of the
// threshold gradient's sum. On lavapipe a storage-buffer access walks the SIMD lanes one by one whatever its width.
#include "common.glsl"
SQNET_LOCAL_SIZE

// CHUNK_E is how many elements of its chunk each invocation of squant_bwd handles (kernels.squantChunkE).
#define CHUNK_E 4

// Push constants (Go mirror: kernels.squantPush).
layout(push_constant) uniform Push {
    uint n;          // elements N·C·HW
    uint C;          // channels with their own thresholds (1 when shared)
    uint HW;         // elements per (image, channel) plane
    uint K;          // thresholds per channel, L − 1
    float alpha;     // steepness α
    float invK;      // 1/K
    float alphaOverK; // α/K
    uint chunks;     // squant_bwd: B, chunks per channel
    float partScale; // squant_bwd: factor applied to each chunk's sum (1, or −α/K when B = 1)
} pc;

#if VEC4
#define ELEM vec4
#define W 4u
#else
#define ELEM float
#define W 1u
#endif
layout(std430, set = 0, binding = 0) readonly buffer X { ELEM x[]; };
layout(std430, set = 0, binding = 1) readonly buffer T { float thr[]; };
#if MODE == 0
layout(std430, set = 0, binding = 2) writeonly buffer Y { ELEM y[]; };
#else
layout(std430, set = 0, binding = 2) readonly buffer DY { ELEM dy[]; };
layout(std430, set = 0, binding = 3) writeonly buffer DX { ELEM dx[]; };
#endif
#if MODE == 1
layout(std430, set = 0, binding = 4) writeonly buffer P { float part[]; };
shared float red[gl_WorkGroupSize.x];
#endif

// sq_sigmoid returns σ(z) and σ(z)(1 − σ(z)), stable for any z.
void sq_sigmoid(ELEM z, out ELEM s, out ELEM ds) {
    ELEM e = exp(-abs(z));
    ELEM r = 1.0 / (1.0 + e);
#if VEC4
    s = mix(e * r, r, greaterThanEqual(z, vec4(0.0))); // a per-component select, as the scalar ?:
#else
    s = z >= 0.0 ? r : e * r;
#endif
    ds = e * r * r;
}

// sq_sum returns the terms of v added in component order.
float sq_sum(ELEM v) {
#if VEC4
    return ((v.x + v.y) + v.z) + v.w;
#else
    return v;
#endif
}

void main() {
#if MODE == 1
    uint b = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (b >= pc.chunks) {
        return; // the whole workgroup: the grid's fold left it past the last chunk
    }
    uint c = gl_WorkGroupID.z;
    uint wg = gl_WorkGroupSize.x;
    uint lid = gl_LocalInvocationID.x;
    uint m = pc.n / pc.C; // elements of channel c
    uint idx[CHUNK_E];
    ELEM xv[CHUNK_E], dyv[CHUNK_E], dsum[CHUNK_E];
    bool ok[CHUNK_E];
    for (uint e = 0u; e < CHUNK_E; e++) {
        uint j = W * (b * wg * CHUNK_E + e * wg + lid); // first element of the slot
        ok[e] = j < m;
        idx[e] = ((j / pc.HW) * pc.C * pc.HW + c * pc.HW + j % pc.HW) / W;
        xv[e] = ok[e] ? x[idx[e]] : ELEM(0.0);
        dyv[e] = ok[e] ? dy[idx[e]] : ELEM(0.0);
        dsum[e] = ELEM(0.0);
    }
    for (uint k = 0u; k < pc.K; k++) {
        float t = thr[c * pc.K + k];
        float acc = 0.0;
        for (uint e = 0u; e < CHUNK_E; e++) {
            if (ok[e]) {
                ELEM s, ds;
                sq_sigmoid(pc.alpha * (xv[e] - t), s, ds);
                dsum[e] += ds;
                acc += sq_sum(dyv[e] * ds);
            }
        }
        red[lid] = acc;
        barrier();
        for (uint h = wg / 2u; h > 0u; h /= 2u) {
            if (lid < h) {
                red[lid] += red[lid + h];
            }
            barrier();
        }
        if (lid == 0u) {
            part[(c * pc.K + k) * pc.chunks + b] = red[0] * pc.partScale;
        }
        barrier(); // red is rewritten for the next threshold
    }
    for (uint e = 0u; e < CHUNK_E; e++) {
        if (ok[e]) {
            dx[idx[e]] = dyv[e] * pc.alphaOverK * dsum[e];
        }
    }
#else
    uint i = sqnet_flat_id();
    if (i >= pc.n / W) {
        return;
    }
    uint c = (W * i / pc.HW) % pc.C;
    ELEM xi = x[i];
    ELEM sum = ELEM(0.0);
    for (uint k = 0u; k < pc.K; k++) {
        ELEM s, ds;
        sq_sigmoid(pc.alpha * (xi - thr[c * pc.K + k]), s, ds);
#if MODE == 0
        sum += s;
#else
        sum += ds;
#endif
    }
#if MODE == 0
    y[i] = sum * pc.invK;
#else
    dx[i] = dy[i] * pc.alphaOverK * sum;
#endif
#endif
}
