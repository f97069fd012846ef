#version 450
// gemm: C[M×N] = op(A)·op(B) (+ bias[N] broadcast over rows) (+ C when accumulating) (then ReLU), fp32, row-major.
//
// Register blocking without shared memory: each invocation owns an RM × (4·CN) block of C held in vec4
// accumulators. All invocations of a workgroup share the same RM rows (gl_WorkGroupID.y), so the loads of A are
// uniform (one scalar load broadcast to every lane on a SIMD CPU driver such as lavapipe), and each invocation
// loads its own 4·CN columns of B. K is walked in chunks of 4 (then a scalar tail), each B value feeding RM fused
// multiply-adds. Out-of-range rows and columns are clamped on load (no branch in the inner loop) and skipped on
// store, so any M, N, K ≥ 1 work.
//
// op(A) is read through strides: op(A)[m][k] = a[m·sam + k·sak] (sam = K, sak = 1 plain; sam = 1, sak = M
// transposed). AMODE 0 loads A as scalars (any shape), AMODE 1 as vec4 along k (plain A, K % 4 == 0), AMODE 2 as
// vec4 along m (transposed A, M % 4 == 0, RM % 4 == 0). op(B) is plain (B stored K×N, BT=0) or transposed (B
// stored N×K, BT=1); VEC4 loads B as vec4: BT=0 needs N % 4 == 0, BT=1 needs K % 4 == 0. The host picks the
// widest loads the shape allows (vec4 loads measured 25-30% faster on lavapipe than scalar ones). TEX (with
// VEC4) reads A and B through texel-buffer views (vec4 texels, float texels for AMODE 0) instead of storage buffers: lavapipe
// gathers texels with vector instructions but loads storage buffers lane by lane (1024³: 58 against 36 GFLOP/s).
//
// Every output element is a fixed-order sum, so the same inputs give the same bits.
//
// The loops over a block's rows and columns (bounds RM and CN, specialization constants) are marked [[unroll]]:
// the accumulators stay in registers only when every index into acc[][] is a constant. Mesa 22.3's lavapipe
// unrolled them unasked; Mesa 25.0's (Debian 13, LLVM 19) left the 32-row loops rolled, so acc[][] lived in
// memory: GEMM 1024³ with 32×16 blocks ran at 7.8 GFLOP/s there, 22 with the hint (Mesa 22.3 in the same
// minutes: 24 either way), and Mesa 22.3's compile time did not change (user CPU time with its shader cache off).
// Unrolling reorders no arithmetic. conv.comp, conv_filter_gemm.comp and conv_bwd_filter.comp do the same.
// sqnet:variant gemm_a0bn -DAMODE=0 -DBT=0 -DVEC4=0
// sqnet:variant gemm_a0bn4 -DAMODE=0 -DBT=0 -DVEC4=1
// sqnet:variant gemm_a0bt -DAMODE=0 -DBT=1 -DVEC4=0
// sqnet:variant gemm_a0bt4 -DAMODE=0 -DBT=1 -DVEC4=1
// sqnet:variant gemm_a1bn -DAMODE=1 -DBT=0 -DVEC4=0
// sqnet:variant gemm_a1bn4 -DAMODE=1 -DBT=0 -DVEC4=1
// sqnet:variant gemm_a1bt -DAMODE=1 -DBT=1 -DVEC4=0
// sqnet:variant gemm_a1bt4 -DAMODE=1 -DBT=1 -DVEC4=1
// sqnet:variant gemm_a2bn -DAMODE=2 -DBT=0 -DVEC4=0
// sqnet:variant gemm_a2bn4 -DAMODE=2 -DBT=0 -DVEC4=1
// sqnet:variant gemm_a2bt -DAMODE=2 -DBT=1 -DVEC4=0
// sqnet:variant gemm_a2bt4 -DAMODE=2 -DBT=1 -DVEC4=1
// sqnet:variant gemm_a0bn4t -DAMODE=0 -DBT=0 -DVEC4=1 -DTEX=1
// sqnet:variant gemm_a0bt4t -DAMODE=0 -DBT=1 -DVEC4=1 -DTEX=1
// sqnet:variant gemm_a1bn4t -DAMODE=1 -DBT=0 -DVEC4=1 -DTEX=1
// sqnet:variant gemm_a1bt4t -DAMODE=1 -DBT=1 -DVEC4=1 -DTEX=1
// sqnet:variant gemm_a2bn4t -DAMODE=2 -DBT=0 -DVEC4=1 -DTEX=1
// sqnet:variant gemm_a2bt4t -DAMODE=2 -DBT=1 -DVEC4=1 -DTEX=1
#include "common.glsl"
#extension GL_EXT_control_flow_attributes : require
SQNET_LOCAL_SIZE

