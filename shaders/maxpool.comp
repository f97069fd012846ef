#version 450
// maxpool: 2×2 max pooling with stride 2 over NCHW planes. Odd H or W are floored (the last row or column is not
// pooled), as PyTorch's default. Forward:
//   y[p, oy, ox] = max of x[p, 2oy..2oy+1, 2ox..2ox+1]            (then max(·, 0) with flag 1: ReLU fused)
// Ties go to the first max in row-major window order; a NaN wins (the last NaN if several), as in PyTorch.
// ReLU then pooling equals pooling then ReLU (max commutes with max(·, 0)), so flag 1 computes pool(relu(x)) in one
// pass, and its backward below routes the gradient to the window's maximum only where that maximum was positive.
// Backward, one invocation per window (or two), which finds the window's maximum in x again by the same rule and
// writes its four dx elements (and, on the last window of a row or column of an odd-sized plane, the floored ones),
// so every dx element is written exactly once without atomics (stride-2 windows do not overlap):
//   dx[p, h, w] = dy[p, h/2, w/2] if (h, w) is its window's maximum (and, flag 1, that maximum is > 0), else 0
// The forward stores no argmax indices for the backward (PyTorch's return_indices): on lavapipe every storage-buffer
// store or load is a loop over the SIMD lanes, one lane at a time, whatever its width, while a texel fetch is one
// gather. Storing an index per output and loading it back cost two such loops per window; reading x's window again
// costs gathers (see kernels.MaxPool2x2 for the measured difference).
// OUT4 (forward, output count a multiple of 4): four consecutive outputs an invocation, stored as one vec4.
// VEC2 (backward, planes of even height and width): each window's two dx rows as two vec2 stores.
// VEC4 (planes a multiple of 4 wide, read through an R32G32B32A32 texel buffer): a 2×4 input block — two
// horizontally adjacent windows — read as two vec4 texels; backward (even height too) writes it as two vec4 rows.
// Every variant puts the same values in the same places: the results are the same bits.
// sqnet:variant maxpool_fwd -DBACKWARD=0
// sqnet:variant maxpool_fwd_t -DBACKWARD=0 -DTEX=1
// sqnet:variant maxpool_fwd4 -DBACKWARD=0 -DOUT4=1
// sqnet:variant maxpool_fwd4_t -DBACKWARD=0 -DOUT4=1 -DTEX=1
// sqnet:variant maxpool_fwd4v_t -DBACKWARD=0 -DOUT4=1 -DVEC4=1 -DTEX=1
// sqnet:variant maxpool_bwd -DBACKWARD=1
// sqnet:variant maxpool_bwd_t -DBACKWARD=1 -DTEX=1
// sqnet:variant maxpool_bwd2 -DBACKWARD=1 -DVEC2=1
// sqnet:variant maxpool_bwd2_t -DBACKWARD=1 -DVEC2=1 -DTEX=1
// sqnet:variant maxpool_bwd4v_t -DBACKWARD=1 -DVEC4=1 -DTEX=1
// sqnet:variant maxpool_unpool4_t -DBACKWARD=1 -DUNPOOL=1 -DTEX=1
// sqnet:variant maxpool_unpool_flat_t -DBACKWARD=1 -DUNPOOL=1 -DVEC2=1 -DFLAT=1 -DTEX=1
//
// UNPOOL: the backward of a ReLU + pooling that ran fused into the convolution before it (conv.comp's and
// conv_direct.comp's POOL), which kept no input x but a float of codes per four windows (8^k·(argmax position + 4 if
// the maximum was > 0) for its windows k = 0..3), and writes the windows' dx rows: the same values, in the same
// places, as the backward reading x. conv_direct's codes (planes of even height and a width a multiple of 4) are
// four windows of a pooled row; an invocation takes a pooled row's code floats in turn and writes its rows as vec4s,
// two windows a vec4. FLAT (an invocation a code float): conv.comp's (even height and width), one float per channel
// and group of four windows taken in (image, pooled row, pooled column) order — a group may straddle rows and images
// — at [channel][group] (kernels.Lib.PoolCodesLen); each window's rows as vec2s.
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require
#if !defined(OUT4)
#define OUT4 0
#endif
#if !defined(VEC2)
#define VEC2 0
#endif
#if !defined(VEC4)
#define VEC4 0
#endif
#if !defined(UNPOOL)
#define UNPOOL 0
#endif
#if !defined(FLAT)
#define FLAT 0
#endif
SQNET_LOCAL_SIZE

