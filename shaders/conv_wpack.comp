#version 450
// conv_wpack: repacks a convolution's weights w[Cout,Cin,KH,KW] so that conv.comp's packed variants fetch four
// taps of a weight row at once as a vec4 texel (one R32G32B32A32 fetch instead of four R32 ones — lavapipe gathers
// a vec4 texel for about the price of a float one):
//   FWD:  wp[co, ci, k] = w[co, ci, kh, kw]   (rows co, reduction (ci, kh, kw))
//   DATA: wp[ci, co, k] = w[co, ci, kh, kw]   (rows ci, reduction (co, kh, kw))
// with k = kh·KW + kw running to KK4 = KH·KW rounded up to 4, the extra taps 0. One invocation per wp element.
// sqnet:variant conv_wpack
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.convPush; flags bit 8 selects the DATA layout).
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
    const uint KK = pc.KH * pc.KW, KK4 = (KK + 3u) & ~3u;
    if (i >= pc.Cout * pc.Cin * KK4) {
        return;
    }
    const uint k = i % KK4, rc = i / KK4;
    uint co, ci;
    if ((pc.flags & 8u) != 0) {
        ci = rc / pc.Cout;
        co = rc % pc.Cout;
    } else {
        co = rc / pc.Cin;
        ci = rc % pc.Cin;
    }
    wp[i] = k < KK ? w[(co * pc.Cin + ci) * KK + k] : 0.0;
}
