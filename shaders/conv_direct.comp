#version 450
// conv_direct: a network's first convolution (few input channels, stride 1, no dilation) on CPU drivers, forward
// (FWD) and input gradient (DATA), with the layer's channel counts and kernel size as specialization constants.
//
//   FWD:  y[b,co,oy,ox]  = Σ_{ci,kh,kw} w[co,ci,kh,kw] · x[b,ci,oy−ph+kh, ox−pw+kw] (+ bias[co]) (ReLU)
//   DATA: dx[b,ci,oy,ox] = Σ_{co,kh,kw} w[co,ci,kh,kw] · dy[b,co,oy+ph−kh, ox+pw−kw]
// Both make NO output channels from NI input channels: FWD NO = Cout, NI = Cin; DATA NO = Cin, NI = Cout. The
// weights come packed by conv_wpack as vec4 texels, [NO][NI][KH·KW rounded up to 4] (its FWD and DATA layouts).
//
// Why a kernel of its own: with one input channel the implicit GEMM (conv.comp) has a 25-long reduction per output,
// too short to pay for its per-column index arithmetic and per-row weight fetches (madry's conv1: 12–15 GFLOP/s
// forward, 8–10 for the input gradient on lavapipe). Here each invocation owns P adjacent pixels of one output row
// (P a multiple of 4 in the VEC4 variants) and every output channel. It reads the KH × (P+KW−1) input window of an
// input channel once (zero outside the image) and feeds each value to up to KW·P multiply-adds per output channel.
// One loop stays rolled — over output channels (FWD, the windows of the few input channels read once before it) or
// over input channels (DATA, the few output channels' sums held across it) — and everything inside it is unrolled
// with constant indices. Why rolled: lavapipe compiles fma() to a multiply and an add, and in a fully unrolled
// body LLVM hoisted thousands of independent products and spilled them to the stack (three moves per
// multiply-add); a loop body of one channel keeps its P sums in registers (madry conv1 forward at batch 50:
// 18 → 25 GFLOP/s).
//
// VEC4 variants (rows of both planes a multiple of 4 floats wide, PADX = the pass's column offset below) read each
// row segment as aligned vec4 texels and store each four pixels of a channel as one vec4: lavapipe gathers a vec4
// texel for about the price of a float one and stores a vec4 in one pass over the SIMD lanes instead of four
// (forward 12.5 → 17.5 GFLOP/s in the unrolled form).
//
// Invocations past the end compute the last chunk again and store nothing (no early return: on a SIMD CPU driver
// the code after a divergent return runs under an execution mask). Each output element is a fixed-order sum (input
// channel, kernel row, kernel column): the same inputs give the same bits. FLAGS bit 1 adds the bias (FWD), bit 2
// applies ReLU (FWD), bit 4 accumulates into the output.
// sqnet:variant conv_direct_fwd -DDATA=0 -DVEC4=0
// sqnet:variant conv_direct_data -DDATA=1 -DVEC4=0
// sqnet:variant conv_direct_fwd4 -DDATA=0 -DVEC4=1
// sqnet:variant conv_direct_data4 -DDATA=1 -DVEC4=1
// sqnet:variant conv_direct_pool4 -DDATA=0 -DVEC4=1 -DPOOL=1
//
// POOL (forward, VEC4, an even output height; the host sets P = 8): the convolution followed by ReLU and 2×2 max
// pooling, as Conv2D then ReLUMaxPool2x2 compute them, without storing the convolution's output. An invocation owns
// P pixels of two output rows 2py, 2py+1 (its window KH + 1 rows), pools their P/2 windows of each output channel
// (bias added first; the first maximum in row-major window order, a NaN wins — maxpool.comp's rule), stores the
// P/2 pooled values (ReLU applied) as vec2s and one float of codes for the backward: per window k (0..3)
// 8^k·(argmax position in the window (0..3) + 4 if the maximum is > 0), a small integer stored exactly as a float
// and read back through a float texel (kernels.Lib.Conv2DReLUMaxPoolBackward). On lavapipe a store costs a pass
// over the SIMD lanes whatever its width, and the first layer's output is the largest tensor of an MNIST network;
// storing a quarter of it and a code per four windows instead of all of it, and no pooling pass, is what this
// saves.
#if !defined(POOL)
#define POOL 0
#endif
#define TEX 1 // the source is read as texels
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require
SQNET_LOCAL_SIZE

