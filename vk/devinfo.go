package vk

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	vulkan "github.com/vulkan-go/vulkan"
)

// DeviceEnv names the environment variable that selects a device when no --device flag is given.
const DeviceEnv = "SQNET_DEVICE"

// DeviceType is a physical device's kind, in sqnet's order of preference.
type DeviceType string

// The device types Vulkan reports.
const (
	TypeDiscrete   DeviceType = "discrete"
	TypeIntegrated DeviceType = "integrated"
	TypeVirtual    DeviceType = "virtual"
	TypeCPU        DeviceType = "cpu"
	TypeOther      DeviceType = "other"
)

// rank orders device types for automatic choice: discrete > integrated > virtual > CPU > other.
func (t DeviceType) rank() int {
	switch t {
	case TypeDiscrete:
		return 4
	case TypeIntegrated:
		return 3
	case TypeVirtual:
		return 2
	case TypeCPU:
		return 1
	}
	return 0
}

// Heap is one memory heap of a device.
type Heap struct {
	Index       int    `json:"index"`
	Size        uint64 `json:"size_bytes"`
	DeviceLocal bool   `json:"device_local"`
	// HostVisible says whether some memory type on this heap can be mapped by the host.
	HostVisible bool `json:"host_visible"`
}

// ComputeLimits are the limits that shape sqnet's kernels and buffers.
type ComputeLimits struct {
	MaxWorkgroupSize          [3]uint32 `json:"max_workgroup_size"`
	MaxWorkgroupInvocations   uint32    `json:"max_workgroup_invocations"`
	MaxWorkgroupCount         [3]uint32 `json:"max_workgroup_count"`
	MaxSharedMemory           uint32    `json:"max_shared_memory_bytes"`
	MaxPushConstants          uint32    `json:"max_push_constants_bytes"`
	MaxStorageBufferRange     uint64    `json:"max_storage_buffer_range"`
	MinStorageBufferAlignment uint64    `json:"min_storage_buffer_offset_alignment"`
	MaxStorageBuffersPerStage uint32    `json:"max_storage_buffers_per_stage"`
	MaxBoundDescriptorSets    uint32    `json:"max_bound_descriptor_sets"`
	MaxMemoryAllocationSize   uint64    `json:"max_memory_allocation_size,omitempty"`
	// SubgroupSize is 0 where the device cannot report it (Vulkan 1.0 devices).
	SubgroupSize uint32 `json:"subgroup_size,omitempty"`
	// TimestampPeriod is nanoseconds per timestamp tick.
	TimestampPeriod float32 `json:"timestamp_period_ns"`
}

// TexelInfo says whether and how a device reads uniform texel buffers of fp32 (vk.Texel1, vk.Texel4).
type TexelInfo struct {
	Float1          bool   `json:"r32_sfloat"`          // R32_SFLOAT uniform texel buffers
	Float4          bool   `json:"r32g32b32a32_sfloat"` // R32G32B32A32_SFLOAT uniform texel buffers
	MaxElements     uint64 `json:"max_texel_buffer_elements"`
	OffsetAlignment uint64 `json:"min_texel_buffer_offset_alignment"`
}

// DeviceInfo describes one physical device as the loader reports it.
type DeviceInfo struct {
	Index      int           `json:"index"`
	Name       string        `json:"name"`
	Type       DeviceType    `json:"type"`
	VendorID   uint32        `json:"vendor_id"`
	Vendor     string        `json:"vendor"`
	DeviceID   uint32        `json:"device_id"`
	Driver     string        `json:"driver"`
	DriverInfo string        `json:"driver_info,omitempty"`
	DriverVer  string        `json:"driver_version"`
	APIVersion string        `json:"api_version"`
	Heaps      []Heap        `json:"heaps"`
	Limits     ComputeLimits `json:"limits"`
	Texel      TexelInfo     `json:"texel_buffers"`
	// Usable is false for devices sqnet cannot run on (API below 1.1, no compute queue); Why says why.
	Usable bool   `json:"usable"`
	Why    string `json:"why,omitempty"`

	api       uint32
	handle    vulkan.PhysicalDevice
	cacheUUID [vulkan.UuidSize]byte
}

// vendorNames maps PCI (and Khronos-registered) vendor IDs to names.
var vendorNames = map[uint32]string{
	0x1002: "AMD", 0x1010: "Imagination", 0x10DE: "NVIDIA", 0x13B5: "ARM", 0x5143: "Qualcomm",
	0x8086: "Intel", 0x106B: "Apple", 0x1AE0: "Google", 0x10005: "Mesa", 0x14E4: "Broadcom",
	0x10002: "VeriSilicon", 0x10004: "Codeplay", 0x1414: "Microsoft",
}

func versionString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v>>22, (v>>12)&0x3ff, v&0xfff)
}

// driverVersionString decodes driverVersion, whose packing is vendor-defined; NVIDIA is the one common
// exception to the standard major.minor.patch packing.
func driverVersionString(vendor, v uint32) string {
	if vendor == 0x10DE {
		return fmt.Sprintf("%d.%d.%d.%d", v>>22, (v>>14)&0xff, (v>>6)&0xff, v&0x3f)
	}
	return versionString(v)
}

