#version 450
// adam: one Adam step, in place, PyTorch semantics (torch.optim.Adam, amsgrad off, L2 weight decay):
//   g' = g + wd·w;  m ← m + (1 − β1)·(g' − m)  (PyTorch's lerp);  v ← β2·v + ((1 − β2)·g')·g';
//   w ← w − stepSize · m / (√v / √bc2 + ε),  stepSize = lr / bc1, bc_k = 1 − β_k^t.
// The bias corrections depend only on the step t, so the host derives them in float64 and pushes them in fp32.
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
    float stepSize;  // lr / (1 − β1^t)
    float bc2Sqrt;   // √(1 − β2^t)
} pc;

layout(std430, set = 0, binding = 0) buffer W { float w[]; };
layout(std430, set = 0, binding = 1) readonly buffer G { float g[]; };
layout(std430, set = 0, binding = 2) buffer M { float m[]; };
layout(std430, set = 0, binding = 3) buffer V { float v[]; };

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
    precise float denom = sqrt(vi) / pc.bc2Sqrt + pc.eps;
    precise float nw = wi - pc.stepSize * (mi / denom);
    w[i] = nw;
}
