#version 450
// conv_bwd_filter: weight gradient of a 2-D NCHW convolution,
//   dw[co,ci,kh,kw] = Σ_{b,oh,ow} dy[b,co,oh,ow] · x[b,ci,oh·sh−ph+kh·dh, ow·sw−pw+kw·dw]  (+ dw when accumulating)
// an implicit GEMM with a long reduction (k = (b,oh,ow), B·OH·OW terms) and few outputs (Cout × Cin·KH·KW). So
// that small layers still fill the device, one workgroup owns an RM × (4·CN) block of dw and its invocations split
// the reduction into contiguous, equal chunks; each invocation accumulates its chunk in registers, then lane 0
// adds the invocations' partial sums in lane order through shared memory. The chunking depends only on the shape
// and the workgroup size, so the same inputs give the same bits.
// sqnet:variant conv_bwd_filter
// sqnet:variant conv_bwd_filter_t -DTEX=1
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require // register-block loops unrolled: see gemm.comp
SQNET_LOCAL_SIZE

layout(constant_id = 3) const uint RM = 8; // output channels per workgroup
layout(constant_id = 4) const uint CN = 2; // groups of 4 (ci,kh,kw) columns per workgroup

// Push constants (Go mirror: kernels.convPush; bias and ReLU flags are ignored).
layout(push_constant) uniform Push {
    uint B, Cin, H, W;
    uint Cout, KH, KW;
    uint OH, OW;
    uint sh, sw, ph, pw, dh, dw;
    uint flags; // 4: accumulate
} pc;

#include "conv_filter_io.glsl"

shared vec4 part[gl_WorkGroupSize.x];

void main() {
    const uint HW = pc.H * pc.W, OP = pc.OH * pc.OW, KK = pc.KH * pc.KW;
    const uint ROWS = pc.Cout, COLS = pc.Cin * KK, K = pc.B * OP;
    const uint row0 = gl_WorkGroupID.y * RM, col0 = gl_WorkGroupID.x * (4 * CN);
    const uint lane = gl_LocalInvocationID.x, lanes = gl_WorkGroupSize.x;
    // No early return: every invocation must reach the barriers. The host sizes the grid so row0 and col0 are
    // in range; rows and columns past the end are clamped on load and skipped on store.
    uint dyo[RM];
    [[unroll]] for (uint r = 0; r < RM; r++) {
        dyo[r] = min(row0 + r, ROWS - 1) * OP;
    }
    uint xo[4 * CN];
    int hoff[4 * CN], woff[4 * CN];
    [[unroll]] for (uint i = 0; i < 4 * CN; i++) {
        const uint c = min(col0 + i, COLS - 1), ci = c / KK, kh = (c % KK) / pc.KW, kw = c % pc.KW;
        xo[i] = ci * HW;
        hoff[i] = int(kh * pc.dh) - int(pc.ph);
        woff[i] = int(kw * pc.dw) - int(pc.pw);
    }
    vec4 acc[RM][CN];
    [[unroll]] for (uint r = 0; r < RM; r++) {
        [[unroll]] for (uint j = 0; j < CN; j++) {
            acc[r][j] = vec4(0);
        }
    }
    const uint chunk = (K + lanes - 1) / lanes;
    const uint k0 = min(lane * chunk, K), k1 = min(k0 + chunk, K);
    uint b = k0 / OP, oh = (k0 % OP) / pc.OW, ow = k0 % pc.OW;
    for (uint k = k0; k < k1; k++) {
        const uint dyb = b * ROWS * OP + oh * pc.OW + ow, xb = b * pc.Cin * HW;
        const int iy = int(oh * pc.sh), ix = int(ow * pc.sw);
        vec4 bv[CN];
        [[unroll]] for (uint j = 0; j < CN; j++) {
            [[unroll]] for (uint q = 0; q < 4; q++) {
                const uint i = 4 * j + q;
                const int yy = iy + hoff[i], xx = ix + woff[i];
                const bool ok = yy >= 0 && yy < int(pc.H) && xx >= 0 && xx < int(pc.W);
                const float v = X(ok ? xb + xo[i] + uint(yy) * pc.W + uint(xx) : 0);
                bv[j][q] = ok ? v : 0.0;
            }
        }
        [[unroll]] for (uint r = 0; r < RM; r++) {
            const float a = DY(dyb + dyo[r]);
            [[unroll]] for (uint j = 0; j < CN; j++) {
                acc[r][j] = fma(vec4(a), bv[j], acc[r][j]);
            }
        }
        if (++ow == pc.OW) {
            ow = 0;
            if (++oh == pc.OH) {
                oh = 0;
                b++;
            }
        }
    }
    // Fixed-order reduction over the lanes, one accumulator vector at a time.
    [[unroll]] for (uint r = 0; r < RM; r++) {
        [[unroll]] for (uint j = 0; j < CN; j++) {
            part[lane] = acc[r][j];
            barrier();
            if (lane == 0) {
                vec4 s = part[0];
                for (uint l = 1; l < lanes; l++) {
                    s += part[l];
                }
                const uint row = row0 + r;
                [[unroll]] for (uint q = 0; q < 4; q++) {
                    const uint c = col0 + 4 * j + q;
                    if (row < ROWS && c < COLS) {
                        const uint o = row * COLS + c;
                        dwt[o] = (pc.flags & 4u) != 0 ? dwt[o] + s[q] : s[q];
                    }
                }
            }
            barrier();
        }
    }
}