func deviceType(t vulkan.PhysicalDeviceType) DeviceType {
	switch t {
	case vulkan.PhysicalDeviceTypeDiscreteGpu:
		return TypeDiscrete
	case vulkan.PhysicalDeviceTypeIntegratedGpu:
		return TypeIntegrated
	case vulkan.PhysicalDeviceTypeVirtualGpu:
		return TypeVirtual
	case vulkan.PhysicalDeviceTypeCpu:
		return TypeCPU
	}
	return TypeOther
}

// Devices lists every physical device the loader reports. It returns ErrNoDevice when there is none.
func (in *Instance) Devices() ([]DeviceInfo, error) {
	if in.closed {
		return nil, ErrClosed
	}
	var n uint32
	r := vulkan.EnumeratePhysicalDevices(in.handle, &n, nil)
	if r == vulkan.ErrorInitializationFailed || (r == vulkan.Success && n == 0) {
		return nil, ErrNoDevice
	}
	if err := resultError("vkEnumeratePhysicalDevices", r); err != nil {
		return nil, err
	}
	pds := make([]vulkan.PhysicalDevice, n)
	if err := resultError("vkEnumeratePhysicalDevices", vulkan.EnumeratePhysicalDevices(in.handle, &n, pds)); err != nil {
		return nil, err
	}
	out := make([]DeviceInfo, 0, n)
	for i, pd := range pds[:n] {
		out = append(out, describe(in, i, pd))
	}
	return out, nil
}

func describe(in *Instance, index int, pd vulkan.PhysicalDevice) DeviceInfo {
	inst := in.handle
	var p vulkan.PhysicalDeviceProperties
	vulkan.GetPhysicalDeviceProperties(pd, &p)
	p.Deref()
	p.Limits.Deref()
	lim := p.Limits
	d := DeviceInfo{
		Index:      index,
		Name:       vulkan.ToString(p.DeviceName[:]),
		Type:       deviceType(p.DeviceType),
		VendorID:   p.VendorID,
		DeviceID:   p.DeviceID,
		DriverVer:  driverVersionString(p.VendorID, p.DriverVersion),
		APIVersion: versionString(p.ApiVersion),
		api:        p.ApiVersion,
		handle:     pd,
		cacheUUID:  p.PipelineCacheUUID,
		Usable:     true,
	}
	d.Vendor = vendorNames[p.VendorID]
	if d.Vendor == "" {
		d.Vendor = fmt.Sprintf("0x%04x", p.VendorID)
	}
	d.Limits = ComputeLimits{
		MaxWorkgroupSize:          lim.MaxComputeWorkGroupSize,
		MaxWorkgroupInvocations:   lim.MaxComputeWorkGroupInvocations,
		MaxWorkgroupCount:         lim.MaxComputeWorkGroupCount,
		MaxSharedMemory:           lim.MaxComputeSharedMemorySize,
		MaxPushConstants:          lim.MaxPushConstantsSize,
		MaxStorageBufferRange:     uint64(lim.MaxStorageBufferRange),
		MinStorageBufferAlignment: uint64(lim.MinStorageBufferOffsetAlignment),
		MaxStorageBuffersPerStage: lim.MaxPerStageDescriptorStorageBuffers,
		MaxBoundDescriptorSets:    lim.MaxBoundDescriptorSets,
		TimestampPeriod:           lim.TimestampPeriod,
	}
	d.Texel = TexelInfo{Float1: uniformTexel(pd, vulkan.FormatR32Sfloat),
		Float4: uniformTexel(pd, vulkan.FormatR32g32b32a32Sfloat), MaxElements: uint64(lim.MaxTexelBufferElements),
		OffsetAlignment: max(uint64(lim.MinTexelBufferOffsetAlignment), 1)}
	p2 := queryProps2(inst, pd, p.ApiVersion)
	if p2.ok {
		d.Limits.SubgroupSize = p2.subgroupSize
		d.Limits.MaxMemoryAllocationSize = p2.maxMemoryAllocationSize
	}
	if p2.hasDriver && p2.driverName != "" {
		d.Driver, d.DriverInfo = p2.driverName, p2.driverInfo
	} else {
		d.Driver = d.Vendor + " driver"
	}
	var mp vulkan.PhysicalDeviceMemoryProperties
	vulkan.GetPhysicalDeviceMemoryProperties(pd, &mp)
	mp.Deref()
	for h := uint32(0); h < mp.MemoryHeapCount; h++ {
		mp.MemoryHeaps[h].Deref()
		hp := Heap{Index: int(h), Size: uint64(mp.MemoryHeaps[h].Size),
			DeviceLocal: mp.MemoryHeaps[h].Flags&vulkan.MemoryHeapFlags(vulkan.MemoryHeapDeviceLocalBit) != 0}
		for t := uint32(0); t < mp.MemoryTypeCount; t++ {
			mp.MemoryTypes[t].Deref()
			if mp.MemoryTypes[t].HeapIndex == h &&
				mp.MemoryTypes[t].PropertyFlags&vulkan.MemoryPropertyFlags(vulkan.MemoryPropertyHostVisibleBit) != 0 {
				hp.HostVisible = true
			}
		}
		d.Heaps = append(d.Heaps, hp)
	}
	switch {
	case p.ApiVersion < vulkan.MakeVersion(1, 1, 0):
		d.Usable, d.Why = false, "Vulkan "+d.APIVersion+" < 1.1"
	case computeFamily(in.procs, pd) < 0:
		d.Usable, d.Why = false, "no compute queue"
	}
	return d
}

