#version 450
// relu: forward y = max(x, 0); backward dx = dy · [x > 0] (the subgradient at 0 is 0, as in PyTorch).
// sqnet:variant relu_fwd -DBACKWARD=0
// sqnet:variant relu_bwd -DBACKWARD=1
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.reluPush).
layout(push_constant) uniform Push {
    uint n; // elements
} pc;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
#if BACKWARD
layout(std430, set = 0, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, set = 0, binding = 2) writeonly buffer DX { float dx[]; };
#else
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
#endif

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.n) {
        return;
    }
#if BACKWARD
    dx[i] = x[i] > 0.0 ? dy[i] : 0.0;
#else
    y[i] = max(x[i], 0.0);
#endif
}
