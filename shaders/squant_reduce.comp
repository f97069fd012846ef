#version 450
// squant_reduce: second pass of the soft quantizer's threshold gradient: dthr[g] = scale · Σ_{b<B} part[g·B + b]
// for each of the C·K thresholds g, one workgroup each; every invocation sums a strided slice in order, then a
// fixed tree combines them, so the same input gives the same bits.
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.squantReducePush).
layout(push_constant) uniform Push {
    uint G;      // thresholds C·K
    uint B;      // partial sums per threshold
    float scale; // −α/K
} pc;

layout(std430, set = 0, binding = 0) readonly buffer P { float part[]; };
layout(std430, set = 0, binding = 1) writeonly buffer DT { float dthr[]; };

shared float red[gl_WorkGroupSize.x];

void main() {
    uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (g >= pc.G) {
        return; // the whole workgroup
    }
    uint wg = gl_WorkGroupSize.x;
    uint lid = gl_LocalInvocationID.x;
    float acc = 0.0;
    for (uint b = lid; b < pc.B; b += wg) {
        acc += part[g * pc.B + b];
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
        dthr[g] = red[0] * pc.scale;
    }
}
