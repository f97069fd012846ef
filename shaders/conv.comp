#version 450
// conv: 2-D convolution of NCHW fp32 tensors as implicit GEMMs (no im2col buffer), with the register blocking of
// gemm.comp: each invocation owns an RM × (4·CN) block of the product, the RM rows shared by the whole workgroup
// (uniform weight loads), the 4·CN columns its own (gathered input loads, zero outside the padded image).
//
//   FWD:  y[b,co,oh,ow]  = Σ_{ci,kh,kw} w[co,ci,kh,kw] · x[b,ci,oh·sh−ph+kh·dh, ow·sw−pw+kw·dw] (+ bias[co]) (ReLU)
//         rows co, columns (b,oh,ow), k = (ci,kh,kw).
//   DATA: dx[b,ci,ih,iw] = Σ_{co,kh,kw} w[co,ci,kh,kw] · dy[b,co,oh,ow] over the (oh,ow) with
//         ih = oh·sh−ph+kh·dh, iw = ow·sw−pw+kw·dw; rows ci, columns (b,ih,iw), k = (co,kh,kw).
//
// Each output element is a fixed-order sum: the same inputs give the same bits. FLAGS bit 1 adds the bias
// (FWD), bit 2 applies ReLU (FWD), bit 4 accumulates into the output instead of overwriting it.
// UNIT (specialization constant 5) is 1 when both strides are 1, which spares DATA an integer division per
// gathered element.
// STORE4 (specialization constant 6, packed variants without POOL) stores each four columns as one vec4 where the
// host found them four aligned floats of one image (kernels.convStore4); see the end of main.
// PACKW variants read the weights repacked by conv_wpack.comp ([rows][(c, kh, kw) rounded up to 4], rows co
// forward and ci for DATA) as vec4 texels: four taps of a row in one fetch instead of four (see kernels.Conv2D).
// sqnet:variant conv_fwd -DDATA=0
// sqnet:variant conv_bwd_data -DDATA=1
// sqnet:variant conv_fwd_t -DDATA=0 -DTEX=1
// sqnet:variant conv_bwd_data_t -DDATA=1 -DTEX=1
// sqnet:variant conv_fwd_tp -DDATA=0 -DTEX=1 -DPACKW=1
// sqnet:variant conv_bwd_data_tp -DDATA=1 -DTEX=1 -DPACKW=1
// sqnet:variant conv_fwd_tp_pool -DDATA=0 -DTEX=1 -DPACKW=1 -DPOOL=1
//
// POOL (forward, packed weights, CN = 4, even output height and width; flags: bias only): the convolution followed
// by ReLU and 2×2 max pooling, as Conv2D then ReLUMaxPool2x2 compute them, without storing the convolution's
// output (conv_direct.comp's POOL does the same for first layers). The columns are taken in window order: an
// invocation's 16 columns are the four pixels (row-major) of four consecutive windows in (image, pooled row, pooled
// column) order — a group that may straddle rows and images, so no column is wasted on padding (chunks of pooled
// rows were: madry's 7-wide pooled rows ran 8 windows' work for 7, slower than the unfused pair) —, so each
// acc[r][j] is one window. It stores the pooled values (ReLU applied) and per row and group one float of codes,
// 8^j·(argmax position + 4 if the maximum is > 0) for its windows j, at [row][group] (maxpool.comp's UNPOOL FLAT
// reads them). The sums are those of conv_fwd_tp, column by column: the same bits.
#if !defined(POOL)
#define POOL 0
#endif
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require // register-block loops unrolled: see gemm.comp
SQNET_LOCAL_SIZE

layout(constant_id = 3) const uint RM = 16; // rows of the product per invocation
layout(constant_id = 4) const uint CN = 4;  // groups of 4 columns per invocation
layout(constant_id = 5) const bool UNIT = false;
layout(constant_id = 6) const bool STORE4 = false; // PACKW without POOL: vec4 stores of the output (see the end)

// Push constants (Go mirror: kernels.convPush).
layout(push_constant) uniform Push {
    uint B, Cin, H, W;     // input
    uint Cout, KH, KW;     // weight [Cout, Cin, KH, KW]
    uint OH, OW;           // output
    uint sh, sw, ph, pw, dh, dw; // stride, padding, dilation
    uint flags;            // 1: bias, 2: ReLU, 4: accumulate
} pc;

