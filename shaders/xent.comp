#version 450
// xent: softmax cross-entropy over logits [B, K] with uint32 labels [B]; one invocation per example, looping over
// its K logits serially (K is small for classifiers, and a serial loop fixes the summation order).
// Forward:  loss[i] = log Σ_j exp(z_ij − m_i) − (z_iy − m_i), m_i = max_j z_ij (max-subtracted, so no overflow).
// Backward: dz_ij = (softmax(z_i)_j − [j = y_i]) · g_i, g_i = scale (variant xent_bwd) or scale · dloss[i]
//           (variant xent_bwd_up, per-example upstream gradients); scale = 1/B gives the mean loss's gradient.
// A label ≥ K cannot be checked on the host (it lives on the device): its loss and gradient row are NaN.
// sqnet:variant xent_fwd -DBACKWARD=0 -DUPSTREAM=0
// sqnet:variant xent_bwd -DBACKWARD=1 -DUPSTREAM=0
// sqnet:variant xent_bwd_up -DBACKWARD=1 -DUPSTREAM=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.xentPush).
layout(push_constant) uniform Push {
    uint b;      // examples
    uint k;      // classes
    float scale; // backward: gradient multiplier (forward ignores it)
} pc;

layout(std430, set = 0, binding = 0) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 1) readonly buffer L { uint labels[]; };
#if !BACKWARD
layout(std430, set = 0, binding = 2) writeonly buffer Loss { float loss[]; };
#elif UPSTREAM
layout(std430, set = 0, binding = 2) readonly buffer DLoss { float dloss[]; };
layout(std430, set = 0, binding = 3) writeonly buffer DZ { float dz[]; };
#else
layout(std430, set = 0, binding = 2) writeonly buffer DZ { float dz[]; };
#endif

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.b) {
        return;
    }
    uint base = i * pc.k;
    uint y = labels[i];
    float m = z[base];
    for (uint j = 1; j < pc.k; j++) {
        m = max(m, z[base + j]);
    }
    float s = 0.0;
    for (uint j = 0; j < pc.k; j++) {
        s += exp(z[base + j] - m);
    }
    const float nan = uintBitsToFloat(0x7fc00000u);
#if !BACKWARD
    loss[i] = y < pc.k ? log(s) - (z[base + y] - m) : nan;
#else
#if UPSTREAM
    float g = pc.scale * dloss[i];
#else
    float g = pc.scale;
#endif
    if (y >= pc.k) {
        g = nan;
    }
    for (uint j = 0; j < pc.k; j++) {
        float p = exp(z[base + j] - m) / s;
        dz[base + j] = (j == y ? p - 1.0 : p) * g;
    }
#endif
}
