#version 450
// iota: out[i] = base + i over a 3-D grid of nx×ny×nz elements, i = x + nx·(y + ny·z). Invocations outside the
// grid write nothing, so odd sizes that do not fill the last workgroup are exact. Used by the feature tests
// (workgroup bounds, odd dispatch sizes, large buffers bound in slices) and the self-test.
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels/vk tests, struct{Nx, Ny, Nz, Base uint32}).
layout(push_constant) uniform Push {
    uint nx;   // grid width
    uint ny;   // grid height
    uint nz;   // grid depth
    uint base; // value written at index 0
} pc;

layout(std430, set = 0, binding = 0) writeonly buffer Out { uint data[]; } o;

void main() {
    uvec3 g = gl_GlobalInvocationID;
    if (g.x >= pc.nx || g.y >= pc.ny || g.z >= pc.nz) {
        return;
    }
    uint i = g.x + pc.nx * (g.y + pc.ny * g.z);
    o.data[i] = pc.base + i;
}
