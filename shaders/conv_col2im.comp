#version 450
// conv_col2im: the second pass of the two-pass input gradient of a convolution with few input channels (see
// kernels.Conv2DBackwardData): the first pass, one GEMM per image, wrote
//   cols[b, (ci,kh,kw), oh, ow] = Σ_co w[co,ci,kh,kw] · dy[b,co,oh,ow]   (image b's block at float b·stride),
// and this pass sums each input pixel's KH·KW contributions:
//   dx[b,ci,ih,iw] = Σ_{kh,kw} cols[b, (ci,kh,kw), oh, ow] over the (oh,ow) with ih = oh·sh−ph+kh·dh, iw = ow·sw−pw+kw·dw
// (+ dx when accumulating). One invocation per dx element, a fixed-order sum: the same inputs give the same bits.
// TEX reads cols through an R32_SFLOAT uniform texel buffer (gathered with vector instructions on lavapipe).
// sqnet:variant conv_col2im
// sqnet:variant conv_col2im_t -DTEX=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.colsPush; bias and ReLU flags are ignored).
layout(push_constant) uniform Push {
    uint B, Cin, H, W;
    uint Cout, KH, KW;
    uint OH, OW;
    uint sh, sw, ph, pw, dh, dw;
    uint flags;  // 4: accumulate
    uint stride; // floats between two images' cols (each image's block is padded to a bindable offset)
} pc;

SQNET_F32_IN(0, COLS)
layout(std430, set = 0, binding = 1) buffer DX_ { float dx[]; };

void main() {
    const uint i = sqnet_flat_id();
    const uint HW = pc.H * pc.W, OP = pc.OH * pc.OW, KK = pc.KH * pc.KW;
    if (i >= pc.B * pc.Cin * HW) {
        return;
    }
    const uint b = i / (pc.Cin * HW), r = i - b * pc.Cin * HW;
    const uint ci = r / HW, p = r - ci * HW;
    const int iy = int(p / pc.W), ix = int(p % pc.W);
    const uint base = b * pc.stride + ci * KK * OP; // cols[b, (ci,0,0), 0, 0]
    float s = 0.0;
    for (uint kh = 0; kh < pc.KH; kh++) {
        const int ty = iy + int(pc.ph) - int(kh * pc.dh);
        const int oy = ty / int(pc.sh);
        if (ty < 0 || oy * int(pc.sh) != ty || oy >= int(pc.OH)) {
            continue;
        }
        for (uint kw = 0; kw < pc.KW; kw++) {
            const int tx = ix + int(pc.pw) - int(kw * pc.dw);
            const int ox = tx / int(pc.sw);
            if (tx < 0 || ox * int(pc.sw) != tx || ox >= int(pc.OW)) {
                continue;
            }
            s += COLS(base + (kh * pc.KW + kw) * OP + uint(oy) * pc.OW + uint(ox));
        }
    }
    if ((pc.flags & 4u) != 0) {
        s = dx[i] + s;
    }
    dx[i] = s;
}