layout(constant_id = 3) const uint P = 4;   // adjacent output pixels per invocation
layout(constant_id = 4) const uint NO = 1;  // output channels of the pass
layout(constant_id = 5) const uint NI = 1;  // input channels of the pass
layout(constant_id = 6) const uint KH = 1;
layout(constant_id = 7) const uint KW = 1;
layout(constant_id = 8) const int PADX = 0; // VEC4: the column offset offx below (FWD −pw, DATA pw − (KW−1))

// Push constants (Go mirror: kernels.convPush; strides and dilations are 1 here).
layout(push_constant) uniform Push {
    uint B, Cin, H, W;
    uint Cout, KH, KW;
    uint OH, OW;
    uint sh, sw, ph, pw, dh, dw;
    uint flags;
} pc;

#if POOL
SQNET_VEC4_TEX(0, SRC4) // x
layout(std430, set = 0, binding = 3) writeonly buffer Out_ { vec2 pooled2[]; }; // the pooled output
layout(std430, set = 0, binding = 4) writeonly buffer Codes_ { float codes[]; }; // the windows' codes
#elif VEC4
SQNET_VEC4_TEX(0, SRC4) // FWD x, DATA dy
layout(std430, set = 0, binding = 3) buffer Out_ { vec4 dst4[]; }; // FWD y, DATA dx
#else
SQNET_F32_IN(0, SRC)
layout(std430, set = 0, binding = 3) buffer Out_ { float dst[]; };
#endif
SQNET_VEC4_TEX(1, WGT4) // packed weights
layout(std430, set = 0, binding = 2) readonly buffer Bias_ { float bias[]; };

const uint PW = P + KW - 1; // window width
const uint KK = KH * KW, KQ = (KK + 3) / 4;
#if POOL
const uint WR = KH + 1; // the window's rows (a named constant: glslang gives each spec-constant expression its own
#define WROWS WR        // array type, so parameters sized by `KH + 1` would match no argument)
#endif

#include "conv_window.glsl"

// accumulate adds output channel o's taps over input channel i's window win, from its row d on, to acc.
void accumulate(uint o, uint i, float win[WROWS][PW], uint d, inout float acc[P]) {
    [[unroll]] for (uint q = 0; q < KQ; q++) {
        const vec4 a4 = WGT4((o * NI + i) * KQ + q);
        [[unroll]] for (uint e = 0; e < 4; e++) {
            const uint k = 4 * q + e;
            if (k < KK) {
#if DATA
                const uint r = KH - 1 - k / KW, t0 = KW - 1 - k % KW; // the flipped tap
#else
                const uint r = k / KW, t0 = k % KW;
#endif
                [[unroll]] for (uint p = 0; p < P; p++) {
                    acc[p] = fma(a4[e], win[d + r][t0 + p], acc[p]);
                }
            }
        }
    }
}

#if !POOL
// store writes output channel o's P sums (those inside the row: valid of them) with the flags' bias, ReLU and
// accumulation.
void store(uint o, float acc[P], int valid, uint DH, uint DW) {
    const uint flags = pc.flags;
    const uint ob = ((b * NO + o) * DH + oy) * DW + ox0;
#if VEC4
    [[unroll]] for (uint q = 0; q < P / 4; q++) {
        if (int(4 * q) < valid) { // the row is a multiple of 4 wide: all four pixels are in it
            vec4 v = vec4(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3]);
            SQNET_EPILOGUE(v, dst4[ob / 4 + q], bias[o], flags)
            dst4[ob / 4 + q] = v;
        }
    }
#else
    [[unroll]] for (uint p = 0; p < P; p++) {
        if (int(p) < valid) { // (ox0 + p < DW, written so: that form stored nothing on lavapipe)
            float v = acc[p];
            SQNET_EPILOGUE(v, dst[ob + p], bias[o], flags)
            dst[ob + p] = v;
        }
    }
#endif
}
#endif

#if POOL
#include "pool_window.glsl"

