package vk

import (
	"errors"
	"fmt"

	vulkan "github.com/vulkan-go/vulkan"
)

// Environment errors: the machine, not the program, is at fault. The CLI turns each of them into one line and
// exit code 2. Every error the package returns for these conditions wraps one of these sentinels, so callers test
// them with errors.Is.
var (
	// ErrNoLoader means the Vulkan loader library could not be opened.
	ErrNoLoader = errors.New("no Vulkan loader (libvulkan.so.1) could be opened; install it with " +
		"`apt-get install libvulkan1 mesa-vulkan-drivers` (or run scripts/setup)")
	// ErrNoDevice means the loader found no usable Vulkan device (no ICD installed, or none that works).
	ErrNoDevice = errors.New("no Vulkan device found; install a driver (`apt-get install mesa-vulkan-drivers` " +
		"gives the lavapipe CPU driver) or point VK_ICD_FILENAMES at an ICD manifest")
	// ErrNoSuchDevice means a --device / SQNET_DEVICE selection matched no device.
	ErrNoSuchDevice = errors.New("no such device")
	// ErrNoValidationLayer means validation was requested but VK_LAYER_KHRONOS_validation is not installed.
	ErrNoValidationLayer = errors.New("VK_LAYER_KHRONOS_validation is not installed; install it with " +
		"`apt-get install vulkan-validationlayers` (or run scripts/setup)")
	// ErrOutOfMemory means an allocation did not fit the device's memory.
	ErrOutOfMemory = errors.New("out of device memory")
	// ErrDeviceLost means the driver reported VK_ERROR_DEVICE_LOST; the device must be reopened.
	ErrDeviceLost = errors.New("the Vulkan device was lost (VK_ERROR_DEVICE_LOST): the driver reset or crashed; " +
		"reopen the device")
	// ErrClosed means an object was used after its device or instance was closed.
	ErrClosed = errors.New("vulkan object used after Close")
)

// IsEnvironment reports whether err comes from the machine's Vulkan setup rather than from the caller's input.
func IsEnvironment(err error) bool {
	for _, e := range []error{ErrNoLoader, ErrNoDevice, ErrNoSuchDevice, ErrNoValidationLayer, ErrOutOfMemory,
		ErrDeviceLost} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// resultError turns a Vulkan result into an error naming the call, wrapping the sentinel for results that mean a
// broken environment.
func resultError(call string, r vulkan.Result) error {
	if r == vulkan.Success {
		return nil
	}
	switch r {
	case vulkan.ErrorDeviceLost:
		return fmt.Errorf("%s: %w", call, ErrDeviceLost)
	case vulkan.ErrorOutOfDeviceMemory, vulkan.ErrorOutOfHostMemory, vulkan.ErrorOutOfPoolMemory:
		return fmt.Errorf("%s: %s: %w", call, resultName(r), ErrOutOfMemory)
	case vulkan.ErrorIncompatibleDriver, vulkan.ErrorInitializationFailed:
		return fmt.Errorf("%s: %s: %w", call, resultName(r), ErrNoDevice)
	case vulkan.ErrorLayerNotPresent:
		return fmt.Errorf("%s: %w", call, ErrNoValidationLayer)
	}
	return fmt.Errorf("%s: %s", call, resultName(r))
}

// resultName spells a VkResult the way the specification does.
func resultName(r vulkan.Result) string {
	names := map[vulkan.Result]string{
		vulkan.NotReady:                   "VK_NOT_READY",
		vulkan.Timeout:                    "VK_TIMEOUT",
		vulkan.Incomplete:                 "VK_INCOMPLETE",
		vulkan.ErrorOutOfHostMemory:       "VK_ERROR_OUT_OF_HOST_MEMORY",
		vulkan.ErrorOutOfDeviceMemory:     "VK_ERROR_OUT_OF_DEVICE_MEMORY",
		vulkan.ErrorInitializationFailed:  "VK_ERROR_INITIALIZATION_FAILED",
		vulkan.ErrorDeviceLost:            "VK_ERROR_DEVICE_LOST",
		vulkan.ErrorMemoryMapFailed:       "VK_ERROR_MEMORY_MAP_FAILED",
		vulkan.ErrorLayerNotPresent:       "VK_ERROR_LAYER_NOT_PRESENT",
		vulkan.ErrorExtensionNotPresent:   "VK_ERROR_EXTENSION_NOT_PRESENT",
		vulkan.ErrorFeatureNotPresent:     "VK_ERROR_FEATURE_NOT_PRESENT",
		vulkan.ErrorIncompatibleDriver:    "VK_ERROR_INCOMPATIBLE_DRIVER",
		vulkan.ErrorTooManyObjects:        "VK_ERROR_TOO_MANY_OBJECTS",
		vulkan.ErrorFormatNotSupported:    "VK_ERROR_FORMAT_NOT_SUPPORTED",
		vulkan.ErrorFragmentedPool:        "VK_ERROR_FRAGMENTED_POOL",
		vulkan.ErrorOutOfPoolMemory:       "VK_ERROR_OUT_OF_POOL_MEMORY",
		vulkan.ErrorInvalidExternalHandle: "VK_ERROR_INVALID_EXTERNAL_HANDLE",
	}
	if n, ok := names[r]; ok {
		return n
	}
	return fmt.Sprintf("VkResult(%d)", int32(r))
}
