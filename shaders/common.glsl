// common.glsl: what every sqnet compute shader shares.
#extension GL_GOOGLE_include_directive : require

// Workgroup size comes from specialization constants 0, 1, 2 so the host picks it per device (vk.PipelineSpec.Local),
// never baked into the SPIR-V.
#define SQNET_LOCAL_SIZE layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

// sqnet_flat_id is the linear invocation index of a 1-D dispatch that the host folded into a 2-D grid of
// workgroups (kernels.Lib.groups1D) when one dimension's maxComputeWorkGroupCount was too small.
uint sqnet_flat_id() {
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}
