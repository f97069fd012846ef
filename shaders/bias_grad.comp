#version 450
// bias_grad: bias gradient of a channel-wise bias on NCHW data (or a dense layer's bias with inner = 1),
//   db[c] = Σ_{b,p} dy[b,c,p]  (+ db when accumulating),   b < batch, p < inner.
// One workgroup per channel; its invocations sum equal contiguous chunks of the batch·inner terms, then lane 0
// adds the partial sums in lane order through shared memory: a fixed order, so the same inputs give the same bits.
// sqnet:variant bias_grad -DCOLS=0 -DVEC4=0
// sqnet:variant bias_grad4 -DCOLS=0 -DVEC4=1
// sqnet:variant bias_grad4_t -DCOLS=0 -DVEC4=1 -DTEX=1
// sqnet:variant bias_grad_cols -DCOLS=1 -DVEC4=0
// COLS (inner = 1: a dense layer's bias, or the sum of a weight gradient's parts over groups of images) gives each
// invocation one channel and sums the batch in order: the channels are contiguous, so a subgroup's loads are
// contiguous, and no workgroup-wide barrier runs per channel (on lavapipe a barrier splits the shader into
// coroutines: summing 12 parts of a 32×144 weight gradient took 4608 such workgroups).
// VEC4 (inner % 4 == 0, dy 16-byte aligned) reads the terms four at a time and adds them in order, the chunks whole
// vec4s: on lavapipe a storage-buffer access walks the SIMD lanes one by one whatever its width (a convolution's
// bias gradient at batch 50, 16 × 784: 0.80 → 0.52 ms a call with its submit; 32 × 196: 0.51 → 0.37).
// TEX (with VEC4) reads them as vec4 texels instead (kernels.BiasGrad, where dy fits an R32G32B32A32 view): gallivm
// loads a texel for all lanes at once, where a storage-buffer load is a loop over the lanes with a bounds test each
// (0.42–0.53× of the time, BenchmarkBiasGradTexels). The same terms in the same order: the same bits.
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.biasGradPush).
layout(push_constant) uniform Push {
    uint batch, channels, inner;
    uint flags; // 4: accumulate
} pc;

#if VEC4 && defined(TEX) && TEX
SQNET_VEC4_TEX(0, DY4)
#elif VEC4
layout(std430, set = 0, binding = 0) readonly buffer DY_ { vec4 dy4[]; };
vec4 DY4(uint i) { return dy4[i]; }
#else
layout(std430, set = 0, binding = 0) readonly buffer DY_ { float dy[]; };
#endif
layout(std430, set = 0, binding = 1) buffer DB_ { float db[]; };

#if COLS
void main() {
    const uint c = sqnet_flat_id();
    if (c >= pc.channels) {
        return;
    }
    float s = 0.0;
    for (uint b = 0; b < pc.batch; b++) {
        s += dy[b * pc.channels + c];
    }
    db[c] = (pc.flags & 4u) != 0 ? db[c] + s : s;
}
#else
shared float part[gl_WorkGroupSize.x];

void main() {
    const uint c = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    const uint lane = gl_LocalInvocationID.x, lanes = gl_WorkGroupSize.x;
#if VEC4
    const uint inner = pc.inner / 4; // vec4s per (image, channel) row
#else
    const uint inner = pc.inner;
#endif
    const uint n = pc.batch * inner, chunk = (n + lanes - 1) / lanes;
    const uint k0 = min(lane * chunk, n), k1 = min(k0 + chunk, n);
    float s = 0.0;
    if (c < pc.channels) {
        uint b = k0 / inner, p = k0 % inner;
        for (uint k = k0; k < k1; k++) {
#if VEC4
            const vec4 v = DY4((b * pc.channels + c) * inner + p);
            s = (((s + v.x) + v.y) + v.z) + v.w;
#else
            s += dy[(b * pc.channels + c) * inner + p];
#endif
            if (++p == inner) {
                p = 0;
                b++;
            }
        }
    }
    part[lane] = s;
    barrier();
    if (lane == 0 && c < pc.channels) {
        float t = part[0];
        for (uint l = 1; l < lanes; l++) {
            t += part[l];
        }
        db[c] = (pc.flags & 4u) != 0 ? db[c] + t : t;
    }
}
#endif
