#version 450
// maxpool: 2×2 max pooling with stride 2 over NCHW planes. Odd H or W are floored (the last row or column is not
// pooled), as PyTorch's default. Forward, one invocation per output element:
//   y[p, oy, ox]   = max of x[p, 2oy..2oy+1, 2ox..2ox+1]
//   idx[p, oy, ox] = h·W + w of that max: its flat index inside the input plane (PyTorch's return_indices)
// Ties go to the first max in row-major window order; a NaN wins (the last NaN if several), as in PyTorch.
// Backward, one invocation per input element, so every dx element is written exactly once and no atomics are
// needed (stride-2 windows do not overlap):
//   dx[p, h, w] = dy[p, h/2, w/2] if that window exists and its idx is h·W + w, else 0
// sqnet:variant maxpool_fwd -DBACKWARD=0
// sqnet:variant maxpool_bwd -DBACKWARD=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.maxPoolPush).
layout(push_constant) uniform Push {
    uint planes; // B·C
    uint h;      // input height (≥ 2)
    uint w;      // input width (≥ 2)
} pc;

#if BACKWARD
layout(std430, set = 0, binding = 0) readonly buffer I { uint idx[]; };
layout(std430, set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, set = 0, binding = 2) writeonly buffer DX { float dx[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, set = 0, binding = 2) writeonly buffer I { uint idx[]; };
#endif

void main() {
    uint i = sqnet_flat_id();
    uint oh = pc.h / 2;
    uint ow = pc.w / 2;
#if BACKWARD
    uint plane = pc.h * pc.w;
    if (i >= pc.planes * plane) {
        return;
    }
    uint p = i / plane;
    uint r = i - p * plane;
    uint iy = r / pc.w;
    uint ix = r - iy * pc.w;
    uint oy = iy / 2;
    uint ox = ix / 2;
    float g = 0.0;
    if (oy < oh && ox < ow) {
        uint o = (p * oh + oy) * ow + ox;
        if (idx[o] == r) {
            g = dy[o];
        }
    }
    dx[i] = g;
#else
    uint oplane = oh * ow;
    if (i >= pc.planes * oplane) {
        return;
    }
    uint p = i / oplane;
    uint r = i - p * oplane;
    uint oy = r / ow;
    uint ox = r - oy * ow;
    uint base = p * pc.h * pc.w;
    uint r0 = 2 * oy * pc.w + 2 * ox;
    uint cand[4] = uint[4](r0, r0 + 1, r0 + pc.w, r0 + pc.w + 1);
    float best = x[base + r0];
    uint bi = r0;
    for (int k = 1; k < 4; k++) {
        float v = x[base + cand[k]];
        if (v > best || isnan(v)) {
            best = v;
            bi = cand[k];
        }
    }
    y[i] = best;
    idx[i] = bi;
#endif
}
