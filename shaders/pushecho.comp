#version 450
// pushecho: copies a full 128-byte push-constant block (the minimum every Vulkan device supports) to a buffer, so a
// test can check every byte of it arrives.
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: [32]uint32).
layout(push_constant) uniform Push {
    uint w[32];
} pc;

layout(std430, set = 0, binding = 0) writeonly buffer Out { uint data[]; } o;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < 32u) {
        o.data[i] = pc.w[i];
    }
}
