#version 450
// conv_filter_gemm: weight gradient of a 2-D NCHW convolution for layers with many weights,
//   dw[co,ci,kh,kw] = Σ_{b,oh,ow} dy[b,co,oh,ow] · x[b,ci,oh·sh−ph+kh·dh, ow·sw−pw+kw·dw]  (+ dw when accumulating)
// as an implicit GEMM with gemm.comp's register blocking: each invocation owns an RM × (4·CN) block of dw, the RM
// output channels shared by the workgroup (uniform dy loads), the 4·CN (ci,kh,kw) columns its own (gathered x
// loads, zero outside the padded image), and walks the whole b, oh, ow reduction in order: the same inputs give
// the same bits. Layers with too few weights to fill the device use conv_bwd_filter.comp instead, or on CPU drivers
// this shader split over parts: groups of images (z workgroups), or quads of pixels (LANEZ below).
// sqnet:variant conv_filter_gemm
// sqnet:variant conv_filter_gemm_t -DTEX=1
// sqnet:variant conv_filter_gemm_t4 -DTEX=1 -DDY4=1
// sqnet:variant conv_filter_gemm_q4 -DTEX=1 -DDY4=1 -DLANEZ=1
// DY4 (with TEX; the host sets it when OH·OW % 4 == 0) fetches dy as vec4 texels, four output pixels of a channel at
// once, and walks the reduction four pixels at a time: a quarter of the dy fetches, which on lavapipe cost as much
// as the multiply-adds they feed. LANEZ (conv_filter_gemm_q4, with DY4) makes a workgroup's invocations parts of
// the reduction rather than columns: with 16 columns per invocation a layer like small's conv2 (32 × 144 weights)
// has only 9 column blocks, which as SIMD lanes left most of them idle.
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require // register-block loops unrolled: see gemm.comp
SQNET_LOCAL_SIZE

layout(constant_id = 3) const uint RM = 16; // output channels per invocation
layout(constant_id = 4) const uint CN = 4;  // groups of 4 (ci,kh,kw) columns per invocation

// Push constants (Go mirror: kernels.convPush; bias and ReLU flags are ignored).
layout(push_constant) uniform Push {
    uint B, Cin, H, W;
    uint Cout, KH, KW;
    uint OH, OW;
    uint sh, sw, ph, pw, dh, dw;
    uint flags; // 4: accumulate
} pc;

#include "conv_filter_io.glsl"

