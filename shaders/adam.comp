#version 450
// adam: one Adam step, in place, PyTorch semantics (torch.optim.Adam, amsgrad off, L2 weight decay):
//   g' = g + wd·w;  m ← m + (1 − β1)·(g' − m)  (PyTorch's lerp);  v ← β2·v + ((1 − β2)·g')·g';
//   w ← w − stepSize · m / (√v / √bc2 + ε),  stepSize = lr / bc1, bc_k = 1 − β_k^t.
// The bias corrections depend only on the step t, so the host derives them in float64 and pushes them in fp32
// (adam); adam_dyn reads them from a buffer the host rewrites before each submit instead, so a training step
// recorded once can be replayed with t advancing.
// sqnet:variant adam -DDYNAMIC=0 -DVEC4=0
// sqnet:variant adam_dyn -DDYNAMIC=1 -DVEC4=0
// sqnet:variant adam4 -DDYNAMIC=0 -DVEC4=1
// sqnet:variant adam_dyn4 -DDYNAMIC=1 -DVEC4=1
// sqnet:variant adam4_t -DDYNAMIC=0 -DVEC4=1 -DTEX=1
// sqnet:variant adam_dyn4_t -DDYNAMIC=1 -DVEC4=1 -DTEX=1
// The VEC4 variants (n % 4 == 0, every range 16-byte aligned; kernels.vec4Variant) update four elements per
// invocation through vec4 views of the same buffers, with the same operations per element, so the same bits: on
// lavapipe a storage-buffer access costs about the same per invocation whatever its width (it walks the SIMD lanes
// one by one), and an Adam step reads four arrays and writes three.
// TEX (with VEC4; kernels.AdamStep where every range fits an R32G32B32A32 view) reads all four as vec4 texels
// instead — w, m and v through texel views of the buffers it then writes (the last bindings), each element read by
// its own invocation before that invocation writes it, the value written computed from the value read. gallivm
// fetches a texel for all SIMD lanes at once where a storage-buffer load walks the lanes with a bounds test each:
// madry's fc1 step (3.2 M weights) 0.68× of the storage-buffer reads' time on lavapipe (BenchmarkAdamTexels). The
// same operations: the same bits.
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

#if VEC4
#define ELEM vec4
#else
#define ELEM float
#endif
layout(std430, set = 0, binding = 0) buffer W { ELEM w[]; };
layout(std430, set = 0, binding = 2) buffer M { ELEM m[]; };
layout(std430, set = 0, binding = 3) buffer V { ELEM v[]; };
#if defined(TEX) && TEX
SQNET_VEC4_TEX(1, G4)
#if DYNAMIC
#define TEXB 5 // the texel views of w, m and v follow the corrections
#else
#define TEXB 4
#endif
SQNET_VEC4_TEX(TEXB, W4)
SQNET_VEC4_TEX(TEXB + 1, M4)
SQNET_VEC4_TEX(TEXB + 2, V4)
#define READ_W(i) W4(i)
#define READ_G(i) G4(i)
#define READ_M(i) M4(i)
#define READ_V(i) V4(i)
#else
layout(std430, set = 0, binding = 1) readonly buffer G { ELEM g[]; };
#define READ_W(i) w[i]
#define READ_G(i) g[i]
#define READ_M(i) m[i]
#define READ_V(i) v[i]
#endif
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
    if (i >= (VEC4 != 0 ? pc.n / 4u : pc.n)) {
        return;
    }
    ELEM wi = READ_W(i);
    precise ELEM gp = READ_G(i) + pc.wd * wi;
    ELEM mo = READ_M(i);
    precise ELEM mi = mo + pc.oneMinusB1 * (gp - mo);
    precise ELEM vi = pc.beta2 * READ_V(i) + (pc.oneMinusB2 * gp) * gp;
    m[i] = mi;
    v[i] = vi;
    precise ELEM denom = sqrt(vi) / BC2_SQRT + pc.eps;
    precise ELEM nw = wi - STEP_SIZE * (mi / denom);
    w[i] = nw;
}
