#version 450
// axpy: y[i] = a·x[i] + y[i] for i < n: kernels.Axpy (gradient accumulation), and the upload → shader → download
// round trip of the vk feature tests and the self-test (with a = 2 the product is exact, so the result is exact
// whether or not the device fuses the add).
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: struct{N uint32; A float32}).
layout(push_constant) uniform Push {
    uint n;  // elements
    float a; // scale of x
} pc;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer Y { float y[]; };

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
    y[i] = pc.a * x[i] + y[i];
}