// computeFamily returns the queue family sqnet submits to: one with compute and timestamps if there is one,
// else any with compute, else -1.
func computeFamily(t procs, pd vulkan.PhysicalDevice) int {
	best := -1
	for i, f := range t.queueFamilies(pd) {
		if f.flags&vulkan.QueueFlags(vulkan.QueueComputeBit) == 0 {
			continue
		}
		if f.tsBits > 0 {
			return i
		}
		if best < 0 {
			best = i
		}
	}
	return best
}

// Choose picks a device: sel is an index ("1") or a case-insensitive part of a device name ("llvmpipe"); an empty
// sel falls back to $SQNET_DEVICE, and an empty one of those picks the best usable device by type
// (discrete > integrated > virtual > CPU), the lowest index among equals.
func Choose(devs []DeviceInfo, sel string) (int, error) {
	if sel == "" {
		sel = os.Getenv(DeviceEnv)
	}
	sel = strings.TrimSpace(sel)
	if len(devs) == 0 {
		return -1, ErrNoDevice
	}
	if sel == "" {
		best := -1
		for i, d := range devs {
			if d.Usable && (best < 0 || d.Type.rank() > devs[best].Type.rank()) {
				best = i
			}
		}
		if best < 0 {
			return -1, fmt.Errorf("%w: none of the %d devices can run sqnet (%s: %s)", ErrNoDevice, len(devs),
				devs[0].Name, devs[0].Why)
		}
		return best, nil
	}
	if rest, ok := strings.CutPrefix(strings.ToLower(sel), "gpu:"); ok {
		// The n-th GPU in enumeration order, CPU drivers skipped: what a scheduler's GPU ordinal
		// (GPU_DEVICE_ORDINAL, CUDA_VISIBLE_DEVICES) means on a node that also has lavapipe installed.
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return -1, fmt.Errorf("%w: %q: want gpu:N with N ≥ 0", ErrNoSuchDevice, sel)
		}
		for i, d := range devs {
			if d.Type == TypeCPU {
				continue
			}
			if n == 0 {
				if !d.Usable {
					return -1, fmt.Errorf("%w: device %d (%s) cannot run sqnet: %s", ErrNoSuchDevice, i, d.Name, d.Why)
				}
				return i, nil
			}
			n--
		}
		return -1, fmt.Errorf("%w: %s: there are fewer GPUs (devices: %s)", ErrNoSuchDevice, sel, names(devs))
	}
	if n, err := strconv.Atoi(sel); err == nil {
		if n < 0 || n >= len(devs) {
			return -1, fmt.Errorf("%w: device %d (there are %d: %s)", ErrNoSuchDevice, n, len(devs), names(devs))
		}
		if !devs[n].Usable {
			return -1, fmt.Errorf("%w: device %d (%s) cannot run sqnet: %s", ErrNoSuchDevice, n, devs[n].Name, devs[n].Why)
		}
		return n, nil
	}
	var hits []int
	for i, d := range devs {
		if strings.Contains(strings.ToLower(d.Name), strings.ToLower(sel)) {
			hits = append(hits, i)
		}
	}
	switch {
	case len(hits) == 0:
		return -1, fmt.Errorf("%w: no device name contains %q (devices: %s)", ErrNoSuchDevice, sel, names(devs))
	case len(hits) > 1:
		return -1, fmt.Errorf("%w: %q matches %d devices (%s); pick one by index", ErrNoSuchDevice, sel, len(hits),
			names(devs))
	case !devs[hits[0]].Usable:
		return -1, fmt.Errorf("%w: device %d (%s) cannot run sqnet: %s", ErrNoSuchDevice, hits[0],
			devs[hits[0]].Name, devs[hits[0]].Why)
	}
	return hits[0], nil
}

func names(devs []DeviceInfo) string {
	s := make([]string, len(devs))
	for i, d := range devs {
		s[i] = fmt.Sprintf("%d=%s", i, d.Name)
	}
	return strings.Join(s, ", ")
}

// uniformTexel reports whether the device can read buffers of format f as uniform texel buffers.
func uniformTexel(pd vulkan.PhysicalDevice, f vulkan.Format) bool {
	var fp vulkan.FormatProperties
	vulkan.GetPhysicalDeviceFormatProperties(pd, f, &fp)
	fp.Deref()
	return fp.BufferFeatures&vulkan.FormatFeatureFlags(vulkan.FormatFeatureUniformTexelBufferBit) != 0
}