#if FLAT
// Push constants (Go mirror: kernels.unpoolFlatPush): the convolution output's shape.
layout(push_constant) uniform Push {
    uint b, c, h, w;
} pc;
#else
// Push constants (Go mirror: kernels.maxPoolPush).
layout(push_constant) uniform Push {
    uint planes; // B·C
    uint h;      // input height (≥ 2)
    uint w;      // input width (≥ 2)
    uint flags;  // 1: ReLU fused (forward: ReLU after the max; backward: no gradient where the max is ≤ 0)
} pc;
#endif

// TEX reads x (and dy) through texel buffers (see SQNET_F32_IN).
#if UNPOOL
SQNET_F32_IN(0, CODES)
#elif VEC4
SQNET_VEC4_TEX(0, X4)
#else
SQNET_F32_IN(0, X)
#endif
#if BACKWARD
SQNET_F32_IN(1, DY)
#if VEC4 || (UNPOOL && !VEC2)
layout(std430, set = 0, binding = 2) writeonly buffer DX { vec4 dx4[]; };
#elif VEC2
layout(std430, set = 0, binding = 2) writeonly buffer DX { vec2 dx2[]; };
#else
layout(std430, set = 0, binding = 2) writeonly buffer DX { float dx[]; };
#endif
#elif OUT4
layout(std430, set = 0, binding = 1) writeonly buffer Y { vec4 y4[]; };
#else
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
#endif

// window returns the maximum of one window (its four values in row-major order, v[0] at flat index r0) and sets bi
// to its flat index: a strictly larger value or any NaN replaces the current maximum (PyTorch's rule).
float window(vec4 v, uint r0, out uint bi) {
    float best = v[0];
    bi = r0;
    const uint cand[4] = uint[4](r0, r0 + 1, r0 + pc.w, r0 + pc.w + 1);
    [[unroll]] for (int k = 1; k < 4; k++) {
        if (v[k] > best || isnan(v[k])) {
            best = v[k];
            bi = cand[k];
        }
    }
    return best;
}

#if UNPOOL
#elif VEC4
// pool2 returns the maxima of the two windows of the 2×4 block whose top-left element is r0 (a multiple of 4) in
// the plane at base, and sets bi to their flat indices.
vec2 pool2(uint base, uint r0, out uvec2 bi) {
    const vec4 t0 = X4((base + r0) / 4), t1 = X4((base + r0 + pc.w) / 4);
    return vec2(window(vec4(t0.xy, t1.xy), r0, bi.x), window(vec4(t0.zw, t1.zw), r0 + 2, bi.y));
}
#else
// pool1 returns the maximum of the window whose top-left element is r0 in the plane at base, and sets bi.
float pool1(uint base, uint r0, out uint bi) {
    return window(vec4(X(base + r0), X(base + r0 + 1), X(base + r0 + pc.w), X(base + r0 + pc.w + 1)), r0, bi);
}
#endif

