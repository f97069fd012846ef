#version 450
// rowselect: element-wise updates of a batch [B, D] gated by a per-row condition, for the attacks' bookkeeping on
// the device (one invocation per element; row = i / D):
//   rowselect:     dst[i] = src[i] where flags[row·S + col] ≠ 0 (APGD keeps its best point and gradient, restores
//                  them at a checkpoint; Square commits an accepted proposal)
//   witness:       adv[i] = x[i] where pred[row] ≠ labels[row] — the latest point that fools the classifier whose
//                  predictions pred are — and, at the row's first element, fooled[row] = 1 there (else unchanged)
//   fab_backstep:  x[i] = x₀[i] + β·(x[i] − x₀[i]) where pred[row] ≠ labels[row] (FAB's step back towards x₀ from an
//                  adversarial point)
// sqnet:variant rowselect -DMODE=0
// sqnet:variant witness -DMODE=1
// sqnet:variant fab_backstep -DMODE=2
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.rowPush).
layout(push_constant) uniform Push {
    uint n;     // elements B·D
    uint d;     // elements per row
    uint s;     // rowselect: flag row stride
    uint col;   // rowselect: flag column
    float beta; // fab_backstep: β
} pc;

#if MODE == 0
layout(std430, set = 0, binding = 0) readonly buffer F { float flags[]; };
layout(std430, set = 0, binding = 1) readonly buffer Src { float src[]; };
layout(std430, set = 0, binding = 2) buffer Dst { float dst[]; };
#elif MODE == 1
layout(std430, set = 0, binding = 0) readonly buffer P { uint pred[]; };
layout(std430, set = 0, binding = 1) readonly buffer L { uint labels[]; };
layout(std430, set = 0, binding = 2) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 3) buffer Adv { float adv[]; };
layout(std430, set = 0, binding = 4) buffer Fooled { float fooled[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer P { uint pred[]; };
layout(std430, set = 0, binding = 1) readonly buffer L { uint labels[]; };
layout(std430, set = 0, binding = 2) readonly buffer X0 { float x0[]; };
layout(std430, set = 0, binding = 3) buffer X { float x[]; };
#endif

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
    uint row = i / pc.d;
#if MODE == 0
    if (flags[row * pc.s + pc.col] != 0.0) {
        dst[i] = src[i];
    }
#elif MODE == 1
    if (pred[row] != labels[row]) {
        adv[i] = x[i];
        if (i == row * pc.d) {
            fooled[row] = 1.0;
        }
    }
#else
    if (pred[row] != labels[row]) {
        float o = x0[i];
        precise float v = o + pc.beta * (x[i] - o);
        x[i] = v;
    }
#endif
}
