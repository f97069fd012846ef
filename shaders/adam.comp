#version 450
// adam: one Adam step, in place, PyTorch semantics (torch.optim.Adam, amsgrad off, L2 weight decay):
//   g' = g + wd·w;  m ← m + (1 − β1)·(g' − m)  (PyTorch's lerp);  v ← β2·v + ((1 − β2)·g')·g';
//   w ← w − stepSize · m / (√v / √bc2 + ε),  stepSize = lr / bc1, bc_k = 1 − β_k^t.
// The bias corrections depend only on the step t, so the host derives them in float64 and pushes them in fp32
// (adam); adam_dyn reads them from a buffer the host rewrites before each submit instead, so a training step
// recorded once can be replayed with t advancing.
// sqnet:variant adam -DDYNAMIC=0
// sqnet:variant adam_dyn -DDYNAMIC=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.adamPush).
layout(push_constant) uniform Push {
    uint n;          // elements
    float oneMinusB1; // 1 − β1
    float beta2;     // β2
    float oneMinusB2; // 1 − β2
    float eps;       // ε
    float wd;        // weight decay
    float stepSize;  // lr / (1 − β1^t) (adam only)
    float bc2Sqrt;   // √(1 − β2^t) (adam only)
} pc;

layout(std430, set = 0, binding = 0) buffer W { float w[]; };
layout(std430, set = 0, binding = 1) readonly buffer G { float g[]; };
layout(std430, set = 0, binding = 2) buffer M { float m[]; };
layout(std430, set = 0, binding = 3) buffer V { float v[]; };
#if DYNAMIC
// Go mirror: kernels.AdamCorrections.
layout(std430, set = 0, binding = 4) readonly buffer Corr { float stepSize; float bc2Sqrt; } corr;
#define STEP_SIZE corr.stepSize
#define BC2_SQRT corr.bc2Sqrt
#else
#define STEP_SIZE pc.stepSize
#define BC2_SQRT pc.bc2Sqrt
#endif

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
    float wi = w[i];
    precise float gp = g[i] + pc.wd * wi;
    float mo = m[i];
    precise float mi = mo + pc.oneMinusB1 * (gp - mo);
    precise float vi = pc.beta2 * v[i] + (pc.oneMinusB2 * gp) * gp;
    m[i] = mi;
    v[i] = vi;
    precise float denom = sqrt(vi) / BC2_SQRT + pc.eps;
    precise float nw = wi - STEP_SIZE * (mi / denom);
    w[i] = nw;
}