#include "conv_io.glsl"
#if POOL
layout(std430, set = 0, binding = 4) writeonly buffer Codes_ { float codes[]; };
#include "pool_window.glsl"
#endif

// SQNET_CONV_GATHER(kw, bv) loads tap kw of every column of this invocation into bv (0 outside the image), from
// the row offsets ro/rok of the current (c, kh).
// SQNET_CONV_Y(i, kh, rok, yy) declares the src row yy column i reads at tap row kh and whether it exists (rok);
// SQNET_CONV_X(i, kw, rk, ok, xx) the same for the column xx at tap kw, ok folding in the row's rk.
#if DATA
#define SQNET_CONV_Y(i, kh, rok, yy) \
    int ty = py[i] - int((kh) * pc.dh), yy = ty; \
    bool rok; \
    if (!UNIT) { \
        yy = ty / int(pc.sh); \
        rok = ty >= 0 && yy * int(pc.sh) == ty && yy < SH; \
    } else { \
        rok = ty >= 0 && ty < SH; \
    } \
    yy = max(yy, 0);
#define SQNET_CONV_X(i, kw, rk, ok, xx) \
    int t = px[i] - int((kw) * pc.dw), xx = t; \
    bool ok; \
    if (!UNIT) { \
        xx = t / int(pc.sw); \
        ok = (rk) && t >= 0 && xx * int(pc.sw) == t && xx < SW; \
    } else { \
        ok = (rk) && t >= 0 && t < SW; \
    }
#else
#define SQNET_CONV_Y(i, kh, rok, yy) \
    int yy = py[i] + int((kh) * pc.dh); \
    bool rok = yy >= 0 && yy < SH; \
    yy = max(yy, 0);
#define SQNET_CONV_X(i, kw, rk, ok, xx) \
    int xx = px[i] + int((kw) * pc.dw); \
    bool ok = (rk) && xx >= 0 && xx < SW;
#endif
#define SQNET_CONV_GATHER(kw, bv) \
    [[unroll]] for (uint j = 0; j < CN; j++) { \
        [[unroll]] for (uint q = 0; q < 4; q++) { \
            const uint i = 4 * j + q; \
            SQNET_CONV_X(i, kw, rok[i], ok, xx) \
            float v = SRC(ok ? ro[i] + uint(xx) : 0); \
            bv[j][q] = ok ? v : 0.0; \
        } \
    }

