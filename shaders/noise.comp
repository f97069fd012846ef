#version 450
// noise: x̃ = clip(x + u, 0, 1) with u ~ U(−ε, ε) i.i.d. per element (noise_uniform), or u = σ·z with z ~ N(0, 1)
// by Box–Muller (noise_gauss); and noise_bits, the raw Philox4x32-10 words (counter (c0 + block, c1, c2, c3)), used
// to test the RNG against its known answers and by anyone needing raw random bits. One invocation per Philox block
// of four elements; element i takes word i % 4 of Philox(counter = (i / 4, stream, step, 0), key = seed).
// The _dyn variants read the step (counter word 2) from a one-word buffer instead of the push constants, so a
// training step recorded once draws fresh noise every replay when the host rewrites that word.
// noise_uniform_ex (EXAMPLE) draws per example instead: n = B·D elements, D = c0 per example; element j of row r
// takes word j % 4 of Philox(counter = (j / 4, stream, ids[r], attempt)) with the attempt read from a one-word
// buffer — kernels.ExampleRNG's streams, so an example draws the same noise in any batch, slot or shard.
// sqnet:variant noise_uniform -DMODE=0 -DDYNAMIC=0
// sqnet:variant noise_gauss -DMODE=1 -DDYNAMIC=0
// sqnet:variant noise_bits -DMODE=2 -DDYNAMIC=0
// sqnet:variant noise_uniform_dyn -DMODE=0 -DDYNAMIC=1
// sqnet:variant noise_gauss_dyn -DMODE=1 -DDYNAMIC=1
// sqnet:variant noise_uniform4 -DMODE=0 -DDYNAMIC=0 -DVEC4=1
// sqnet:variant noise_gauss4 -DMODE=1 -DDYNAMIC=0 -DVEC4=1
// sqnet:variant noise_uniform_dyn4 -DMODE=0 -DDYNAMIC=1 -DVEC4=1
// sqnet:variant noise_gauss_dyn4 -DMODE=1 -DDYNAMIC=1 -DVEC4=1
// sqnet:variant noise_uniform_ex -DMODE=0 -DDYNAMIC=1 -DEXAMPLE=1
// sqnet:variant noise_uniform_ex4 -DMODE=0 -DDYNAMIC=1 -DEXAMPLE=1 -DVEC4=1
// The VEC4 variants (n % 4 == 0, 16-byte aligned ranges; kernels.vec4Variant) read and write each block's four
// elements as one vec4, with the same operations per element (the same bits): on lavapipe a storage-buffer access
// walks the SIMD lanes one by one whatever its width. noise_uniform_ex4 needs D % 4 == 0, so blocks never straddle
// two examples and block b is vec4 b.
#include "common.glsl"
#include "philox.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.noisePush).
layout(push_constant) uniform Push {
    uint n;      // elements (words for noise_bits)
    uint seedLo; // key word 0
    uint seedHi; // key word 1
    uint c0;     // counter word 0 of block 0 (0 for the noise variants; EXAMPLE: D, the elements per example)
    uint c1;     // counter word 1: stream
    uint c2;     // counter word 2: step (the _dyn variants read it from a buffer; EXAMPLE: the example id)
    uint c3;     // counter word 3 (0 for the noise variants)
    float scale; // ε (uniform) or σ (gauss); unused by noise_bits
} pc;

#if MODE == 2
layout(std430, set = 0, binding = 0) writeonly buffer Out { uint bits[]; };
#elif defined(VEC4) && VEC4
layout(std430, set = 0, binding = 0) readonly buffer X { vec4 x4[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { vec4 y4[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
#endif
#if DYNAMIC
// Go mirror: the uint32 the host writes before each submit (kernels.UniformNoiseDynamic).
layout(std430, set = 0, binding = 2) readonly buffer Step { uint step; } st;
#define STEP st.step
#else
#define STEP pc.c2
#endif
#if defined(EXAMPLE) && EXAMPLE
// Go mirror: kernels.UniformNoiseExample's ids, one uint32 per example.
layout(std430, set = 0, binding = 3) readonly buffer Ids { uint ids[]; };
#endif

void main() {
    uint b = sqnet_flat_id();
#if defined(EXAMPLE) && EXAMPLE
    // Block b is block jb of example row; its elements are row·D + 4·jb + j for 4·jb + j < D.
    uint per = (pc.c0 + 3u) / 4u;
    if (b >= (pc.n / pc.c0) * per) {
        return;
    }
    uint row = b / per;
    uint jb = b - row * per;
    uvec4 w = philox4x32_10(uvec4(jb, pc.c1, ids[row], STEP), uvec2(pc.seedLo, pc.seedHi));
#else
    if (b >= (pc.n + 3u) / 4u) {
        return;
    }
    uvec4 w = philox4x32_10(uvec4(pc.c0 + b, pc.c1, STEP, pc.c3), uvec2(pc.seedLo, pc.seedHi));
#endif
#if MODE == 1
    vec4 z = philox_normal4(w);
#endif
#if defined(VEC4) && VEC4 && MODE != 2
    // n is a multiple of 4: the block is whole.
#if MODE == 0
    precise vec4 u = pc.scale * vec4(philox_symmetric(w.x), philox_symmetric(w.y), philox_symmetric(w.z),
                                     philox_symmetric(w.w));
#else
    precise vec4 u = pc.scale * z;
#endif
    precise vec4 s = x4[b] + u;
    y4[b] = clamp(s, 0.0, 1.0);
#else
    for (uint j = 0u; j < 4u; j++) {
#if defined(EXAMPLE) && EXAMPLE
        if (4u * jb + j >= pc.c0) {
            break;
        }
        uint i = row * pc.c0 + 4u * jb + j;
#else
        uint i = 4u * b + j;
        if (i >= pc.n) {
            break;
        }
#endif
#if MODE == 2
        bits[i] = w[j];
#else
#if MODE == 0
        // ε·v is one rounding, the sum another; precise forbids fusing them into an fma the Go reference lacks.
        precise float u = pc.scale * philox_symmetric(w[j]);
#else
        precise float u = pc.scale * z[j];
#endif
        precise float s = x[i] + u;
        y[i] = clamp(s, 0.0, 1.0);
#endif
    }
#endif
}
