#version 450
// cw: Carlini–Wagner margin loss (untargeted) over logits [B, K] with uint32 labels [B], one invocation per example:
//   j*_i    = argmax_{j ≠ y_i} z_ij (ties → the first index; a NaN counts as the largest, the first NaN wins)
//   loss[i] = min(z_ij* − z_iy, κ)   i.e. −max(z_iy − max_{j≠y} z_ij, −κ), the negated CW f6 objective, so an
//                                    attack ascends it; κ = +Inf disables the clamp
//   dz_ij   = g_i·([j = j*_i] − [j = y_i]) where the margin is ≤ κ, else 0 (the clamp's gradient is zero),
//   g_i = scale (variant cw_bwd) or scale · dloss[i] (variant cw_bwd_up)
// K must be ≥ 2 (checked on the host). A label ≥ K gives a NaN loss and a NaN gradient row.
// sqnet:variant cw_fwd -DBACKWARD=0 -DUPSTREAM=0
// sqnet:variant cw_bwd -DBACKWARD=1 -DUPSTREAM=0
// sqnet:variant cw_bwd_up -DBACKWARD=1 -DUPSTREAM=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.cwPush).
layout(push_constant) uniform Push {
    uint b;      // examples
    uint k;      // classes (≥ 2)
    float kappa; // clamp: loss = min(margin, kappa)
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
    const float nan = uintBitsToFloat(0x7fc00000u);
    // Serial scan in index order with a strict comparison keeps the first maximum; a NaN replaces a non-NaN best.
    uint jb = y == 0 ? 1 : 0;
    float best = z[base + jb];
    for (uint j = jb + 1; j < pc.k; j++) {
        float v = z[base + j];
        if (j != y && (v > best || (isnan(v) && !isnan(best)))) {
            best = v;
            jb = j;
        }
    }
#if !BACKWARD
    if (y >= pc.k) {
        loss[i] = nan;
        return;
    }
    float margin = best - z[base + y];
    loss[i] = margin > pc.kappa ? pc.kappa : margin;
#else
#if UPSTREAM
    float g = pc.scale * dloss[i];
#else
    float g = pc.scale;
#endif
    bool pass = true;
    if (y >= pc.k) {
        g = nan;
    } else {
        pass = best - z[base + y] <= pc.kappa;
    }
    for (uint j = 0; j < pc.k; j++) {
        float d = 0.0;
        if (y >= pc.k) {
            d = nan;
        } else if (pass && j == jb) {
            d = g;
        } else if (pass && j == y) {
            d = -g;
        }
        dz[base + j] = d;
    }
#endif
}