void main() {
    SH = pc.H;
    SW = pc.W;
    const uint DH = pc.OH, DW = pc.OW, QH = DH / 2, QW = DW / 2; // the convolution's and the pooled planes
    const uint CPR = (QW + 3) / 4;                                 // code floats per pooled row
    const int offy = -int(pc.ph), offx = -int(pc.pw);
    const uint chunks = (DW + P - 1) / P;
    const uint total = pc.B * QH * chunks, n0 = sqnet_flat_id(), n = min(n0, total - 1);
    const uint row = n / chunks; // b·QH + py
    b = row / QH;
    const uint py = row % QH;
    oy = 2 * py;
    ox0 = (n % chunks) * P;
    y0 = int(oy) + offy;
    x0 = int(ox0) + offx;
    [[unroll]] for (uint t = 0; t < PW; t++) {
        colok[t] = x0 + int(t) >= 0 && x0 + int(t) < int(SW);
    }
    // Pooled values of this chunk to store (DW is a multiple of 4, ox0 of 8: an even count).
    const int valid = n0 < total ? (int(DW) - int(ox0)) / 2 : 0;
    const uint flags = pc.flags;
    float win[NI][WROWS][PW];
    [[unroll]] for (uint i = 0; i < NI; i++) {
        loadWindow(i, win[i]);
    }
    [[dont_unroll]] for (uint o = 0; o < NO; o++) {
        float a0[P], a1[P]; // output rows 2py and 2py + 1
        [[unroll]] for (uint p = 0; p < P; p++) {
            a0[p] = 0.0;
            a1[p] = 0.0;
        }
        [[unroll]] for (uint i = 0; i < NI; i++) {
            accumulate(o, i, win[i], 0, a0);
            accumulate(o, i, win[i], 1, a1);
        }
        if ((flags & 1u) != 0) { // the bias, added as conv_direct_fwd's epilogue adds it
            [[unroll]] for (uint p = 0; p < P; p++) {
                a0[p] += bias[o];
                a1[p] += bias[o];
            }
        }
        const uint qb = ((b * NO + o) * QH + py) * QW + ox0 / 2; // the first pooled output (even)
        uint code = 0;
        [[unroll]] for (uint q = 0; q < P / 4; q++) { // two windows a vec2
            vec2 m;
            [[unroll]] for (uint e = 0; e < 2; e++) {
                const uint j = 2 * q + e; // the window's index in the chunk
                uint k;
                const float best = pool4(vec4(a0[2 * j], a0[2 * j + 1], a1[2 * j], a1[2 * j + 1]), k);
                m[e] = best;
                if (int(j) < valid) { // (windows past the row's end leave their bits 0)
                    code += (k + (best > 0.0 ? 4u : 0u)) << (3u * (j % 4u));
                }
            }
            // ReLU after the maximum, written as maxpool.comp writes it (a vector max: the same result for NaN).
            m = max(m, vec2(0.0));
            if (int(2 * q) < valid) {
                pooled2[qb / 2 + q] = m;
            }
        }
        if (valid > 0) {
            codes[((b * NO + o) * QH + py) * CPR + ox0 / 8] = float(code);
        }
    }
}
#else
void main() {
#if DATA
    SH = pc.OH;
    SW = pc.OW;
    const uint DH = pc.H, DW = pc.W; // destination plane (dx)
    const int offy = int(pc.ph) - int(KH - 1), offx = int(pc.pw) - int(KW - 1);
#else
    SH = pc.H;
    SW = pc.W;
    const uint DH = pc.OH, DW = pc.OW;
    const int offy = -int(pc.ph), offx = -int(pc.pw);
#endif
    const uint chunks = (DW + P - 1) / P;
    const uint total = pc.B * DH * chunks, n0 = sqnet_flat_id(), n = min(n0, total - 1);
    const uint row = n / chunks; // b·DH + oy
    b = row / DH;
    oy = row % DH;
    ox0 = (n % chunks) * P;
    y0 = int(oy) + offy;
    x0 = int(ox0) + offx;
    [[unroll]] for (uint t = 0; t < PW; t++) {
        colok[t] = x0 + int(t) >= 0 && x0 + int(t) < int(SW);
    }
    const int valid = n0 < total ? int(DW) - int(ox0) : 0; // pixels of this chunk to store
#if DATA
    float acc[NO][P];
    [[unroll]] for (uint o = 0; o < NO; o++) {
        [[unroll]] for (uint p = 0; p < P; p++) {
            acc[o][p] = 0.0;
        }
    }
    [[dont_unroll]] for (uint i = 0; i < NI; i++) {
        float win[KH][PW];
        loadWindow(i, win);
        [[unroll]] for (uint o = 0; o < NO; o++) {
            accumulate(o, i, win, 0, acc[o]);
        }
    }
    [[unroll]] for (uint o = 0; o < NO; o++) {
        store(o, acc[o], valid, DH, DW);
    }
#else
    float win[NI][KH][PW];
    [[unroll]] for (uint i = 0; i < NI; i++) {
        loadWindow(i, win[i]);
    }
    [[dont_unroll]] for (uint o = 0; o < NO; o++) {
        float acc[P];
        [[unroll]] for (uint p = 0; p < P; p++) {
            acc[p] = 0.0;
        }
        [[unroll]] for (uint i = 0; i < NI; i++) {
            accumulate(o, i, win[i], 0, acc);
        }
        store(o, acc, valid, DH, DW);
    }
#endif
}
#endif