#if UNPOOL && FLAT
void main() {
    // Invocation j: code float j, channel co's windows 4g .. 4g + 3 (flat over image, pooled row and column).
    const uint j = sqnet_flat_id();
    const uint oh = pc.h / 2, ow = pc.w / 2, op = oh * ow, nw = pc.b * op, groups = (nw + 3) / 4;
    if (j >= pc.c * groups) {
        return;
    }
    const uint co = j / groups, w0 = 4 * (j - co * groups);
    const uint code = uint(CODES(j));
    // The first window's place is divided out once, the others' stepped to: integer division is scalar code on a
    // SIMD CPU driver (lavapipe: eight divisions a SIMD group for each one written here).
    uint b = w0 / op, oy = (w0 - b * op) / ow, ox = w0 - b * op - oy * ow;
    [[unroll]] for (uint q = 0; q < 4; q++) {
        if (w0 + q < nw) {
            const uint k = (code >> (3 * q)) & 7u, a = k & 3u;
            const float g = (k & 4u) != 0 ? DY((b * pc.c + co) * op + oy * ow + ox) : 0.0;
            const uint dxb = (b * pc.c + co) * pc.h * pc.w + 2 * oy * pc.w + 2 * ox; // even
            [[unroll]] for (uint rr = 0; rr < 2; rr++) {
                dx2[(dxb + rr * pc.w) / 2] = vec2(a == 2 * rr ? g : 0.0, a == 2 * rr + 1 ? g : 0.0);
            }
        }
        if (++ox == ow) { // the next window: the next column, else the next row's first, else the next image's
            ox = 0;
            if (++oy == oh) {
                oy = 0;
                b++;
            }
        }
    }
}
#elif UNPOOL
void main() {
    // Invocation `row`: pooled row `row` (plane · oh + pooled row) and its cpr code floats in turn, each the windows
    // c0 .. c0 + 3 (fewer at the row's end; the pooled width is even, so windows come in pairs). A row an invocation
    // and the plane never divided out (the row's unpooled rows start at 2·row·w, h being 2·oh): no integer division,
    // which is scalar code on a SIMD CPU driver (it was two a code float).
    const uint row = sqnet_flat_id();
    const uint oh = pc.h / 2, ow = pc.w / 2, cpr = (ow + 3) / 4;
    if (row >= pc.planes * oh) {
        return;
    }
    for (uint cq = 0; cq < cpr; cq++) {
        const uint c0 = 4 * cq;
        const uint code = uint(CODES(row * cpr + cq));
        const uint dxb = 2 * row * pc.w + 2 * c0; // a multiple of 4
        [[unroll]] for (uint q = 0; q < 2; q++) {
            if (c0 + 2 * q < ow) {
                const uint k0 = (code >> (6 * q)) & 7u, k1 = (code >> (6 * q + 3)) & 7u;
                const uint i0 = row * ow + c0 + 2 * q;
                const float g0 = (k0 & 4u) != 0 ? DY(i0) : 0.0, g1 = (k1 & 4u) != 0 ? DY(i0 + 1) : 0.0;
                const uint a0 = k0 & 3u, a1 = k1 & 3u;
                [[unroll]] for (uint r = 0; r < 2; r++) {
                    dx4[(dxb + r * pc.w) / 4 + q] = vec4(a0 == 2 * r ? g0 : 0.0, a0 == 2 * r + 1 ? g0 : 0.0,
                                                         a1 == 2 * r ? g1 : 0.0, a1 == 2 * r + 1 ? g1 : 0.0);
                }
            }
        }
    }
}
#elif !BACKWARD && OUT4
void main() {
    // Invocation j: outputs 4j .. 4j + 3 (the host checks that the output count is a multiple of 4).
    const uint j = sqnet_flat_id();
    const uint oh = pc.h / 2, ow = pc.w / 2, oplane = oh * ow;
    if (j >= pc.planes * oplane / 4) {
        return;
    }
    uint p = 4 * j / oplane;
    const uint r = 4 * j - p * oplane;
    uint oy = r / ow;
    uint ox = r - oy * ow;
    vec4 best;
#if VEC4
    // ow is even (w is a multiple of 4) and 4j is, so each pair of outputs is one 2×4 block of one row.
    [[unroll]] for (uint k = 0; k < 4; k += 2) {
        uvec2 bi;
        const vec2 m = pool2(p * pc.h * pc.w, 2 * oy * pc.w + 2 * ox, bi);
        best[k] = m.x;
        best[k + 1] = m.y;
        ox += 2;
#else
    [[unroll]] for (uint k = 0; k < 4; k++) {
        uint bi;
        best[k] = pool1(p * pc.h * pc.w, 2 * oy * pc.w + 2 * ox, bi);
        ox++;
#endif
        // The next output: the next column, else the next row's first, else the next plane's.
        if (ox == ow) {
            ox = 0;
            oy++;
            if (oy == oh) {
                oy = 0;
                p++;
            }
        }
    }
    if ((pc.flags & 1u) != 0) {
        best = max(best, vec4(0.0));
    }
    y4[j] = best;
}
#elif VEC4 // backward
void main() {
    // Invocation j: windows 2j and 2j + 1 (ow is even, so both lie in one output row).
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
    uvec2 bi;
    const vec2 m = pool2(base, r0, bi);
    vec2 g = vec2(DY(i0), DY(i0 + 1));
    if ((pc.flags & 1u) != 0) {
        g = vec2(m.x > 0.0 ? g.x : 0.0, m.y > 0.0 ? g.y : 0.0);
    }
    dx4[(base + r0) / 4] = vec4(bi.x == r0 ? g.x : 0.0, bi.x == r0 + 1 ? g.x : 0.0, bi.y == r0 + 2 ? g.y : 0.0,
                                bi.y == r0 + 3 ? g.y : 0.0);
    const uint r1 = r0 + pc.w;
    dx4[(base + r1) / 4] = vec4(bi.x == r1 ? g.x : 0.0, bi.x == r1 + 1 ? g.x : 0.0, bi.y == r1 + 2 ? g.y : 0.0,
                                bi.y == r1 + 3 ? g.y : 0.0);
}
#else // one window an invocation: the forward's plain path, every backward path but VEC4
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
    uint bi;
    float m = pool1(base, r0, bi);
#if BACKWARD
    // (A NaN maximum fails m > 0, as ReLU's gradient at x = NaN is 0.)
    const float g = (pc.flags & 1u) != 0 && !(m > 0.0) ? 0.0 : DY(i);
    const uint cand[4] = uint[4](r0, r0 + 1, r0 + pc.w, r0 + pc.w + 1);
#if VEC2
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
    if ((pc.flags & 1u) != 0) {
        m = max(m, 0.0);
    }
    y[i] = m;
#endif
}
#endif