void main() {
    const uint HW = pc.H * pc.W, OP = pc.OH * pc.OW, KK = pc.KH * pc.KW;
#if DATA
    const uint ROWS = pc.Cin, COLS = pc.B * HW, SP = HW, INC = pc.Cout, ROWST = KK, INCST = pc.Cin * KK;
    const uint SRCB = pc.Cout * OP, SRCC = OP, DSTB = pc.Cin * HW;
#else
#if POOL
    const uint QH = pc.OH / 2, QW = pc.OW / 2, QP = QH * QW; // the pooled plane
    const uint NW = pc.B * QP, GROUPS = (NW + 3) / 4;          // the windows of a row; groups of four
    const uint COLS = GROUPS * 16;                             // 16 columns (4 windows) a group
#else
    const uint COLS = pc.B * OP;
#endif
    const uint ROWS = pc.Cout, SP = OP, INC = pc.Cin, ROWST = pc.Cin * KK, INCST = KK;
    const uint SRCB = pc.Cin * HW, SRCC = HW, DSTB = pc.Cout * OP;
#endif
    const uint row0 = gl_WorkGroupID.y * RM;
    const uint col0 = gl_GlobalInvocationID.x * (4 * CN);
    if (row0 >= ROWS || col0 >= COLS) {
        return;
    }
    uint ar[RM]; // weight offset of each (clamped) row
#if PACKW
    const uint KQ = (INC * KK + 3u) / 4u; // vec4 texels per packed row (the reduction unbroken, see conv_wpack)
    [[unroll]] for (uint r = 0; r < RM; r++) {
        ar[r] = min(row0 + r, ROWS - 1) * KQ;
    }
#else
    [[unroll]] for (uint r = 0; r < RM; r++) {
        ar[r] = min(row0 + r, ROWS - 1) * ROWST;
    }
#endif
    // Per column: offset of its batch item in src, and its position: FWD the top-left input pixel of its window
    // (may be negative), DATA its own input pixel.
    uint sb[4 * CN], ob[4 * CN];
    int py[4 * CN], px[4 * CN];
    // Columns are consecutive (b, y, x) positions: divide once, then step (integer division is scalar code on
    // a SIMD CPU driver and dominated short reductions such as a 5×5×1 kernel).
#if DATA
    const uint XW = pc.W, YH = pc.H;
#else
    const uint XW = pc.OW, YH = pc.OH;
#endif
#if POOL
    // Column i is pixel i % 4 (row-major) of window 4g + i / 4, g this invocation's group.
    const uint g = col0 / 16;
    uint wb[4], wr[4]; // each window's image and place in the pooled plane
    [[unroll]] for (uint j = 0; j < 4; j++) {
        const uint wi = min(4 * g + j, NW - 1); // a window past the end: the last again (never stored)
        wb[j] = wi / QP;
        wr[j] = wi - wb[j] * QP;
    }
    [[unroll]] for (uint i = 0; i < 4 * CN; i++) {
        const uint j = i / 4, qy = wr[j] / QW, qx = wr[j] - qy * QW;
        const uint y = 2 * qy + (i % 4) / 2, xq = 2 * qx + i % 2;
        py[i] = int(y * pc.sh) - int(pc.ph);
        px[i] = int(xq * pc.sw) - int(pc.pw);
        sb[i] = wb[j] * SRCB;
    }
#else
    const uint n0 = min(col0, COLS - 1);
    uint b = n0 / SP, y = (n0 % SP) / XW, xq = n0 % XW;
    [[unroll]] for (uint i = 0; i < 4 * CN; i++) {
#if DATA
        py[i] = int(y) + int(pc.ph);
        px[i] = int(xq) + int(pc.pw);
#else
        py[i] = int(y * pc.sh) - int(pc.ph);
        px[i] = int(xq * pc.sw) - int(pc.pw);
#endif
        sb[i] = b * SRCB;
        ob[i] = b * DSTB + y * XW + xq; // output offset of row 0
        // Step to the next column, staying on the last one past the end (those are never stored).
        if (col0 + i + 1 < COLS) {
            if (++xq == XW) {
                xq = 0;
                if (++y == YH) {
                    y = 0;
                    b++;
                }
            }
        }
    }
#endif
    vec4 acc[RM][CN];
    [[unroll]] for (uint r = 0; r < RM; r++) {
        [[unroll]] for (uint j = 0; j < CN; j++) {
            acc[r][j] = vec4(0);
        }
    }
#if DATA
    const int SH = int(pc.OH), SW = int(pc.OW);
#else
    const int SH = int(pc.H), SW = int(pc.W);
#endif
#if PACKW
    // Packed weights: a row's taps k = (c, kh, kw) in order as ⌈INC·KH·KW/4⌉ vec4 texels; each four taps' columns are
    // gathered first (a tap past the end reads 0), then every row multiplies them with one fetched vec4. The sums
    // run in the order of the unpacked kernels, so packing changes no bits.
    uint c = 0, kh = 0, kw = 0; // the position of tap 4·kq + q
    for (uint kq = 0; kq < KQ; kq++) {
        vec4 bq[4][CN];
        [[unroll]] for (uint q = 0; q < 4; q++) {
            const bool tap = c < INC;
            const uint co = min(c, INC - 1) * SRCC;
            [[unroll]] for (uint j = 0; j < CN; j++) {
                [[unroll]] for (uint qq = 0; qq < 4; qq++) {
                    const uint i = 4 * j + qq;
                    SQNET_CONV_Y(i, kh, rok, yy)
                    SQNET_CONV_X(i, kw, rok, ok, xx)
                    ok = ok && tap;
                    float v = SRC(ok ? sb[i] + co + uint(yy) * uint(SW) + uint(xx) : 0);
                    bq[q][j][qq] = ok ? v : 0.0;
                }
            }
            if (++kw == pc.KW) {
                kw = 0;
                if (++kh == pc.KH) {
                    kh = 0;
                    c++;
                }
            }
        }
        [[unroll]] for (uint r = 0; r < RM; r++) {
            const vec4 a = WGT4(ar[r] + kq);
            [[unroll]] for (uint j = 0; j < CN; j++) {
                acc[r][j] = fma(vec4(a.x), bq[0][j], acc[r][j]);
                acc[r][j] = fma(vec4(a.y), bq[1][j], acc[r][j]);
                acc[r][j] = fma(vec4(a.z), bq[2][j], acc[r][j]);
                acc[r][j] = fma(vec4(a.w), bq[3][j], acc[r][j]);
            }
        }
    }
#else
    for (uint c = 0; c < INC; c++) {
        for (uint kh = 0; kh < pc.KH; kh++) {
            // Row of src each column reads for this (c, kh), and whether it exists.
            uint ro[4 * CN];
            bool rok[4 * CN];
            [[unroll]] for (uint i = 0; i < 4 * CN; i++) {
                SQNET_CONV_Y(i, kh, rk, y)
                rok[i] = rk;
                ro[i] = sb[i] + c * SRCC + uint(y) * uint(SW);
            }
            for (uint kw = 0; kw < pc.KW; kw++) {
                vec4 bv[CN];
                SQNET_CONV_GATHER(kw, bv);
                const uint wo = c * INCST + kh * pc.KW + kw;
                [[unroll]] for (uint r = 0; r < RM; r++) {
                    const float a = WGT(ar[r] + wo);
                    [[unroll]] for (uint j = 0; j < CN; j++) {
                        acc[r][j] = fma(vec4(a), bv[j], acc[r][j]);
                    }
                }
            }
        }
    }
#endif
    const uint flags = pc.flags;
#if POOL
    const uint nw = min(4u, NW - 4 * g); // the group's windows before the end
    [[unroll]] for (uint r = 0; r < RM; r++) {
        const uint row = row0 + r;
        if (row >= ROWS) {
            break;
        }
        vec4 m;
        uint code = 0;
        [[unroll]] for (uint j = 0; j < 4; j++) {
            vec4 v = acc[r][j];
            if ((flags & 1u) != 0) {
                v += vec4(bias[row]); // as SQNET_EPILOGUE adds it
            }
            uint k;
            m[j] = pool4(v, k);
            if (j < nw) {
                code += (k + (m[j] > 0.0 ? 4u : 0u)) << (3u * j);
            }
        }
        m = max(m, vec4(0.0)); // ReLU after the maximum, written as maxpool.comp writes it
        [[unroll]] for (uint j = 0; j < 4; j++) {
            if (j < nw) {
                dst[(wb[j] * ROWS + row) * QP + wr[j]] = m[j];
            }
        }
        codes[row * GROUPS + g] = float(code);
    }
#else
    [[unroll]] for (uint r = 0; r < RM; r++) {
        const uint row = row0 + r;
        if (row >= ROWS) {
            break;
        }
#if PACKW
        // STORE4: the host sets it where the output plane is a multiple of 4 pixels, which puts every group of four
        // columns (col0 is a multiple of 4) inside one image as four consecutive, 16-byte-aligned floats: one vec4
        // store instead of four float ones (on lavapipe each store is a pass over the SIMD lanes, whatever its
        // width). The same values: the same bits.
        if (STORE4) {
            [[unroll]] for (uint j = 0; j < CN; j++) {
                if (col0 + 4 * j < COLS) {
                    const uint o = (ob[4 * j] + row * SP) / 4;
                    vec4 v = acc[r][j];
                    SQNET_EPILOGUE(v, dst4[o], bias[row], flags)
                    dst4[o] = v;
                }
            }
            continue;
        }
#endif
        [[unroll]] for (uint j = 0; j < CN; j++) {
            [[unroll]] for (uint q = 0; q < 4; q++) {
                const uint n = col0 + 4 * j + q;
                if (n < COLS) {
                    const uint o = ob[4 * j + q] + row * SP;
                    float v = acc[r][j][q];
                    SQNET_EPILOGUE(v, dst[o], bias[row], flags)
                    dst[o] = v;
                }
            }
        }
    }
#endif
}
