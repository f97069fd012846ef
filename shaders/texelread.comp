#version 450
// texelread: reads a vec4 and a float texel buffer (vk.Texel4, vk.Texel1) so a test can check every texel arrives
// from the right place: out[i] = t4[i/4][i%4] + 1000·t1[i] for i < n.
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: uint32).
layout(push_constant) uniform Push {
    uint n;
} pc;

layout(set = 0, binding = 0) uniform textureBuffer t4;
layout(set = 0, binding = 1) uniform textureBuffer t1;
layout(std430, set = 0, binding = 2) writeonly buffer Out { float o[]; };

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i < pc.n) {
        o[i] = texelFetch(t4, int(i / 4))[i % 4] + 1000.0 * texelFetch(t1, int(i)).x;
    }
}
