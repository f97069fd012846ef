#version 450
// conv_wpack: repacks a convolution's weights w[Cout,Cin,KH,KW] so that conv.comp's packed variants fetch four
// taps of a weight row at once as a vec4 texel (one R32G32B32A32 fetch instead of four R32 ones — lavapipe gathers
// a vec4 texel for about the price of a float one):
//   FWD:  wp[co, ci, k] = w[co, ci, kh, kw]   (rows co, reduction (ci, kh, kw))
//   DATA: wp[ci, co, k] = w[co, ci, kh, kw]   (rows ci, reduction (co, kh, kw))
// with k = kh·KW + kw running to KK4 = KH·KW rounded up to 4, the extra taps 0 (conv_direct's layout). With flags
// bit 16 (FLAT, conv.comp's layout) a row's whole reduction (c, kh, kw) runs unbroken and only its end is rounded
// up to 4: wp[row, c·KH·KW + k], so that a 3×3 kernel gathers no zero taps (a quarter of the fetches and
// multiply-adds of the per-channel rounding, a ninth on 5×5). One invocation per wp element.
// sqnet:variant conv_wpack
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.convPush; flags bit 8 selects the DATA layout, bit 16 FLAT).
layout(push_constant) uniform Push {
    uint B, Cin, H, W;
    uint Cout, KH, KW;
    uint OH, OW;
    uint sh, sw, ph, pw, dh, dw;
    uint flags;
} pc;

layout(std430, set = 0, binding = 0) readonly buffer W_ { float w[]; };
layout(std430, set = 0, binding = 1) writeonly buffer WP_ { float wp[]; };

void main() {
    const uint i = sqnet_flat_id();
    const bool data = (pc.flags & 8u) != 0;
    const uint KK = pc.KH * pc.KW, per = data ? pc.Cout : pc.Cin; // per: the channels of a row's reduction
    // A packed row runs over chans channels' taps, rounded up to 4 at its end: all per of them (FLAT) or one (the
    // per-channel layout, whose rows are the (row, c) pairs).
    const uint chans = (pc.flags & 16u) != 0 ? per : 1u, KR = chans * KK, KR4 = (KR + 3u) & ~3u;
    if (i >= pc.Cout * pc.Cin / chans * KR4) {
        return;
    }
    const uint kr = i % KR4;
    if (kr >= KR) {
        wp[i] = 0.0;
        return;
    }
    const uint rc = i / KR4 * chans + kr / KK, k = kr % KK; // (row, c) and the tap of wp[i]
    uint co, ci;
    if (data) {
        ci = rc / per;
        co = rc % per;
    } else {
        co = rc / per;
        ci = rc % per;
    }
    wp[i] = w[(co * pc.Cin + ci) * KK + k];
}
