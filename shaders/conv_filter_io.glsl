// conv_filter_io.glsl: the bindings of the weight-gradient shaders (conv_filter_gemm.comp, conv_bwd_filter.comp):
// the input read as X(i), the output gradient as DY(i) (texel or storage buffers, see SQNET_F32_IN), and dw.
SQNET_F32_IN(0, X)
#if defined(DY4) && DY4
SQNET_VEC4_TEX(1, DYV)
#else
SQNET_F32_IN(1, DY)
#endif
layout(std430, set = 0, binding = 2) buffer DW_ { float dwt[]; };
