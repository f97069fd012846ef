package vk

/*
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

// Why this file exists: vulkan-go converts a Go slice of structs (VkSubmitInfo, VkWriteDescriptorSet,
// VkComputePipelineCreateInfo, VkMemoryBarrier, VkBufferCopy, VkDescriptorSetLayoutBinding, VkPushConstantRange,
// VkDescriptorPoolSize, and the output arrays of the vkEnumerate* and vkGet*Properties calls) into C memory whose only owner is a finalizer set on a local variable of its converter.
// That variable is unreachable as soon as the converter returns, so a garbage collection that finishes while the
// driver is still inside the call frees the memory under it. SwiftShader spends milliseconds compiling in
// vkCreateComputePipelines, and CI crashed there (SIGSEGV inside the driver, ~1 run in 6). These wrappers build the
// same structs on the C stack instead, so nothing the driver reads is owned by Go. (A create info's plain Go slice,
// like vkCreateShaderModule's SPIR-V, is only pointed at, and was freed under the driver the same way once: that
// slice now crosses as a cgo argument, which stays put for the call.) Instance and device creation still go through
// vulkan-go: once per process or device, before any work.

typedef struct {
	PFN_vkCreateComputePipelines createComputePipelines;
	PFN_vkCreateShaderModule createShaderModule;
	PFN_vkCreateDescriptorSetLayout createDescriptorSetLayout;
	PFN_vkCreatePipelineLayout createPipelineLayout;
	PFN_vkCreateDescriptorPool createDescriptorPool;
	PFN_vkQueueSubmit queueSubmit;
	PFN_vkUpdateDescriptorSets updateDescriptorSets;
	PFN_vkCmdPipelineBarrier cmdPipelineBarrier;
	PFN_vkCmdCopyBuffer cmdCopyBuffer;
	PFN_vkGetPhysicalDeviceQueueFamilyProperties getQueueFamilyProperties;
	PFN_vkEnumerateDeviceExtensionProperties deviceExtensions;
} sq_procs;

// sq_load_procs fills p through vkGetInstanceProcAddr; the loader's trampolines dispatch on the object passed, so
// one table serves every device of the instance. It returns the name of the first missing function, or NULL.
static const char* sq_load_procs(void* gipa, void* instance, sq_procs* p) {
	PFN_vkGetInstanceProcAddr g = (PFN_vkGetInstanceProcAddr)gipa;
	VkInstance in = (VkInstance)instance;
#define SQ_LOAD(field, name) if (!(p->field = (void*)g(in, name))) return name;
	SQ_LOAD(createComputePipelines, "vkCreateComputePipelines")
	SQ_LOAD(createShaderModule, "vkCreateShaderModule")
	SQ_LOAD(createDescriptorSetLayout, "vkCreateDescriptorSetLayout")
	SQ_LOAD(createPipelineLayout, "vkCreatePipelineLayout")
	SQ_LOAD(createDescriptorPool, "vkCreateDescriptorPool")
	SQ_LOAD(queueSubmit, "vkQueueSubmit")
	SQ_LOAD(updateDescriptorSets, "vkUpdateDescriptorSets")
	SQ_LOAD(cmdPipelineBarrier, "vkCmdPipelineBarrier")
	SQ_LOAD(cmdCopyBuffer, "vkCmdCopyBuffer")
	SQ_LOAD(getQueueFamilyProperties, "vkGetPhysicalDeviceQueueFamilyProperties")
	SQ_LOAD(deviceExtensions, "vkEnumerateDeviceExtensionProperties")
#undef SQ_LOAD
	return NULL;
}

#define SQ_MAX_SPEC 64
#define SQ_MAX_BINDINGS 16

// sq_create_compute_pipeline creates one pipeline from module's "main" with n 4-byte specialization constants.
static VkResult sq_create_compute_pipeline(const sq_procs* p, void* device, uint64_t cache, uint64_t module,
		uint64_t layout, uint32_t n, const uint32_t* ids, const uint32_t* data, uint64_t* out) {
	if (n > SQ_MAX_SPEC) return VK_ERROR_INITIALIZATION_FAILED;
	VkSpecializationMapEntry entries[SQ_MAX_SPEC];
	uint32_t values[SQ_MAX_SPEC];
	for (uint32_t i = 0; i < n; i++) {
		entries[i].constantID = ids[i];
		entries[i].offset = 4 * i;
		entries[i].size = 4;
		values[i] = data[i];
	}
	VkSpecializationInfo si;
	memset(&si, 0, sizeof(si));
	si.mapEntryCount = n;
	si.pMapEntries = entries;
	si.dataSize = 4 * (size_t)n;
	si.pData = values;
	VkComputePipelineCreateInfo ci;
	memset(&ci, 0, sizeof(ci));
	ci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
	ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
	ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
	ci.stage.module = (VkShaderModule)module;
	ci.stage.pName = "main";
	ci.stage.pSpecializationInfo = n ? &si : NULL;
	ci.layout = (VkPipelineLayout)layout;
	VkPipeline pipe = VK_NULL_HANDLE;
	VkResult r = p->createComputePipelines((VkDevice)device, (VkPipelineCache)cache, 1, &ci, NULL, &pipe);
	*out = (uint64_t)pipe;
	return r;
}

// sq_create_shader_module creates a shader module from size bytes of SPIR-V.
static VkResult sq_create_shader_module(const sq_procs* p, void* device, const uint32_t* code, size_t size,
		uint64_t* out) {
	VkShaderModuleCreateInfo ci;
	memset(&ci, 0, sizeof(ci));
	ci.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
	ci.codeSize = size;
	ci.pCode = code;
	VkShaderModule m = VK_NULL_HANDLE;
	VkResult r = p->createShaderModule((VkDevice)device, &ci, NULL, &m);
	*out = r == VK_SUCCESS ? (uint64_t)m : 0; // a failed call leaves its output undefined
	return r;
}

// sq_create_layouts creates a compute pipeline's descriptor set layout — bindings 0..n-1, one descriptor each,
// of the given types — and its pipeline layout, with push bytes of push constants (none when 0).
static VkResult sq_create_layouts(const sq_procs* p, void* device, uint32_t n, const uint32_t* types,
		uint32_t push, uint64_t* setLayout, uint64_t* layout) {
	VkDescriptorSetLayoutBinding binds[SQ_MAX_BINDINGS];
	if (n > SQ_MAX_BINDINGS) return VK_ERROR_INITIALIZATION_FAILED;
	memset(binds, 0, sizeof(binds));
	for (uint32_t i = 0; i < n; i++) {
		binds[i].binding = i;
		binds[i].descriptorType = (VkDescriptorType)types[i];
		binds[i].descriptorCount = 1;
		binds[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
	}
	VkDescriptorSetLayoutCreateInfo si;
	memset(&si, 0, sizeof(si));
	si.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
	si.bindingCount = n;
	si.pBindings = binds;
	VkDescriptorSetLayout sl = VK_NULL_HANDLE;
	VkResult r = p->createDescriptorSetLayout((VkDevice)device, &si, NULL, &sl);
	*setLayout = r == VK_SUCCESS ? (uint64_t)sl : 0;
	*layout = 0;
	if (r != VK_SUCCESS) return r;
	VkPushConstantRange pr;
	memset(&pr, 0, sizeof(pr));
	pr.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
	pr.size = push;
	VkPipelineLayoutCreateInfo li;
	memset(&li, 0, sizeof(li));
	li.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
	li.setLayoutCount = 1;
	li.pSetLayouts = &sl;
	li.pushConstantRangeCount = push ? 1 : 0;
	li.pPushConstantRanges = push ? &pr : NULL;
	VkPipelineLayout pl = VK_NULL_HANDLE;
	r = p->createPipelineLayout((VkDevice)device, &li, NULL, &pl);
	*layout = r == VK_SUCCESS ? (uint64_t)pl : 0;
	return r;
}

// sq_create_descriptor_pool creates a pool of maxSets sets whose sets can be freed one by one, with per storage
// buffer and uniform texel buffer descriptors of each.
static VkResult sq_create_descriptor_pool(const sq_procs* p, void* device, uint32_t maxSets, uint32_t per,
		uint64_t* out) {
	VkDescriptorPoolSize sizes[2];
	sizes[0].type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
	sizes[0].descriptorCount = per;
	sizes[1].type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
	sizes[1].descriptorCount = per;
	VkDescriptorPoolCreateInfo ci;
	memset(&ci, 0, sizeof(ci));
	ci.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
	ci.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;
	ci.maxSets = maxSets;
	ci.poolSizeCount = 2;
	ci.pPoolSizes = sizes;
	VkDescriptorPool pool = VK_NULL_HANDLE;
	VkResult r = p->createDescriptorPool((VkDevice)device, &ci, NULL, &pool);
	*out = r == VK_SUCCESS ? (uint64_t)pool : 0;
	return r;
}

// sq_queue_submit submits one command buffer, signalling fence.
static VkResult sq_queue_submit(const sq_procs* p, void* queue, void* cb, uint64_t fence) {
	VkCommandBuffer cmd = (VkCommandBuffer)cb;
	VkSubmitInfo si;
	memset(&si, 0, sizeof(si));
	si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
	si.commandBufferCount = 1;
	si.pCommandBuffers = &cmd;
	return p->queueSubmit((VkQueue)queue, 1, &si, (VkFence)fence);
}


// sq_write_descriptors points bindings 0..n-1 of set at the given buffer ranges: storage buffers, or uniform
// texel buffers through views[i] where texel[i] is set.
static void sq_write_descriptors(const sq_procs* p, void* device, uint64_t set, uint32_t n,
		const uint64_t* bufs, const uint64_t* offs, const uint64_t* sizes, const uint8_t* texel,
		const uint64_t* views) {
	if (n > SQ_MAX_BINDINGS) return;
	VkDescriptorBufferInfo infos[SQ_MAX_BINDINGS];
	VkBufferView tviews[SQ_MAX_BINDINGS];
	VkWriteDescriptorSet writes[SQ_MAX_BINDINGS];
	memset(writes, 0, sizeof(writes));
	for (uint32_t i = 0; i < n; i++) {
		writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
		writes[i].dstSet = (VkDescriptorSet)set;
		writes[i].dstBinding = i;
		writes[i].descriptorCount = 1;
		if (texel[i]) {
			tviews[i] = (VkBufferView)views[i];
			writes[i].descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
			writes[i].pTexelBufferView = &tviews[i];
		} else {
			infos[i].buffer = (VkBuffer)bufs[i];
			infos[i].offset = offs[i];
			infos[i].range = sizes[i];
			writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
			writes[i].pBufferInfo = &infos[i];
		}
	}
	p->updateDescriptorSets((VkDevice)device, n, writes, 0, NULL);
}

// sq_memory_barrier records one global memory barrier.
static void sq_memory_barrier(const sq_procs* p, void* cb, uint32_t srcStages, uint32_t dstStages,
		uint32_t srcAccess, uint32_t dstAccess) {
	VkMemoryBarrier b;
	memset(&b, 0, sizeof(b));
	b.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
	b.srcAccessMask = srcAccess;
	b.dstAccessMask = dstAccess;
	p->cmdPipelineBarrier((VkCommandBuffer)cb, srcStages, dstStages, 0, 1, &b, 0, NULL, 0, NULL);
}

// sq_copy_buffer records one buffer-to-buffer copy.
static void sq_copy_buffer(const sq_procs* p, void* cb, uint64_t src, uint64_t dst, uint64_t srcOff,
		uint64_t dstOff, uint64_t size) {
	VkBufferCopy c;
	c.srcOffset = srcOff;
	c.dstOffset = dstOff;
	c.size = size;
	p->cmdCopyBuffer((VkCommandBuffer)cb, (VkBuffer)src, (VkBuffer)dst, 1, &c);
}

#define SQ_MAX_FAMILIES 64

// sq_queue_families writes, for each queue family (at most SQ_MAX_FAMILIES), its flags and timestamp bits, and
// returns how many there are.
static uint32_t sq_queue_families(const sq_procs* p, void* physical, uint32_t* flags, uint32_t* tsBits) {
	VkQueueFamilyProperties props[SQ_MAX_FAMILIES];
	uint32_t n = SQ_MAX_FAMILIES;
	p->getQueueFamilyProperties((VkPhysicalDevice)physical, &n, props);
	for (uint32_t i = 0; i < n; i++) {
		flags[i] = props[i].queueFlags;
		tsBits[i] = props[i].timestampValidBits;
	}
	return n;
}

// sq_device_has_extension reports whether physical offers the device extension name.
static int sq_device_has_extension(const sq_procs* p, void* physical, const char* name) {
	uint32_t n = 0;
	if (p->deviceExtensions((VkPhysicalDevice)physical, NULL, &n, NULL) != VK_SUCCESS) return 0;
	VkExtensionProperties* props = calloc(n ? n : 1, sizeof(*props));
	if (!props) return 0;
	VkResult r = p->deviceExtensions((VkPhysicalDevice)physical, NULL, &n, props);
	int found = 0;
	if (r == VK_SUCCESS || r == VK_INCOMPLETE)
		for (uint32_t i = 0; i < n && !found; i++) found = strcmp(props[i].extensionName, name) == 0;
	free(props);
	return found;
}

// sq_instance_layers copies up to max layer names (each VK_MAX_EXTENSION_NAME_SIZE bytes) into names and returns
// the count, or a negative VkResult.
static int64_t sq_instance_layers(void* gipa, char* names, uint32_t max) {
	PFN_vkEnumerateInstanceLayerProperties f = (PFN_vkEnumerateInstanceLayerProperties)
		((PFN_vkGetInstanceProcAddr)gipa)(NULL, "vkEnumerateInstanceLayerProperties");
	if (!f) return VK_ERROR_INITIALIZATION_FAILED;
	uint32_t n = 0;
	VkResult r = f(&n, NULL);
	if (r != VK_SUCCESS) return r;
	VkLayerProperties* props = calloc(n ? n : 1, sizeof(*props));
	if (!props) return VK_ERROR_OUT_OF_HOST_MEMORY;
	r = f(&n, props);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) { free(props); return r; }
	if (n > max) n = max;
	for (uint32_t i = 0; i < n; i++) memcpy(names + i * VK_MAX_EXTENSION_NAME_SIZE, props[i].layerName, VK_MAX_EXTENSION_NAME_SIZE);
	free(props);
	return n;
}

// sq_instance_extensions does the same for the extensions of layer (NULL: the loader's and drivers').
static int64_t sq_instance_extensions(void* gipa, const char* layer, char* names, uint32_t max) {
	PFN_vkEnumerateInstanceExtensionProperties f = (PFN_vkEnumerateInstanceExtensionProperties)
		((PFN_vkGetInstanceProcAddr)gipa)(NULL, "vkEnumerateInstanceExtensionProperties");
	if (!f) return VK_ERROR_INITIALIZATION_FAILED;
	uint32_t n = 0;
	VkResult r = f(layer, &n, NULL);
	if (r != VK_SUCCESS) return r;
	VkExtensionProperties* props = calloc(n ? n : 1, sizeof(*props));
	if (!props) return VK_ERROR_OUT_OF_HOST_MEMORY;
	r = f(layer, &n, props);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) { free(props); return r; }
	if (n > max) n = max;
	for (uint32_t i = 0; i < n; i++) memcpy(names + i * VK_MAX_EXTENSION_NAME_SIZE, props[i].extensionName, VK_MAX_EXTENSION_NAME_SIZE);
	free(props);
	return n;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	vulkan "github.com/vulkan-go/vulkan"
)

// procs is an instance's table of the Vulkan functions sqnet calls without vulkan-go (see the comment at the top
// of this file). It lives in C memory so the wrappers can read it without Go pointers crossing the boundary.
type procs struct{ p *C.sq_procs }

func loadProcs(inst vulkan.Instance) (procs, error) {
	p := (*C.sq_procs)(C.calloc(1, C.size_t(unsafe.Sizeof(C.sq_procs{}))))
	if p == nil {
		return procs{}, fmt.Errorf("load Vulkan functions: out of host memory")
	}
	if missing := C.sq_load_procs(gipaPtr(), unsafe.Pointer(inst), p); missing != nil {
		C.free(unsafe.Pointer(p))
		return procs{}, fmt.Errorf("load Vulkan functions: the loader has no %s", C.GoString(missing))
	}
	return procs{p}, nil
}

func (t *procs) free() {
	if t.p != nil {
		C.free(unsafe.Pointer(t.p))
		t.p = nil
	}
}

// maxSpecConsts bounds the specialization constants of one pipeline (the C wrapper's stack array).
const maxSpecConsts = C.SQ_MAX_SPEC

// createComputePipeline creates a pipeline running module's "main" with the given specialization constants.
func (t procs) createComputePipeline(dev vulkan.Device, cache vulkan.PipelineCache, module vulkan.ShaderModule,
	layout vulkan.PipelineLayout, consts []SpecConst) (vulkan.Pipeline, vulkan.Result) {
	if len(consts) > maxSpecConsts {
		return vulkan.NullPipeline, vulkan.ErrorInitializationFailed
	}
	var ids, data [maxSpecConsts]C.uint32_t
	for i, c := range consts {
		ids[i], data[i] = C.uint32_t(c.ID), C.uint32_t(c.Bits)
	}
	var out C.uint64_t
	r := C.sq_create_compute_pipeline(t.p, unsafe.Pointer(dev), C.uint64_t(handleBits(cache)),
		C.uint64_t(handleBits(module)), C.uint64_t(handleBits(layout)), C.uint32_t(len(consts)), &ids[0], &data[0], &out)
	return fromBits[vulkan.Pipeline](uint64(out)), vulkan.Result(r)
}

// createShaderModule creates a shader module from SPIR-V. code is passed as a cgo argument, so it stays put for the
// call (vulkan-go kept only a C pointer into the Go slice, which a collection during the call could free).
func (t procs) createShaderModule(dev vulkan.Device, code []byte) (vulkan.ShaderModule, vulkan.Result) {
	if len(code) == 0 {
		return vulkan.NullShaderModule, vulkan.ErrorInitializationFailed
	}
	var out C.uint64_t
	r := C.sq_create_shader_module(t.p, unsafe.Pointer(dev), (*C.uint32_t)(unsafe.Pointer(&code[0])),
		C.size_t(len(code)), &out)
	return fromBits[vulkan.ShaderModule](uint64(out)), vulkan.Result(r)
}

// createLayouts creates a compute pipeline's descriptor set layout (binding i of types[i], at most MaxBindings)
// and its pipeline layout with push bytes of push constants; a handle not created is null.
func (t procs) createLayouts(dev vulkan.Device, types []vulkan.DescriptorType, push uint32) (vulkan.DescriptorSetLayout,
	vulkan.PipelineLayout, vulkan.Result) {
	var ts [C.SQ_MAX_BINDINGS]C.uint32_t
	if len(types) > len(ts) {
		return vulkan.NullDescriptorSetLayout, vulkan.NullPipelineLayout, vulkan.ErrorInitializationFailed
	}
	for i, ty := range types {
		ts[i] = C.uint32_t(ty)
	}
	var sl, pl C.uint64_t
	r := C.sq_create_layouts(t.p, unsafe.Pointer(dev), C.uint32_t(len(types)), &ts[0], C.uint32_t(push), &sl, &pl)
	return fromBits[vulkan.DescriptorSetLayout](uint64(sl)), fromBits[vulkan.PipelineLayout](uint64(pl)),
		vulkan.Result(r)
}

// createDescriptorPool creates a pool of maxSets freeable sets with per storage-buffer and per uniform-texel-buffer
// descriptors.
func (t procs) createDescriptorPool(dev vulkan.Device, maxSets, per uint32) (vulkan.DescriptorPool, vulkan.Result) {
	var out C.uint64_t
	r := C.sq_create_descriptor_pool(t.p, unsafe.Pointer(dev), C.uint32_t(maxSets), C.uint32_t(per), &out)
	return fromBits[vulkan.DescriptorPool](uint64(out)), vulkan.Result(r)
}

func (t procs) queueSubmit(q vulkan.Queue, cb vulkan.CommandBuffer, fence vulkan.Fence) vulkan.Result {
	return vulkan.Result(C.sq_queue_submit(t.p, unsafe.Pointer(q), unsafe.Pointer(cb), C.uint64_t(handleBits(fence))))
}

// The C wrapper's arrays must hold every binding a pipeline may have.
var _ [C.SQ_MAX_BINDINGS - MaxBindings]struct{}

// writeDescriptors points bindings 0..len(b)-1 of set at b (at most MaxBindings): storage buffers, or the texel
// views in views where acc says a binding is a texel binding.
func (t procs) writeDescriptors(dev vulkan.Device, set vulkan.DescriptorSet, b []bindKey, acc []Access,
	views []vulkan.BufferView) {
	var bufs, offs, sizes, vs [C.SQ_MAX_BINDINGS]C.uint64_t
	var texel [C.SQ_MAX_BINDINGS]C.uint8_t
	n := min(len(b), len(bufs))
	for i := range n {
		bufs[i], offs[i], sizes[i] = C.uint64_t(handleBits(b[i].buf)), C.uint64_t(b[i].off), C.uint64_t(b[i].size)
		if acc[i].texelSize() != 0 {
			texel[i], vs[i] = 1, C.uint64_t(handleBits(views[i]))
		}
	}
	C.sq_write_descriptors(t.p, unsafe.Pointer(dev), C.uint64_t(handleBits(set)), C.uint32_t(n), &bufs[0],
		&offs[0], &sizes[0], &texel[0], &vs[0])
}

func (t procs) memoryBarrier(cb vulkan.CommandBuffer, src, dst vulkan.PipelineStageFlags, srcAccess,
	dstAccess vulkan.AccessFlags) {
	C.sq_memory_barrier(t.p, unsafe.Pointer(cb), C.uint32_t(src), C.uint32_t(dst), C.uint32_t(srcAccess),
		C.uint32_t(dstAccess))
}

func (t procs) copyBuffer(cb vulkan.CommandBuffer, src, dst vulkan.Buffer, srcOff, dstOff, size uint64) {
	C.sq_copy_buffer(t.p, unsafe.Pointer(cb), C.uint64_t(handleBits(src)), C.uint64_t(handleBits(dst)),
		C.uint64_t(srcOff), C.uint64_t(dstOff), C.uint64_t(size))
}

// queueFamily is what sqnet reads of a queue family.
type queueFamily struct {
	flags  vulkan.QueueFlags
	tsBits uint32
}

func (t procs) queueFamilies(pd vulkan.PhysicalDevice) []queueFamily {
	var flags, ts [C.SQ_MAX_FAMILIES]C.uint32_t
	n := int(C.sq_queue_families(t.p, unsafe.Pointer(pd), &flags[0], &ts[0]))
	out := make([]queueFamily, n)
	for i := range out {
		out[i] = queueFamily{flags: vulkan.QueueFlags(flags[i]), tsBits: uint32(ts[i])}
	}
	return out
}

func (t procs) deviceHasExtension(pd vulkan.PhysicalDevice, name string) bool {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return C.sq_device_has_extension(t.p, unsafe.Pointer(pd), cn) != 0
}

// maxNames bounds the layers or extensions listed (far more than any loader reports).
const maxNames = 512

// enumerateNames returns the instance layers (layer == nil, layers true), or the instance extensions of layer
// ("" = the loader's and drivers').
func enumerateNames(layers bool, layer string) ([]string, error) {
	const w = C.VK_MAX_EXTENSION_NAME_SIZE
	buf := (*C.char)(C.calloc(maxNames, w))
	if buf == nil {
		return nil, fmt.Errorf("enumerate: out of host memory")
	}
	defer C.free(unsafe.Pointer(buf))
	var n C.int64_t
	what := "vkEnumerateInstanceLayerProperties"
	if layers {
		n = C.sq_instance_layers(gipaPtr(), buf, maxNames)
	} else {
		what = "vkEnumerateInstanceExtensionProperties"
		var cl *C.char
		if layer != "" {
			cl = C.CString(layer)
			defer C.free(unsafe.Pointer(cl))
		}
		n = C.sq_instance_extensions(gipaPtr(), cl, buf, maxNames)
	}
	if n < 0 {
		return nil, resultError(what, vulkan.Result(n))
	}
	names := make([]string, n)
	for i := range names {
		names[i] = C.GoString((*C.char)(unsafe.Add(unsafe.Pointer(buf), i*w)))
	}
	return names, nil
}

// handleBits is the 64-bit value of a Vulkan handle as vulkan-go stores it: every handle, dispatchable or not, is
// a pointer-sized C value on the 64-bit platforms sqnet builds for (vk_null64.go in vulkan-go).
func handleBits[H any](h H) uint64 {
	return *(*uint64)(unsafe.Pointer(&h))
}

// fromBits is handleBits' inverse.
func fromBits[H any](v uint64) H { return *(*H)(unsafe.Pointer(&v)) }
