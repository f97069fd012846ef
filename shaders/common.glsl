// common.glsl: what every sqnet compute shader shares.
#extension GL_GOOGLE_include_directive : require
// Texel buffers are declared as textureBuffer and read with texelFetch without a sampler: a samplerBuffer is an
// OpTypeSampledImage of Dim Buffer, which SPIR-V 1.6 forbids and Mesa 25 warns about on every pipeline (a
// validation message, which fails the suite); the descriptor (a uniform texel buffer) and the fetch are the same.
#extension GL_EXT_samplerless_texture_functions : require

// Workgroup size comes from specialization constants 0, 1, 2 so the host picks it per device (vk.PipelineSpec.Local),
// never baked into the SPIR-V.
#define SQNET_LOCAL_SIZE layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

// sqnet_flat_id is the linear invocation index of a 1-D dispatch that the host folded into a 2-D grid of
// workgroups (kernels.Lib.groups1D) when one dimension's maxComputeWorkGroupCount was too small.
uint sqnet_flat_id() {
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

// SQNET_F32_IN(b, NAME) declares binding b as read-only fp32 data and a function NAME(i) returning float i of it:
// through an R32_SFLOAT uniform texel buffer (vk.Texel1) in a shader's TEX variants — lavapipe gathers texels with
// vector instructions but loads a storage buffer one SIMD lane at a time — else through a storage buffer (vk.Read).
// SQNET_VEC4_TEX(b, NAME) declares binding b as an R32G32B32A32_SFLOAT uniform texel buffer (vk.Texel4) and a
// function NAME(i) returning vec4 texel i of it (packed or four-wide operands of the TEX variants).
#define SQNET_VEC4_TEX(b, NAME) \
    layout(set = 0, binding = b) uniform textureBuffer NAME##_t; \
    vec4 NAME(uint i) { return texelFetch(NAME##_t, int(i)); }
#if defined(TEX) && TEX
#define SQNET_F32_IN(b, NAME) \
    layout(set = 0, binding = b) uniform textureBuffer NAME##_t; \
    float NAME(uint i) { return texelFetch(NAME##_t, int(i)).x; }
#else
#define SQNET_F32_IN(b, NAME) \
    layout(std430, set = 0, binding = b) readonly buffer NAME##_b { float NAME##_d[]; }; \
    float NAME(uint i) { return NAME##_d[i]; }
#endif

// SQNET_EPILOGUE(v, PREV, B, flags) applies the output flags of the GEMM-shaped kernels (Go: kernels.ConvOpts and
// GemmOpts) to a sum v, a float or a vec4: bit 4 adds what the output held (PREV, read only then), bit 1 the bias
// B, bit 2 ReLU — in that order, the one the CPU references take.
#define SQNET_EPILOGUE(v, PREV, B, flags) \
    if (((flags) & 4u) != 0) { \
        v = (PREV) + v; \
    } \
    if (((flags) & 1u) != 0) { \
        v += (B); \
    } \
    if (((flags) & 2u) != 0) { \
        v = max(v, 0.0); \
    }
