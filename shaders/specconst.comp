#version 450
// specconst: writes its specialization constants and workgroup size, so a test can check that the values the host
// passes arrive exactly. One invocation's worth of output; every invocation writes the same values.
#include "common.glsl"
SQNET_LOCAL_SIZE

layout(constant_id = 3) const uint K = 7u;     // an unsigned constant
layout(constant_id = 4) const float F = 0.5;   // a float constant (bits compared exactly)
layout(constant_id = 5) const int I = -1;      // a signed constant

layout(std430, set = 0, binding = 0) writeonly buffer Out { uint data[]; } o;

void main() {
    if (gl_GlobalInvocationID != uvec3(0)) {
        return;
    }
    o.data[0] = K;
    o.data[1] = floatBitsToUint(F);
    o.data[2] = uint(I);
    o.data[3] = gl_WorkGroupSize.x;
    o.data[4] = gl_WorkGroupSize.y;
    o.data[5] = gl_WorkGroupSize.z;
}
