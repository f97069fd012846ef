#version 450
// reduce: deterministic row reductions. Row r covers x[r·chunk, min((r+1)·chunk, n)) and
// out[r] = (Σ f(x_j)) / div, with f(v) = v (reduce_sum) or |v| (reduce_l1). One workgroup per row; invocation t
// first accumulates x[start+t], x[start+t+P], ... serially (P = the workgroup size, a power of two), then the
// workgroup combines its P partials with a fixed binary tree in shared memory. The order of every addition is
// fixed by (n, chunk, P), so the same input gives the same bits on every run: no atomics. The host uses it for
// per-example sums and ℓ1 norms of [B, D] (chunk = D) and, in two passes (partials, then one row of partials),
// for the sum or mean of a whole vector.
// sqnet:variant reduce_sum -DABS=0
// sqnet:variant reduce_l1 -DABS=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.reducePush).
layout(push_constant) uniform Push {
    uint n;     // elements of x covered
    uint chunk; // row length (the last row may be shorter)
    uint rows;  // ceil(n / chunk): one workgroup each
    float div;  // divisor applied to each row's result: 1 for a sum, the count for a mean
} pc;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float outv[]; };

// One slot per invocation; the workgroup size is a power of two chosen by the host.
shared float red[gl_WorkGroupSize.x];

void main() {
    // Rows may be folded into a 2-D grid of workgroups; the whole workgroup shares one row, so this early return
    // is uniform and the barriers below stay in uniform control flow.
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) {
        return;
    }
    uint t = gl_LocalInvocationID.x;
    uint p = gl_WorkGroupSize.x;
    uint start = row * pc.chunk;
    uint end = min(start + pc.chunk, pc.n);
    float acc = 0.0;
    for (uint j = start + t; j < end; j += p) {
#if ABS
        acc += abs(x[j]);
#else
        acc += x[j];
#endif
    }
    red[t] = acc;
    barrier();
    for (uint s = p / 2; s > 0; s /= 2) {
        if (t < s) {
            red[t] += red[t + s];
        }
        barrier();
    }
    if (t == 0) {
        outv[row] = red[0] / pc.div;
    }
}
