#version 450
// maxpool: 2×2 max pooling with stride 2 over NCHW planes. Odd H or W are floored (the last row or column is not
// pooled), as PyTorch's default. Forward, one invocation per output element:
//   y[p, oy, ox]   = max of x[p, 2oy..2oy+1, 2ox..2ox+1]            (then max(·, 0) with flag 1: ReLU fused)
//   idx[p, oy, ox] = h·W + w of that max: its flat index inside the input plane (PyTorch's return_indices)
// Ties go to the first max in row-major window order; a NaN wins (the last NaN if several), as in PyTorch.
// ReLU then pooling equals pooling then ReLU (max commutes with max(·, 0)), so flag 1 computes pool(relu(x)) in one
// pass, and its backward below routes the gradient to the window's maximum only where that maximum was positive.
// Backward, one invocation per window, which writes its four dx elements (and, on the last window of a row or
// column of an odd-sized plane, the floored ones), so every dx element is written exactly once without atomics
// (stride-2 windows do not overlap) and the index arithmetic is per window, not per element:
//   dx[p, h, w] = dy[p, h/2, w/2] if that window exists and its idx is h·W + w (and, flag 1, x[p, h, w] > 0), else 0
// (flag 1 reads x at the window's maximum only: the mask changes nothing elsewhere).
// VEC2 (backward, planes of even height and width, dx 8-byte aligned) writes each window's two rows as two vec2
// stores instead of four float stores: lavapipe stores a storage buffer one SIMD lane at a time, whatever the
// width, so this halves the stores; the values are the same bits.
// VEC4 (planes a multiple of 4 wide) gives each invocation two horizontally adjacent windows, a 2×4 input block:
// forward, two vec4 texel fetches where eight float ones were, and y and idx stored as a vec2 and a uvec2;
// backward (even height too), idx and dy read as a uvec2 and a vec2 and dx written as two vec4 rows. lavapipe
// fetches a vec4 texel for about the price of a float one and stores a vector in one pass over the SIMD lanes.
// The same values land in the same places: the results are the same bits.
// sqnet:variant maxpool_fwd -DBACKWARD=0
// sqnet:variant maxpool_bwd -DBACKWARD=1
// sqnet:variant maxpool_fwd_t -DBACKWARD=0 -DTEX=1
// sqnet:variant maxpool_bwd_t -DBACKWARD=1 -DTEX=1
// sqnet:variant maxpool_bwd2 -DBACKWARD=1 -DVEC2=1
// sqnet:variant maxpool_bwd2_t -DBACKWARD=1 -DVEC2=1 -DTEX=1
// sqnet:variant maxpool_fwd4_t -DBACKWARD=0 -DVEC4=1 -DTEX=1
// sqnet:variant maxpool_bwd4 -DBACKWARD=1 -DVEC4=1
// sqnet:variant maxpool_bwd4_t -DBACKWARD=1 -DVEC4=1 -DTEX=1
#include "common.glsl"
#if !defined(VEC4)
#define VEC4 0
#endif
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.maxPoolPush).
layout(push_constant) uniform Push {
    uint planes; // B·C
    uint h;      // input height (≥ 2)
    uint w;      // input width (≥ 2)
    uint flags;  // 1: ReLU fused (forward: ReLU after the max; backward: mask by x > 0)
} pc;

// TEX reads x through a texel buffer (see SQNET_F32_IN).
#if VEC4 && BACKWARD
layout(std430, set = 0, binding = 0) readonly buffer I { uvec2 idx2[]; };
layout(std430, set = 0, binding = 1) readonly buffer DY { vec2 dy2[]; };
SQNET_F32_IN(2, X) // the forward's input; read with flag 1
layout(std430, set = 0, binding = 3) writeonly buffer DX { vec4 dx4[]; };
#elif VEC4
SQNET_VEC4_TEX(0, X4)
layout(std430, set = 0, binding = 1) writeonly buffer Y { vec2 y2[]; };
layout(std430, set = 0, binding = 2) writeonly buffer I { uvec2 idx2[]; };
#elif BACKWARD
layout(std430, set = 0, binding = 0) readonly buffer I { uint idx[]; };
layout(std430, set = 0, binding = 1) readonly buffer DY { float dy[]; };
SQNET_F32_IN(2, X) // the forward's input; read with flag 1
#if defined(VEC2) && VEC2
layout(std430, set = 0, binding = 3) writeonly buffer DX { vec2 dx2[]; };
#else
layout(std430, set = 0, binding = 3) writeonly buffer DX { float dx[]; };
#endif
#else
SQNET_F32_IN(0, X)
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, set = 0, binding = 2) writeonly buffer I { uint idx[]; };
#endif

