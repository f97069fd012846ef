#version 450
// bias_grad: bias gradient of a channel-wise bias on NCHW data (or a dense layer's bias with inner = 1),
//   db[c] = Σ_{b,p} dy[b,c,p]  (+ db when accumulating),   b < batch, p < inner.
// One workgroup per channel; its invocations sum equal contiguous chunks of the batch·inner terms, then lane 0
// adds the partial sums in lane order through shared memory: a fixed order, so the same inputs give the same bits.
// sqnet:variant bias_grad -DCOLS=0
// sqnet:variant bias_grad_cols -DCOLS=1
// COLS (inner = 1: a dense layer's bias, or the sum of a weight gradient's parts over groups of images) gives each
// invocation one channel and sums the batch in order: the channels are contiguous, so a subgroup's loads are one
// vector load, and no workgroup-wide barrier runs per channel (on lavapipe a barrier splits the shader into
// coroutines: summing 12 parts of a 32×144 weight gradient took 4608 such workgroups).
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.biasGradPush).
layout(push_constant) uniform Push {
    uint batch, channels, inner;
    uint flags; // 4: accumulate
} pc;

layout(std430, set = 0, binding = 0) readonly buffer DY_ { float dy[]; };
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
    const uint n = pc.batch * pc.inner, chunk = (n + lanes - 1) / lanes;
    const uint k0 = min(lane * chunk, n), k1 = min(k0 + chunk, n);
    float s = 0.0;
    if (c < pc.channels) {
        uint b = k0 / pc.inner, p = k0 % pc.inner;
        for (uint k = k0; k < k1; k++) {
            s += dy[(b * pc.channels + c) * pc.inner + p];
            if (++p == pc.inner) {
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