layout(constant_id = 3) const uint RM = 16; // rows of C per invocation
layout(constant_id = 4) const uint CN = 4;  // groups of 4 columns of C per invocation
// STORE4: the host sets it where N % 4 == 0, C starts 16-byte aligned and a batch's products lie a multiple of 4
// floats apart, so that each group of four columns of a row is one aligned vec4 of C: stored as one vec4 instead
// of four floats (on lavapipe each store is a pass over the SIMD lanes, whatever its width). The same values.
layout(constant_id = 5) const bool STORE4 = false;

// Push constants (Go mirror: kernels.gemmPush).
layout(push_constant) uniform Push {
    uint M, N, K;
    uint sam, sak; // op(A)[m][k] = a[m*sam + k*sak]
    uint flags;    // 1: add bias[n]; 2: ReLU; 4: accumulate (C = C + op(A)·op(B) ...)
    uint sbz, scz; // batched: product z reads B from float z·sbz and writes C from float z·scz (A is shared)
} pc;

#if TEX
// B read as an R32G32B32A32_SFLOAT uniform texel buffer (needs VEC4), A as R32G32B32A32_SFLOAT (AMODE 1, 2) or
// R32_SFLOAT (AMODE 0) texels.
#if AMODE == 0
SQNET_F32_IN(0, A1)
#else
SQNET_VEC4_TEX(0, A4)
#endif
SQNET_VEC4_TEX(1, B4)
#else
#if AMODE == 0
layout(std430, set = 0, binding = 0) readonly buffer A_ { float a[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer A_ { vec4 a4[]; };
#endif
#if VEC4
layout(std430, set = 0, binding = 1) readonly buffer B_ { vec4 b4[]; };
#else
layout(std430, set = 0, binding = 1) readonly buffer B_ { float b[]; };
#endif
#define A1(i) a[i]
#define A4(i) a4[i]
#define B4(i) b4[i]
#endif
layout(std430, set = 0, binding = 2) readonly buffer Bias_ { float bias[]; };
layout(std430, set = 0, binding = 3) buffer C_ { float c[]; };
layout(std430, set = 0, binding = 3) buffer C4_ { vec4 c4[]; }; // the same C as vec4s (STORE4)

void main() {
    const uint M = pc.M, N = pc.N, K = pc.K;
    const uint row0 = gl_WorkGroupID.y * RM;
    const uint col0 = gl_GlobalInvocationID.x * (4 * CN);
    const uint bz = gl_WorkGroupID.z * pc.sbz, cz = gl_WorkGroupID.z * pc.scz; // this product's B and C
    if (row0 >= M || col0 >= N) {
        return;
    }
    // Clamped A row offsets: rows past M repeat row M-1 and are never stored.
    uint ar[RM];
    [[unroll]] for (uint r = 0; r < RM; r++) {
        ar[r] = min(row0 + r, M - 1) * pc.sam;
    }
    const uint sak = pc.sak;
    vec4 acc[RM][CN];
    [[unroll]] for (uint r = 0; r < RM; r++) {
        [[unroll]] for (uint j = 0; j < CN; j++) {
            acc[r][j] = vec4(0);
        }
    }
#if BT == 0 && VEC4
    // B stored K×N with N % 4 == 0: one vec4 load per 4 columns.
    const uint nv = N / 4;
    uint cb[CN];
    [[unroll]] for (uint j = 0; j < CN; j++) {
        cb[j] = min(col0 / 4 + j, nv - 1) + bz / 4;
    }
#else
    // Clamped B column indices, then the offset of column i's element k.
    uint cc[4 * CN];
    [[unroll]] for (uint i = 0; i < 4 * CN; i++) {
#if BT
        cc[i] = min(col0 + i, N - 1) * K + bz;
#else
        cc[i] = min(col0 + i, N - 1) + bz;
#endif
    }
#endif
    const uint K4 = K & ~3u;
    for (uint k = 0; k < K4; k += 4) {
        vec4 bv[4][CN]; // bv[kk][j] = op(B)[k+kk][col0+4j .. col0+4j+3]
#if BT == 0 && VEC4
        [[unroll]] for (uint kk = 0; kk < 4; kk++) {
            [[unroll]] for (uint j = 0; j < CN; j++) {
                bv[kk][j] = B4((k + kk) * nv + cb[j]);
            }
        }
#elif BT == 0
        [[unroll]] for (uint kk = 0; kk < 4; kk++) {
            [[unroll]] for (uint j = 0; j < CN; j++) {
                uint o = (k + kk) * N;
                bv[kk][j] = vec4(b[o + cc[4 * j]], b[o + cc[4 * j + 1]], b[o + cc[4 * j + 2]], b[o + cc[4 * j + 3]]);
            }
        }
#elif VEC4
        // Four columns × four k as four vec4 loads along k, transposed in registers.
        [[unroll]] for (uint j = 0; j < CN; j++) {
            vec4 t0 = B4((cc[4 * j] + k) / 4), t1 = B4((cc[4 * j + 1] + k) / 4);
            vec4 t2 = B4((cc[4 * j + 2] + k) / 4), t3 = B4((cc[4 * j + 3] + k) / 4);
            bv[0][j] = vec4(t0.x, t1.x, t2.x, t3.x);
            bv[1][j] = vec4(t0.y, t1.y, t2.y, t3.y);
            bv[2][j] = vec4(t0.z, t1.z, t2.z, t3.z);
            bv[3][j] = vec4(t0.w, t1.w, t2.w, t3.w);
        }
#else
        [[unroll]] for (uint kk = 0; kk < 4; kk++) {
            [[unroll]] for (uint j = 0; j < CN; j++) {
                uint o = k + kk;
                bv[kk][j] = vec4(b[cc[4 * j] + o], b[cc[4 * j + 1] + o], b[cc[4 * j + 2] + o], b[cc[4 * j + 3] + o]);
            }
        }
#endif
        // av[r] = op(A)[row r][k .. k+3]
        vec4 av[RM];
#if AMODE == 1
        [[unroll]] for (uint r = 0; r < RM; r++) {
            av[r] = A4((ar[r] + k) / 4);
        }
#elif AMODE == 2
        // A stored K×M with M % 4 == 0 and RM % 4 == 0: one vec4 holds four rows at one k.
        // A group past M is clamped to the last group (rows never stored).
        [[unroll]] for (uint g = 0; g < RM; g += 4) {
            const uint gs = (min(row0 + g, M - 4) + k * M) / 4, mv = M / 4;
            vec4 t0 = A4(gs), t1 = A4(gs + mv), t2 = A4(gs + 2 * mv), t3 = A4(gs + 3 * mv);
            av[g] = vec4(t0.x, t1.x, t2.x, t3.x);
            av[g + 1] = vec4(t0.y, t1.y, t2.y, t3.y);
            av[g + 2] = vec4(t0.z, t1.z, t2.z, t3.z);
            av[g + 3] = vec4(t0.w, t1.w, t2.w, t3.w);
        }
#else
        [[unroll]] for (uint r = 0; r < RM; r++) {
            uint o = ar[r] + k * sak;
            av[r] = vec4(A1(o), A1(o + sak), A1(o + 2 * sak), A1(o + 3 * sak));
        }
#endif
        [[unroll]] for (uint r = 0; r < RM; r++) {
            [[unroll]] for (uint j = 0; j < CN; j++) {
                vec4 s = acc[r][j];
                s = fma(vec4(av[r].x), bv[0][j], s);
                s = fma(vec4(av[r].y), bv[1][j], s);
                s = fma(vec4(av[r].z), bv[2][j], s);
                s = fma(vec4(av[r].w), bv[3][j], s);
                acc[r][j] = s;
            }
        }
    }
#if !(BT && VEC4)
    // Tail: the last K % 4 values of k (none for the BT VEC4 variant, which needs K % 4 == 0).
    for (uint k = K4; k < K; k++) {
        vec4 bv[CN];
        [[unroll]] for (uint j = 0; j < CN; j++) {
#if BT == 0 && VEC4
            bv[j] = B4(k * nv + cb[j]);
#elif BT == 0
            bv[j] = vec4(b[k * N + cc[4 * j]], b[k * N + cc[4 * j + 1]], b[k * N + cc[4 * j + 2]], b[k * N + cc[4 * j + 3]]);
#else
            bv[j] = vec4(b[cc[4 * j] + k], b[cc[4 * j + 1] + k], b[cc[4 * j + 2] + k], b[cc[4 * j + 3] + k]);
#endif
        }
        [[unroll]] for (uint r = 0; r < RM; r++) {
#if AMODE == 0
            float av = A1(ar[r] + k * sak);
#else
            const uint ai = ar[r] + k * sak;
            float av = A4(ai / 4)[ai % 4];
#endif
            [[unroll]] for (uint j = 0; j < CN; j++) {
                acc[r][j] = fma(vec4(av), bv[j], acc[r][j]);
            }
        }
    }
#endif
    const uint flags = pc.flags;
    [[unroll]] for (uint r = 0; r < RM; r++) {
        const uint row = row0 + r;
        if (row >= M) {
            break;
        }
        if (STORE4) {
            [[unroll]] for (uint j = 0; j < CN; j++) {
                const uint col = col0 + 4 * j;
                if (col < N) {
                    const uint o = (cz + row * N + col) / 4;
                    vec4 v = acc[r][j];
                    SQNET_EPILOGUE(v, c4[o], vec4(bias[col], bias[col + 1], bias[col + 2], bias[col + 3]), flags)
                    c4[o] = v;
                }
            }
            continue;
        }
        [[unroll]] for (uint j = 0; j < CN; j++) {
            [[unroll]] for (uint q = 0; q < 4; q++) {
                const uint col = col0 + 4 * j + q;
                if (col < N) {
                    float v = acc[r][j][q];
                    SQNET_EPILOGUE(v, c[cz + row * N + col], bias[col], flags)
                    c[cz + row * N + col] = v;
                }
            }
        }
    }
}
