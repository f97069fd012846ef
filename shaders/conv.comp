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
// sqnet:variant conv_fwd -DDATA=0
// sqnet:variant conv_bwd_data -DDATA=1
// sqnet:variant conv_fwd_t -DDATA=0 -DTEX=1
// sqnet:variant conv_bwd_data_t -DDATA=1 -DTEX=1
#include "common.glsl"
SQNET_LOCAL_SIZE

layout(constant_id = 3) const uint RM = 16; // rows of the product per invocation
layout(constant_id = 4) const uint CN = 4;  // groups of 4 columns per invocation
layout(constant_id = 5) const bool UNIT = false;

// Push constants (Go mirror: kernels.convPush).
layout(push_constant) uniform Push {
    uint B, Cin, H, W;     // input
    uint Cout, KH, KW;     // weight [Cout, Cin, KH, KW]
    uint OH, OW;           // output
    uint sh, sw, ph, pw, dh, dw; // stride, padding, dilation
    uint flags;            // 1: bias, 2: ReLU, 4: accumulate
} pc;

#include "conv_io.glsl"

void main() {
    const uint HW = pc.H * pc.W, OP = pc.OH * pc.OW, KK = pc.KH * pc.KW;
#if DATA
    const uint ROWS = pc.Cin, COLS = pc.B * HW, SP = HW, INC = pc.Cout, ROWST = KK, INCST = pc.Cin * KK;
    const uint SRCB = pc.Cout * OP, SRCC = OP, DSTB = pc.Cin * HW;
#else
    const uint ROWS = pc.Cout, COLS = pc.B * OP, SP = OP, INC = pc.Cin, ROWST = pc.Cin * KK, INCST = KK;
    const uint SRCB = pc.Cin * HW, SRCC = HW, DSTB = pc.Cout * OP;
#endif
    const uint row0 = gl_WorkGroupID.y * RM;
    const uint col0 = gl_GlobalInvocationID.x * (4 * CN);
    if (row0 >= ROWS || col0 >= COLS) {
        return;
    }
    uint ar[RM]; // weight offset of each (clamped) row
    for (uint r = 0; r < RM; r++) {
        ar[r] = min(row0 + r, ROWS - 1) * ROWST;
    }
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
    const uint n0 = min(col0, COLS - 1);
    uint b = n0 / SP, y = (n0 % SP) / XW, xq = n0 % XW;
    for (uint i = 0; i < 4 * CN; i++) {
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
    vec4 acc[RM][CN];
    for (uint r = 0; r < RM; r++) {
        for (uint j = 0; j < CN; j++) {
            acc[r][j] = vec4(0);
        }
    }
#if DATA
    const int SH = int(pc.OH), SW = int(pc.OW);
#else
    const int SH = int(pc.H), SW = int(pc.W);
#endif
    for (uint c = 0; c < INC; c++) {
        for (uint kh = 0; kh < pc.KH; kh++) {
            // Row of src each column reads for this (c, kh), and whether it exists.
            uint ro[4 * CN];
            bool rok[4 * CN];
            for (uint i = 0; i < 4 * CN; i++) {
#if DATA
                int t = py[i] - int(kh * pc.dh), y = t;
                if (!UNIT) {
                    y = t / int(pc.sh);
                    rok[i] = t >= 0 && y * int(pc.sh) == t && y < SH;
                } else {
                    rok[i] = t >= 0 && t < SH;
                }
#else
                int y = py[i] + int(kh * pc.dh);
                rok[i] = y >= 0 && y < SH;
#endif
                ro[i] = sb[i] + c * SRCC + uint(max(y, 0)) * uint(SW);
            }
            for (uint kw = 0; kw < pc.KW; kw++) {
                vec4 bv[CN];
                for (uint j = 0; j < CN; j++) {
                    for (uint q = 0; q < 4; q++) {
                        const uint i = 4 * j + q;
#if DATA
                        int t = px[i] - int(kw * pc.dw), xx = t;
                        bool ok;
                        if (!UNIT) {
                            xx = t / int(pc.sw);
                            ok = rok[i] && t >= 0 && xx * int(pc.sw) == t && xx < SW;
                        } else {
                            ok = rok[i] && t >= 0 && t < SW;
                        }
#else
                        int xx = px[i] + int(kw * pc.dw);
                        bool ok = rok[i] && xx >= 0 && xx < SW;
#endif
                        float v = SRC(ok ? ro[i] + uint(xx) : 0);
                        bv[j][q] = ok ? v : 0.0;
                    }
                }
                const uint wo = c * INCST + kh * pc.KW + kw;
                for (uint r = 0; r < RM; r++) {
                    const float a = WGT(ar[r] + wo);
                    for (uint j = 0; j < CN; j++) {
                        acc[r][j] = fma(vec4(a), bv[j], acc[r][j]);
                    }
                }
            }
        }
    }
    const uint flags = pc.flags;
    for (uint r = 0; r < RM; r++) {
        const uint row = row0 + r;
        if (row >= ROWS) {
            break;
        }
        for (uint j = 0; j < CN; j++) {
            for (uint q = 0; q < 4; q++) {
                const uint n = col0 + 4 * j + q;
                if (n < COLS) {
                    const uint o = ob[4 * j + q] + row * SP;
                    float v = acc[r][j][q];
                    if ((flags & 4u) != 0) {
                        v = dst[o] + v;
                    }
                    if ((flags & 1u) != 0) {
                        v += bias[row];
                    }
                    if ((flags & 2u) != 0) {
                        v = max(v, 0.0);
                    }
                    dst[o] = v;
                }
            }
        }
    }
}
