package vk

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

// The Vulkan loader is process-global by nature: vulkan-go keeps one table of function pointers, so we keep one
// handle and one vkGetInstanceProcAddr here and load them once.
static void* sq_lib;
static PFN_vkGetInstanceProcAddr sq_gipa;

static const char* sq_open(const char* name) {
	sq_lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!sq_lib) return dlerror();
	sq_gipa = (PFN_vkGetInstanceProcAddr)dlsym(sq_lib, "vkGetInstanceProcAddr");
	if (!sq_gipa) return "library has no vkGetInstanceProcAddr symbol";
	return NULL;
}

static void* sq_gipa_ptr(void) { return (void*)sq_gipa; }

// sq_props2 holds what vulkan-go cannot query: it wraps no vkGetPhysicalDeviceProperties2, so the pNext chain
// (subgroup, maintenance3, driver properties) is filled here through the loader directly.
typedef struct {
	uint32_t hasProps2;
	uint32_t subgroupSize;
	uint32_t subgroupStages;
	uint64_t maxMemoryAllocationSize;
	uint32_t maxPerSetDescriptors;
	uint32_t hasDriver;
	uint32_t driverID;
	char driverName[VK_MAX_DRIVER_NAME_SIZE];
	char driverInfo[VK_MAX_DRIVER_INFO_SIZE];
} sq_props2;

static void sq_get_props2(void* instance, void* physical, uint32_t apiVersion, sq_props2* out) {
	memset(out, 0, sizeof(*out));
	if (!sq_gipa || apiVersion < VK_API_VERSION_1_1) return;
	PFN_vkGetPhysicalDeviceProperties2 f =
		(PFN_vkGetPhysicalDeviceProperties2)sq_gipa((VkInstance)instance, "vkGetPhysicalDeviceProperties2");
	if (!f) return;
	VkPhysicalDeviceDriverProperties drv;
	memset(&drv, 0, sizeof(drv));
	drv.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
	VkPhysicalDeviceMaintenance3Properties m3;
	memset(&m3, 0, sizeof(m3));
	m3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES;
	// Driver properties are core only from 1.2; chaining them on a 1.1 device would be invalid usage.
	if (apiVersion >= VK_API_VERSION_1_2) m3.pNext = &drv;
	VkPhysicalDeviceSubgroupProperties sg;
	memset(&sg, 0, sizeof(sg));
	sg.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
	sg.pNext = &m3;
	VkPhysicalDeviceProperties2 p2;
	memset(&p2, 0, sizeof(p2));
	p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
	p2.pNext = &sg;
	f((VkPhysicalDevice)physical, &p2);
	out->hasProps2 = 1;
	out->subgroupSize = sg.subgroupSize;
	out->subgroupStages = sg.supportedStages;
	out->maxMemoryAllocationSize = m3.maxMemoryAllocationSize;
	out->maxPerSetDescriptors = m3.maxPerSetDescriptors;
	if (apiVersion >= VK_API_VERSION_1_2) {
		out->hasDriver = 1;
		out->driverID = drv.driverID;
		memcpy(out->driverName, drv.driverName, sizeof(out->driverName));
		memcpy(out->driverInfo, drv.driverInfo, sizeof(out->driverInfo));
	}
}

// sq_sync_validation returns a malloc'd VkValidationFeaturesEXT that turns on synchronization validation (the
// layer then reports missing barriers as SYNC-HAZARD-* errors), chained before next. Free it with free().
static void* sq_sync_validation(void* next) {
	static const VkValidationFeatureEnableEXT enables[] = {
		VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
	VkValidationFeaturesEXT* f = (VkValidationFeaturesEXT*)calloc(1, sizeof(*f));
	if (!f) return NULL;
	f->sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT;
	f->pNext = next;
	f->enabledValidationFeatureCount = 1;
	f->pEnabledValidationFeatures = enables;
	return f;
}
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	vulkan "github.com/vulkan-go/vulkan"
)

// LibraryEnv names the environment variable that overrides which Vulkan loader library is opened.
const LibraryEnv = "SQNET_VULKAN_LIB"

var (
	loadOnce sync.Once
	loadErr  error
)

// loadVulkan opens the Vulkan loader once per process. vulkan-go's own default loader dlopens the unversioned
// "libvulkan.so", which only the -dev package installs; a machine with just a driver has "libvulkan.so.1", so we
// open that ourselves and hand its vkGetInstanceProcAddr to vulkan-go.
func loadVulkan() error {
	loadOnce.Do(func() {
		names := []string{"libvulkan.so.1", "libvulkan.so"}
		if p := os.Getenv(LibraryEnv); p != "" {
			names = []string{p}
		}
		var reasons []string
		for _, n := range names {
			cn := C.CString(n)
			msg := C.sq_open(cn)
			C.free(unsafe.Pointer(cn))
			if msg == nil {
				vulkan.SetGetInstanceProcAddr(C.sq_gipa_ptr())
				if err := vulkan.Init(); err != nil {
					loadErr = fmt.Errorf("%w: %s loaded but vkInit failed: %v", ErrNoLoader, n, err)
				}
				return
			}
			reasons = append(reasons, C.GoString(msg))
		}
		loadErr = fmt.Errorf("%w (%s)", ErrNoLoader, strings.Join(reasons, "; "))
	})
	return loadErr
}

// gipaPtr is the loader's vkGetInstanceProcAddr (nil before loadVulkan succeeds).
func gipaPtr() unsafe.Pointer { return C.sq_gipa_ptr() }

// props2 is the part of a device's properties that needs vkGetPhysicalDeviceProperties2.
type props2 struct {
	ok                      bool
	subgroupSize            uint32
	subgroupStages          uint32
	maxMemoryAllocationSize uint64
	maxPerSetDescriptors    uint32
	hasDriver               bool
	driverID                uint32
	driverName, driverInfo  string
}

func queryProps2(inst vulkan.Instance, pd vulkan.PhysicalDevice, apiVersion uint32) props2 {
	var out C.sq_props2
	C.sq_get_props2(unsafe.Pointer(inst), unsafe.Pointer(pd), C.uint32_t(apiVersion), &out)
	return props2{
		ok:                      out.hasProps2 != 0,
		subgroupSize:            uint32(out.subgroupSize),
		subgroupStages:          uint32(out.subgroupStages),
		maxMemoryAllocationSize: uint64(out.maxMemoryAllocationSize),
		maxPerSetDescriptors:    uint32(out.maxPerSetDescriptors),
		hasDriver:               out.hasDriver != 0,
		driverID:                uint32(out.driverID),
		driverName:              C.GoString(&out.driverName[0]),
		driverInfo:              C.GoString(&out.driverInfo[0]),
	}
}

// syncValidationChain returns C memory holding a VkValidationFeaturesEXT that enables synchronization validation,
// chained before next; release it with freeC.
func syncValidationChain(next unsafe.Pointer) unsafe.Pointer { return C.sq_sync_validation(next) }

func freeC(p unsafe.Pointer) { C.free(p) }
