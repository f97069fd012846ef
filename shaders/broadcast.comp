#version 450
// broadcast: y[i] = s·x[i / d] for i < rows·d — every value of row r of y is s times x[r]. The backward pass of a
// row mean (global average pooling: s = 1/d) and of anything else that sums a row into one value.
// sqnet:variant broadcast_rows
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.broadcastPush).
layout(push_constant) uniform Push {
    uint n;  // rows·d
    uint d;  // values per row
    float s; // scale
} pc;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
    y[i] = pc.s * x[i / pc.d];
}
