#version 450
// dlr: the losses of AutoAttack's gradient attacks over logits [B, K] with uint32 labels y [B] (and targets t [B]),
// one invocation per example (Croce & Hein 2020). With z sorted in decreasing order z_π1 ≥ z_π2 ≥ z_π3 ≥ z_π4
// (ties → the lower index first):
//   LOSS 0, untargeted DLR:  loss = (z_o − z_y) / (z_π1 − z_π3 + 1e-12),  z_o = max_{j≠y} z_j  (K ≥ 3)
//   LOSS 1, targeted DLR:    loss = (z_t − z_y) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)            (K ≥ 4)
//   LOSS 2, target margin:   loss = z_t − z_y   (FAB's f_t − f_y, whose gradient is the hyperplane's normal; K ≥ 2)
// An attack ascends each. Backward: dz = g_i·∂loss_i/∂z with the sort's indices held fixed (as autograd through
// torch.sort), g_i = scale (variants *_bwd) or scale·dloss[i] (*_bwd_up). A label or target ≥ K gives a NaN loss and
// a NaN gradient row; NaN logits propagate.
// sqnet:variant dlr_fwd -DLOSS=0 -DBACKWARD=0 -DUPSTREAM=0
// sqnet:variant dlr_bwd -DLOSS=0 -DBACKWARD=1 -DUPSTREAM=0
// sqnet:variant dlr_bwd_up -DLOSS=0 -DBACKWARD=1 -DUPSTREAM=1
// sqnet:variant dlr_t_fwd -DLOSS=1 -DBACKWARD=0 -DUPSTREAM=0
// sqnet:variant dlr_t_bwd -DLOSS=1 -DBACKWARD=1 -DUPSTREAM=0
// sqnet:variant dlr_t_bwd_up -DLOSS=1 -DBACKWARD=1 -DUPSTREAM=1
// sqnet:variant margin_t_fwd -DLOSS=2 -DBACKWARD=0 -DUPSTREAM=0
// sqnet:variant margin_t_bwd -DLOSS=2 -DBACKWARD=1 -DUPSTREAM=0
// sqnet:variant margin_t_bwd_up -DLOSS=2 -DBACKWARD=1 -DUPSTREAM=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.dlrPush).
layout(push_constant) uniform Push {
    uint b;      // examples
    uint k;      // classes
    float scale; // backward: gradient multiplier (forward ignores it)
} pc;

layout(std430, set = 0, binding = 0) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 1) readonly buffer L { uint labels[]; };
#if LOSS == 0
#define OUT0 2
#else
layout(std430, set = 0, binding = 2) readonly buffer T { uint targets[]; };
#define OUT0 3
#endif
#if !BACKWARD
layout(std430, set = 0, binding = OUT0) writeonly buffer Loss { float loss[]; };
#elif UPSTREAM
layout(std430, set = 0, binding = OUT0) readonly buffer DLoss { float dloss[]; };
layout(std430, set = 0, binding = OUT0 + 1) writeonly buffer DZ { float dz[]; };
#else
layout(std430, set = 0, binding = OUT0) writeonly buffer DZ { float dz[]; };
#endif

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.b) {
        return;
    }
    uint base = i * pc.k;
    uint y = labels[i];
#if LOSS == 0
    uint t = 0u;
    bool bad = y >= pc.k;
#else
    uint t = targets[i];
    bool bad = y >= pc.k || t >= pc.k;
#endif
    const float nan = uintBitsToFloat(0x7fc00000u);
#if LOSS != 2
    // The four largest logits by insertion, in index order with strict comparisons (a tie keeps the lower index
    // first, as a stable sort would).
    float best[4];
    uint idx[4];
    uint n = 0u;
    for (uint j = 0u; j < pc.k; j++) {
        float v = z[base + j];
        uint p = n < 4u ? n : 4u;
        if (p == 4u && !(v > best[3])) {
            continue;
        }
        if (p == 4u) {
            p = 3u;
        }
        while (p > 0u && v > best[p - 1u]) {
            if (p < 4u) {
                best[p] = best[p - 1u];
                idx[p] = idx[p - 1u];
            }
            p--;
        }
        best[p] = v;
        idx[p] = j;
        n = min(n + 1u, 4u);
    }
#endif
    float num, den;
    uint o;
#if LOSS == 0
    o = idx[0] == y ? idx[1] : idx[0];
    num = z[base + o] - (bad ? 0.0 : z[base + y]);
    precise float d0 = best[0] - best[2];
    den = d0 + 1e-12;
#elif LOSS == 1
    o = t;
    num = (bad ? 0.0 : z[base + t]) - (bad ? 0.0 : z[base + y]);
    precise float h = 0.5 * (best[2] + best[3]);
    precise float d1 = best[0] - h;
    den = d1 + 1e-12;
#else
    o = t;
    num = (bad ? 0.0 : z[base + t]) - (bad ? 0.0 : z[base + y]);
    den = 1.0;
#endif
#if !BACKWARD
    loss[i] = bad ? nan : num / den;
#else
#if UPSTREAM
    float g = pc.scale * dloss[i];
#else
    float g = pc.scale;
#endif
    float inv = 1.0 / den;
    float go = g * inv;               // ∂/∂z_o (or z_t), and −∂/∂z_y
    precise float q = (num * inv) * inv;
    float gs = g * q;                 // −∂/∂z_π1 (DLR), +∂/∂z_π3 (DLR) or 2·∂/∂z_π3,π4 (targeted)
    for (uint j = 0u; j < pc.k; j++) {
        float d = 0.0;
        if (j == o) {
            d += go;
        }
        if (j == y) {
            d -= go;
        }
#if LOSS == 0
        if (j == idx[0]) {
            d -= gs;
        }
        if (j == idx[2]) {
            d += gs;
        }
#elif LOSS == 1
        if (j == idx[0]) {
            d -= gs;
        }
        if (j == idx[2]) {
            d += 0.5 * gs;
        }
        if (j == idx[3]) {
            d += 0.5 * gs;
        }
#endif
        dz[base + j] = bad ? nan : d;
    }
#endif
}
