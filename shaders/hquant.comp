#version 450
// hquant: the hard quantizer H(x) = 1/K · Σ_k [x > t_k], K = L − 1 thresholds per channel c of an NCHW input
// (shared thresholds: C = 1, HW = C·H·W); thresholds are thr[c·K + k]. The count times 1/K is one correctly rounded
// multiply, so the result is exact.
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.squantPush, of which hquant reads n, C, HW, K and invK).
layout(push_constant) uniform Push {
    uint n;          // elements N·C·HW
    uint C;          // channels with their own thresholds (1 when shared)
    uint HW;         // elements per (image, channel) plane
    uint K;          // thresholds per channel, L − 1
    float alpha;     // unused
    float invK;      // 1/K
    float alphaOverK; // unused
    uint chunks;     // unused
    float partScale; // unused
} pc;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer T { float thr[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
    uint c = (i / pc.HW) % pc.C;
    float xi = x[i];
    uint count = 0u;
    for (uint k = 0u; k < pc.K; k++) {
        count += xi > thr[c * pc.K + k] ? 1u : 0u;
    }
    y[i] = float(count) * pc.invK;
}
