// conv_io.glsl: the bindings of conv.comp. With TEX the source image (FWD x, DATA dy) and the
// weights are read through R32_SFLOAT uniform texel buffers — lavapipe gathers texels with vector instructions but
// loads storage buffers lane by lane — otherwise through storage buffers. SRC(i) and WGT(i) read float i.
#if TEX
layout(set = 0, binding = 0) uniform samplerBuffer srcT;
layout(set = 0, binding = 1) uniform samplerBuffer wT;
#define SRC(i) texelFetch(srcT, int(i)).x
#define WGT(i) texelFetch(wT, int(i)).x
#else
layout(std430, set = 0, binding = 0) readonly buffer In_ { float src[]; };
layout(std430, set = 0, binding = 1) readonly buffer W_ { float w[]; };
#define SRC(i) src[i]
#define WGT(i) w[i]
#endif
layout(std430, set = 0, binding = 2) readonly buffer Bias_ { float bias[]; };
layout(std430, set = 0, binding = 3) buffer Out_ { float dst[]; }; // FWD: y; DATA: dx
