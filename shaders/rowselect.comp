#version 450
// rowselect: element-wise updates of a batch [B, D] gated by a per-row condition, for the attacks' bookkeeping on
// the device (one invocation per element; row = i / D):
//   rowselect:     dst[i] = src[i] where flags[row·S + col] ≠ 0 (APGD keeps its best point and gradient, restores
//                  them at a checkpoint; Square commits an accepted proposal)
//   witness:       adv[i] = x[i] where pred[row] ≠ labels[row] — the latest point that fools the classifier whose
//                  predictions pred are — and, at the row's first element, fooled[row] = 1 there (else unchanged)
//   fab_backstep:  x[i] = x₀[i] + β·(x[i] − x₀[i]) where pred[row] ≠ labels[row] (FAB's step back towards x₀ from an
//                  adversarial point)
// The VEC4 variants (D % 4 == 0, the row data 16-byte aligned; kernels.vec4Variant) take four elements of a row
// per invocation as one vec4 (lavapipe loads and stores a storage buffer one SIMD lane at a time, whatever the
// width); the same bits.
// sqnet:variant rowselect -DMODE=0 -DVEC4=0
// sqnet:variant witness -DMODE=1 -DVEC4=0
// sqnet:variant fab_backstep -DMODE=2 -DVEC4=0
// sqnet:variant rowselect4 -DMODE=0 -DVEC4=1
// sqnet:variant witness4 -DMODE=1 -DVEC4=1
// sqnet:variant fab_backstep4 -DMODE=2 -DVEC4=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.rowPush).
layout(push_constant) uniform Push {
    uint n;     // elements B·D (VEC4: their vec4s, B·D/4)
    uint d;     // elements per row (VEC4: vec4s per row)
    uint s;     // rowselect: flag row stride
    uint col;   // rowselect: flag column
    float beta; // fab_backstep: β
} pc;

#if VEC4
#define T vec4
#else
#define T float
#endif
#if MODE == 0
layout(std430, set = 0, binding = 0) readonly buffer F { float flags[]; };
layout(std430, set = 0, binding = 1) readonly buffer Src { T src[]; };
layout(std430, set = 0, binding = 2) buffer Dst { T dst[]; };
#elif MODE == 1
layout(std430, set = 0, binding = 0) readonly buffer P { uint pred[]; };
layout(std430, set = 0, binding = 1) readonly buffer L { uint labels[]; };
layout(std430, set = 0, binding = 2) readonly buffer X { T x[]; };
layout(std430, set = 0, binding = 3) buffer Adv { T adv[]; };
layout(std430, set = 0, binding = 4) buffer Fooled { float fooled[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer P { uint pred[]; };
layout(std430, set = 0, binding = 1) readonly buffer L { uint labels[]; };
layout(std430, set = 0, binding = 2) readonly buffer X0 { T x0[]; };
layout(std430, set = 0, binding = 3) buffer X { T x[]; };
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
        T o = x0[i];
        precise T v = o + pc.beta * (x[i] - o);
        x[i] = v;
    }
#endif
}
