#version 450
// addscalar: buf[i] += v for i < n, in place. Chained many times in one command buffer it proves barriers between
// dependent dispatches; with n = 0 it is the empty dispatch whose overhead the vk benchmarks measure.
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: struct{N uint32; V float32}).
layout(push_constant) uniform Push {
    uint n;  // elements
    float v; // value added
} pc;

layout(std430, set = 0, binding = 0) buffer Buf { float data[]; };

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n) {
        return;
    }
    data[i] += pc.v;
}
