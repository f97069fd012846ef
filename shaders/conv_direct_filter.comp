#version 450
// conv_direct_filter: the weight gradient of a network's first convolution (few input channels, stride 1, no
// dilation) on CPU drivers, with the layer's sizes as specialization constants,
//
//   dw[co,ci,kh,kw] = Σ_{b,oy,ox} dy[b,co,oy,ox] · x[b,ci,oy−ph+kh, ox−pw+kw],
//
// split over parts: workgroup z sums the rows [z·per, (z+1)·per) of the B·OH output rows into its own copy of dw at
// float z·NO·NI·KH·KW (the host then adds the parts in a fixed order, or binds dw itself when there is one part).
// Each invocation of a workgroup owns RC output channels, and all of them walk the same rows: for each P adjacent
// output pixels they read the KH × (P+KW−1) input window of every input channel once — the same texels for every
// invocation — and each invocation reads its channels' P output gradients, then adds RC·NI·KH·KW sums of P
// products. Why: the implicit-GEMM weight gradient (conv_filter_gemm) fetches every dy value once per invocation
// and a fresh x value for each of its columns; with a 25-long (madry conv1: 32 × 25 weights) reduction column set
// it kept 7 of 8 SIMD lanes busy at 19–22 GFLOP/s on lavapipe. Here a window value, read once per workgroup step,
// feeds up to min(KW, P) products for each of the workgroup's output channels, and a dy value KH·KW·NI.
//
// The row and chunk loops stay rolled and their body is unrolled with constant indices (see conv_direct.comp for
// why). Each sum adds its pixels in order (row, then column): the same inputs give the same bits. VEC4 (x and dy
// rows a multiple of 4 wide, P a multiple of 4) reads rows as aligned vec4 texels (PADX = −pw); otherwise floats.
// FLAGS bit 4 accumulates into the output (one part only).
// sqnet:variant conv_direct_filter -DVEC4=0
// sqnet:variant conv_direct_filter4 -DVEC4=1
#define TEX 1 // the sources are read as texels
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require
SQNET_LOCAL_SIZE

layout(constant_id = 3) const uint P = 4;   // adjacent output pixels per step
layout(constant_id = 4) const uint NO = 1;  // output channels, Cout
layout(constant_id = 5) const uint NI = 1;  // input channels, Cin
layout(constant_id = 6) const uint KH = 1;
layout(constant_id = 7) const uint KW = 1;
layout(constant_id = 8) const int PADX = 0; // VEC4: −pw
layout(constant_id = 9) const uint RC = 1;  // output channels per invocation

// Push constants (Go mirror: kernels.convPush; strides and dilations are 1 here).
layout(push_constant) uniform Push {
    uint B, Cin, H, W;
    uint Cout, KH, KW;
    uint OH, OW;
    uint sh, sw, ph, pw, dh, dw;
    uint flags;
} pc;

#if VEC4
SQNET_VEC4_TEX(0, SRC4) // x
SQNET_VEC4_TEX(1, DY4)
#else
SQNET_F32_IN(0, SRC)
SQNET_F32_IN(1, DY)
#endif
layout(std430, set = 0, binding = 2) buffer Out_ { float dst[]; };

const uint PW = P + KW - 1; // window width
const uint KK = KH * KW;

#include "conv_window.glsl"

void main() {
    SH = pc.H;
    SW = pc.W;
    const uint co0 = gl_LocalInvocationID.x * RC;
    uint dyc[RC]; // the (clamped) output channels whose gradients this invocation reads
    [[unroll]] for (uint c = 0; c < RC; c++) {
        dyc[c] = min(co0 + c, NO - 1);
    }
    float acc[RC][NI][KK];
    [[unroll]] for (uint c = 0; c < RC; c++) {
        [[unroll]] for (uint i = 0; i < NI; i++) {
            [[unroll]] for (uint k = 0; k < KK; k++) {
                acc[c][i][k] = 0.0;
            }
        }
    }
    const uint rows = pc.B * pc.OH, nz = gl_NumWorkGroups.x, z = gl_WorkGroupID.x;
    const uint per = (rows + nz - 1) / nz, r0 = min(z * per, rows), r1 = min(r0 + per, rows);
    const uint chunks = (pc.OW + P - 1) / P;
    [[dont_unroll]] for (uint row = r0; row < r1; row++) {
        b = row / pc.OH;
        oy = row % pc.OH;
        y0 = int(oy) - int(pc.ph);
        [[dont_unroll]] for (uint ch = 0; ch < chunks; ch++) {
            ox0 = ch * P;
            x0 = int(ox0) - int(pc.pw);
            [[unroll]] for (uint t = 0; t < PW; t++) {
                colok[t] = x0 + int(t) >= 0 && x0 + int(t) < int(SW);
            }
            // The RC channels' gradients at the P pixels, 0 past the row's end.
            float g[RC][P];
            [[unroll]] for (uint c = 0; c < RC; c++) {
                const uint base = ((b * NO + dyc[c]) * pc.OH + oy) * pc.OW;
#if VEC4
                [[unroll]] for (uint q = 0; q < P / 4; q++) {
                    const bool ok = ox0 + 4 * q < pc.OW; // the row is a multiple of 4 wide
                    const vec4 v = DY4((base + (ok ? ox0 + 4 * q : 0)) / 4);
                    [[unroll]] for (uint e = 0; e < 4; e++) {
                        g[c][4 * q + e] = ok ? v[e] : 0.0;
                    }
                }
#else
                [[unroll]] for (uint p = 0; p < P; p++) {
                    const bool ok = ox0 + p < pc.OW;
                    const float v = DY(base + (ok ? ox0 + p : 0));
                    g[c][p] = ok ? v : 0.0;
                }
#endif
            }
            [[unroll]] for (uint i = 0; i < NI; i++) {
                float win[KH][PW];
                loadWindow(i, win);
                [[unroll]] for (uint c = 0; c < RC; c++) {
                    [[unroll]] for (uint k = 0; k < KK; k++) {
                        const uint r = k / KW, t0 = k % KW;
                        float s = acc[c][i][k];
                        [[unroll]] for (uint p = 0; p < P; p++) {
                            s = fma(g[c][p], win[r][t0 + p], s);
                        }
                        acc[c][i][k] = s;
                    }
                }
            }
        }
    }
    const uint out0 = z * NO * NI * KK;
    const bool add = (pc.flags & 4u) != 0;
    [[unroll]] for (uint c = 0; c < RC; c++) {
        if (co0 + c < NO) {
            [[unroll]] for (uint i = 0; i < NI; i++) {
                [[unroll]] for (uint k = 0; k < KK; k++) {
                    const uint o = out0 + ((co0 + c) * NI + i) * KK + k;
                    dst[o] = add ? dst[o] + acc[c][i][k] : acc[c][i][k];
                }
            }
        }
    }
}