void main() {
    const uint HW = pc.H * pc.W, OP = pc.OH * pc.OW, KK = pc.KH * pc.KW;
    const uint ROWS = pc.Cout, COLS = pc.Cin * KK;
#if defined(LANEZ) && LANEZ
    const uint row0 = gl_WorkGroupID.y * RM, col0 = gl_WorkGroupID.x * (4 * CN);
#else
    const uint row0 = gl_WorkGroupID.y * RM, col0 = gl_GlobalInvocationID.x * (4 * CN);
#endif
    if (row0 >= ROWS || col0 >= COLS) {
        return;
    }
    uint ar[RM];
    [[unroll]] for (uint r = 0; r < RM; r++) {
        ar[r] = min(row0 + r, ROWS - 1) * OP;
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
    // Split over images when the dispatch has several z workgroups: workgroup z sums images [b0, b1) into its own
    // partial dw at float z·Cout·Cin·KH·KW, which the host then adds up in a fixed order.
#if !(defined(LANEZ) && LANEZ)
    const uint nz = gl_NumWorkGroups.z, per = (pc.B + nz - 1) / nz, z = gl_WorkGroupID.z;
    const uint b0 = min(z * per, pc.B), b1 = min(b0 + per, pc.B);
#endif
#if defined(LANEZ) && LANEZ
    // LANEZ: the workgroup's invocations are parts, not columns — invocation z of nz sums quads (four adjacent
    // output pixels of one image) [z·per, (z+1)·per) of the B·OP/4 into its own partial dw. Every SIMD lane then
    // has work even when the columns make few blocks, and each fetched dy vec4 feeds 4·CN columns.
    const uint nz = gl_NumWorkGroups.z * gl_WorkGroupSize.x, z = gl_WorkGroupID.z * gl_WorkGroupSize.x +
        gl_LocalInvocationID.x;
    const uint quads = pc.B * (OP / 4), per = (quads + nz - 1) / nz;
    const uint q0 = min(z * per, quads), q1 = min(q0 + per, quads);
    uint b = q0 / (OP / 4), p = 4 * (q0 % (OP / 4));
    uint oh = p / pc.OW, ow = p % pc.OW; // the pixel p + q, stepped
    for (uint qd = q0; qd < q1; qd++) {
        const uint xb = b * pc.Cin * HW, dyb = b * ROWS * OP;
        vec4 bq[4][CN];
        [[unroll]] for (uint q = 0; q < 4; q++) {
            const int iy = int(oh * pc.sh), ix = int(ow * pc.sw);
            [[unroll]] for (uint j = 0; j < CN; j++) {
                [[unroll]] for (uint qq = 0; qq < 4; qq++) {
                    const uint i = 4 * j + qq;
                    const int yy = iy + hoff[i], xx = ix + woff[i];
                    const bool ok = yy >= 0 && yy < int(pc.H) && xx >= 0 && xx < int(pc.W);
                    const float v = X(ok ? xb + xo[i] + uint(yy) * pc.W + uint(xx) : 0);
                    bq[q][j][qq] = ok ? v : 0.0;
                }
            }
            if (++ow == pc.OW) {
                ow = 0;
                oh++;
            }
        }
        [[unroll]] for (uint r = 0; r < RM; r++) {
            const vec4 a = DYV((dyb + ar[r] + p) / 4);
            [[unroll]] for (uint j = 0; j < CN; j++) {
                acc[r][j] = fma(vec4(a.x), bq[0][j], acc[r][j]);
                acc[r][j] = fma(vec4(a.y), bq[1][j], acc[r][j]);
                acc[r][j] = fma(vec4(a.z), bq[2][j], acc[r][j]);
                acc[r][j] = fma(vec4(a.w), bq[3][j], acc[r][j]);
            }
        }
        p += 4;
        if (p == OP) {
            p = 0;
            oh = 0;
            ow = 0;
            b++;
        }
    }
#elif defined(DY4) && DY4
    for (uint b = b0; b < b1; b++) {
        const uint xb = b * pc.Cin * HW, dyb = b * ROWS * OP;
        uint oh = 0, ow = 0; // the pixel p + q, stepped
        for (uint p = 0; p < OP; p += 4) {
            vec4 bq[4][CN]; // bq[q][j]: x under columns 4j..4j+3 at output pixel p + q
            [[unroll]] for (uint q = 0; q < 4; q++) {
                const int iy = int(oh * pc.sh), ix = int(ow * pc.sw);
                [[unroll]] for (uint j = 0; j < CN; j++) {
                    [[unroll]] for (uint qq = 0; qq < 4; qq++) {
                        const uint i = 4 * j + qq;
                        const int yy = iy + hoff[i], xx = ix + woff[i];
                        const bool ok = yy >= 0 && yy < int(pc.H) && xx >= 0 && xx < int(pc.W);
                        const float v = X(ok ? xb + xo[i] + uint(yy) * pc.W + uint(xx) : 0);
                        bq[q][j][qq] = ok ? v : 0.0;
                    }
                }
                if (++ow == pc.OW) {
                    ow = 0;
                    oh++;
                }
            }
            [[unroll]] for (uint r = 0; r < RM; r++) {
                const vec4 a = DYV((dyb + ar[r] + p) / 4);
                [[unroll]] for (uint j = 0; j < CN; j++) {
                    acc[r][j] = fma(vec4(a.x), bq[0][j], acc[r][j]);
                    acc[r][j] = fma(vec4(a.y), bq[1][j], acc[r][j]);
                    acc[r][j] = fma(vec4(a.z), bq[2][j], acc[r][j]);
                    acc[r][j] = fma(vec4(a.w), bq[3][j], acc[r][j]);
                }
            }
        }
    }
#else
    for (uint b = b0; b < b1; b++) {
        const uint xb = b * pc.Cin * HW, dyb = b * ROWS * OP;
        for (uint oh = 0; oh < pc.OH; oh++) {
            uint ro[4 * CN];
            bool rok[4 * CN];
            [[unroll]] for (uint i = 0; i < 4 * CN; i++) {
                const int yy = int(oh * pc.sh) + hoff[i];
                rok[i] = yy >= 0 && yy < int(pc.H);
                ro[i] = xb + xo[i] + uint(max(yy, 0)) * pc.W;
            }
            for (uint ow = 0; ow < pc.OW; ow++) {
                const int ix = int(ow * pc.sw);
                vec4 bv[CN];
                [[unroll]] for (uint j = 0; j < CN; j++) {
                    [[unroll]] for (uint q = 0; q < 4; q++) {
                        const uint i = 4 * j + q;
                        const int xx = ix + woff[i];
                        const bool ok = rok[i] && xx >= 0 && xx < int(pc.W);
                        const float v = X(ok ? ro[i] + uint(xx) : 0);
                        bv[j][q] = ok ? v : 0.0;
                    }
                }
                const uint d = dyb + oh * pc.OW + ow;
                [[unroll]] for (uint r = 0; r < RM; r++) {
                    const float a = DY(d + ar[r]);
                    [[unroll]] for (uint j = 0; j < CN; j++) {
                        acc[r][j] = fma(vec4(a), bv[j], acc[r][j]);
                    }
                }
            }
        }
    }
#endif
    [[unroll]] for (uint r = 0; r < RM; r++) {
        const uint row = row0 + r;
        if (row >= ROWS) {
            break;
        }
        [[unroll]] for (uint j = 0; j < CN; j++) {
            [[unroll]] for (uint q = 0; q < 4; q++) {
                const uint c = col0 + 4 * j + q;
                if (c < COLS) {
                    const uint o = z * ROWS * COLS + row * COLS + c;
                    dwt[o] = (pc.flags & 4u) != 0 ? dwt[o] + acc[r][j][q] : acc[r][j][q];
                }
            }
        }
    }
}
