// conv_io.glsl: the bindings of conv.comp: the source image (FWD x, DATA dy) read as SRC(i), the weights as WGT(i)
// (texel or storage buffers, see SQNET_F32_IN) or, packed (PACKW), as vec4 texels WGT4(i), the bias and the output.
SQNET_F32_IN(0, SRC)
#if defined(PACKW) && PACKW
SQNET_VEC4_TEX(1, WGT4)
#else
SQNET_F32_IN(1, WGT)
#endif
layout(std430, set = 0, binding = 2) readonly buffer Bias_ { float bias[]; };
layout(std430, set = 0, binding = 3) buffer Out_ { float dst[]; }; // FWD: y; DATA: dx
#if defined(PACKW) && PACKW && !(defined(POOL) && POOL)
// The same output as vec4s (aliasing dst): the packed variants store four consecutive columns at once where they
// are four aligned floats of one image (conv.comp's STORE4).
layout(std430, set = 0, binding = 3) buffer Out4_ { vec4 dst4[]; };
#endif
