// conv_filter_io.glsl: the bindings of the weight-gradient shaders (conv_filter_gemm.comp, conv_bwd_filter.comp).
// With TEX the input x and the output gradient dy are read through R32_SFLOAT uniform texel buffers (see
// conv_io.glsl for why), otherwise through storage buffers. X(i) and DY(i) read float i.
#if TEX
layout(set = 0, binding = 0) uniform samplerBuffer xT;
layout(set = 0, binding = 1) uniform samplerBuffer dyT;
#define X(i) texelFetch(xT, int(i)).x
#define DY(i) texelFetch(dyT, int(i)).x
#else
layout(std430, set = 0, binding = 0) readonly buffer X_ { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer DY_ { float dy[]; };
#define X(i) x[i]
#define DY(i) dy[i]
#endif
layout(std430, set = 0, binding = 2) buffer DW_ { float dwt[]; };
