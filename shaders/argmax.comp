#version 450
// argmax: per-row argmax of logits [B, K] → uint32 pred [B] (ties → the first index; a NaN counts as the largest
// value, the first NaN wins, as torch.argmax), and the number of correct predictions.
// argmax_row:   one invocation per row, a serial scan over its K values.
// argmax_count: one workgroup of P invocations (a power of two): invocation t handles rows t, t+P, ... (writing
//               their pred), counts those whose pred equals the label (a label ≥ K never does), and the workgroup
//               sums the P counts with a fixed tree in shared memory into count[0]. One dispatch, no atomics.
// sqnet:variant argmax_row -DCOUNT=0
// sqnet:variant argmax_count -DCOUNT=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.argmaxPush).
layout(push_constant) uniform Push {
    uint b; // rows
    uint k; // columns
} pc;

layout(std430, set = 0, binding = 0) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 1) writeonly buffer P { uint pred[]; };
#if COUNT
layout(std430, set = 0, binding = 2) readonly buffer L { uint labels[]; };
layout(std430, set = 0, binding = 3) writeonly buffer C { uint count[]; };
shared uint red[gl_WorkGroupSize.x];
#endif

uint rowArgmax(uint row) {
    uint base = row * pc.k;
    float best = z[base];
    uint jb = 0;
    for (uint j = 1; j < pc.k; j++) {
        float v = z[base + j];
        if (v > best || (isnan(v) && !isnan(best))) {
            best = v;
            jb = j;
        }
    }
    return jb;
}

void main() {
#if COUNT
    uint t = gl_LocalInvocationID.x;
    uint p = gl_WorkGroupSize.x;
    uint c = 0;
    for (uint i = t; i < pc.b; i += p) {
        uint j = rowArgmax(i);
        pred[i] = j;
        c += j == labels[i] ? 1 : 0;
    }
    red[t] = c;
    barrier();
    for (uint s = p / 2; s > 0; s /= 2) {
        if (t < s) {
            red[t] += red[t + s];
        }
        barrier();
    }
    if (t == 0) {
        count[0] = red[0];
    }
#else
    uint i = sqnet_flat_id();
    if (i < pc.b) {
        pred[i] = rowArgmax(i);
    }
#endif
}