#if !BACKWARD
// window returns the maximum of one window (its four values in row-major order, v[0] at flat index r0) and sets bi
// to its flat index: a strictly larger value or any NaN replaces the current maximum (PyTorch's rule).
float window(vec4 v, uint r0, uint w, out uint bi) {
    float best = v[0];
    bi = r0;
    const uint cand[4] = uint[4](r0, r0 + 1, r0 + w, r0 + w + 1);
    for (int k = 1; k < 4; k++) {
        if (v[k] > best || isnan(v[k])) {
            best = v[k];
            bi = cand[k];
        }
    }
    return best;
}
#else
// masked returns a window's gradient g, or 0 under flag 1 (ReLU fused) where x at its maximum bi (a flat index in
// the plane at base) is not positive. ReLU's mask matters at the window's maximum only (the other three elements
// get no gradient anyway): one read of x, not four (a texel read is a whole gather on lavapipe). The clamp keeps a
// corrupt idx in bounds.
float masked(float g, uint base, uint bi) {
    if ((pc.flags & 1u) != 0 && !(X(base + min(bi, pc.h * pc.w - 1u)) > 0.0)) {
        return 0.0;
    }
    return g;
}
#endif

#if VEC4
void main() {
    // Invocation j: windows 2j and 2j + 1 of the output (ow is even, so both lie in one output row).
    const uint j = sqnet_flat_id();
    const uint oh = pc.h / 2, ow = pc.w / 2, oplane = oh * ow;
    if (j >= pc.planes * oplane / 2) {
        return;
    }
    const uint i0 = 2 * j;
    const uint p = i0 / oplane;
    const uint r = i0 - p * oplane;
    const uint oy = r / ow;
    const uint ox = r - oy * ow;
    const uint base = p * pc.h * pc.w;
    const uint r0 = 2 * oy * pc.w + 2 * ox; // the block's top-left flat index in its plane (a multiple of 4)
#if BACKWARD
    const uvec2 bi = idx2[j];
    const vec2 dyj = dy2[j];
    const vec2 g = vec2(masked(dyj.x, base, bi.x), masked(dyj.y, base, bi.y));
    dx4[(base + r0) / 4] = vec4(bi.x == r0 ? g.x : 0.0, bi.x == r0 + 1 ? g.x : 0.0, bi.y == r0 + 2 ? g.y : 0.0,
                                bi.y == r0 + 3 ? g.y : 0.0);
    const uint r1 = r0 + pc.w;
    dx4[(base + r1) / 4] = vec4(bi.x == r1 ? g.x : 0.0, bi.x == r1 + 1 ? g.x : 0.0, bi.y == r1 + 2 ? g.y : 0.0,
                                bi.y == r1 + 3 ? g.y : 0.0);
#else
    const vec4 t0 = X4((base + r0) / 4), t1 = X4((base + r0 + pc.w) / 4);
    uint b0, b1;
    vec2 best = vec2(window(vec4(t0.xy, t1.xy), r0, pc.w, b0), window(vec4(t0.zw, t1.zw), r0 + 2, pc.w, b1));
    if ((pc.flags & 1u) != 0) {
        best = max(best, vec2(0.0));
    }
    y2[j] = best;
    idx2[j] = uvec2(b0, b1);
#endif
}
#else
void main() {
    const uint i = sqnet_flat_id();
    const uint oh = pc.h / 2, ow = pc.w / 2, oplane = oh * ow;
    if (i >= pc.planes * oplane) {
        return;
    }
    const uint p = i / oplane;
    const uint r = i - p * oplane;
    const uint oy = r / ow;
    const uint ox = r - oy * ow;
    const uint base = p * pc.h * pc.w;
    const uint r0 = 2 * oy * pc.w + 2 * ox;
    const uint cand[4] = uint[4](r0, r0 + 1, r0 + pc.w, r0 + pc.w + 1);
#if BACKWARD
    const uint bi = idx[i];
    const float g = masked(dy[i], base, bi);
#if defined(VEC2) && VEC2
    // Even planes: no floored row or column, and base + r0 and base + r0 + w are even.
    dx2[(base + r0) / 2] = vec2(bi == cand[0] ? g : 0.0, bi == cand[1] ? g : 0.0);
    dx2[(base + r0 + pc.w) / 2] = vec2(bi == cand[2] ? g : 0.0, bi == cand[3] ? g : 0.0);
#else
    for (uint k = 0; k < 4; k++) {
        dx[base + cand[k]] = bi == cand[k] ? g : 0.0;
    }
    // The floored last column and row of an odd-sized plane get no gradient.
    const bool lastc = ox == ow - 1 && (pc.w & 1u) != 0, lastr = oy == oh - 1 && (pc.h & 1u) != 0;
    if (lastc) {
        dx[base + r0 + 2] = 0.0;
        dx[base + r0 + pc.w + 2] = 0.0;
    }
    if (lastr) {
        dx[base + r0 + 2 * pc.w] = 0.0;
        dx[base + r0 + 2 * pc.w + 1] = 0.0;
        if (lastc) {
            dx[base + r0 + 2 * pc.w + 2] = 0.0;
        }
    }
#endif
#else
    uint bi;
    const vec4 v = vec4(X(base + cand[0]), X(base + cand[1]), X(base + cand[2]), X(base + cand[3]));
    float best = window(v, r0, pc.w, bi);
    if ((pc.flags & 1u) != 0) {
        best = max(best, 0.0);
    }
    y[i] = best;
    idx[i] = bi;
#endif
}
#endif
