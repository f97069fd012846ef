package vk

import (
	"fmt"
	"runtime"
	"sync"

	vulkan "github.com/vulkan-go/vulkan"
)

// Options configures Open and Instance.OpenDevice.
type Options struct {
	// Instance configures the instance Open creates (validation).
	Instance InstanceOptions
	// Device selects a device by index or name; empty means $SQNET_DEVICE, then the best device by type.
	Device string
	// PipelineCacheDir is where the VkPipelineCache is persisted; empty means the user cache dir + "/sqnet",
	// "off" keeps it in memory only.
	PipelineCacheDir string
	// BlockSize is the allocator's block size; 0 means DefaultBlockSize. Values below MinBlockSize are raised.
	BlockSize uint64
	// ForceStaging makes transfers go through staging buffers even where device memory is host-visible, so the
	// discrete-GPU path can be exercised on unified-memory devices.
	ForceStaging bool
	// Present enables VK_KHR_swapchain, for showing pictures in a window (NewPresenter). The instance must have
	// been created with the window system's surface extensions (InstanceOptions.Extensions).
	Present bool
}

// Device is an opened logical device with one compute queue, a memory suballocator, a pipeline cache and a
// descriptor-set cache. Its methods are safe for concurrent use.
type Device struct {
	mu         sync.Mutex
	inst       *Instance
	ownsInst   bool
	info       DeviceInfo
	handle     vulkan.Device
	queue      vulkan.Queue
	family     uint32
	tsBits     uint32
	alloc      allocator
	pipes      map[string]*Pipeline
	pcache     vulkan.PipelineCache
	pcacheFile string
	descs      descriptorCache
	recorders  map[*Recorder]struct{}
	staging    *Buffer // reused bounce buffer for devices whose memory the host cannot map
	xfer       *Recorder
	xferMu     sync.Mutex // serialises transfers through staging and xfer
	present    bool       // VK_KHR_swapchain is enabled
	closed     bool
}

// Open creates an instance, chooses a device (opts.Device, $SQNET_DEVICE, else the best by type) and opens it.
// Closing the device closes the instance too.
func Open(opts Options) (*Device, error) {
	in, err := NewInstance(opts.Instance)
	if err != nil {
		return nil, err
	}
	devs, err := in.Devices()
	if err != nil {
		in.Close()
		return nil, err
	}
	idx, err := Choose(devs, opts.Device)
	if err != nil {
		in.Close()
		return nil, err
	}
	d, err := in.OpenDevice(devs[idx], opts)
	if err != nil {
		in.Close()
		return nil, err
	}
	d.ownsInst = true
	return d, nil
}

// OpenDevice opens a logical device on one of the instance's devices (from Devices).
func (in *Instance) OpenDevice(info DeviceInfo, opts Options) (*Device, error) {
	if in.closed {
		return nil, ErrClosed
	}
	if !info.Usable {
		return nil, fmt.Errorf("%w: device %d (%s) cannot run sqnet: %s", ErrNoSuchDevice, info.Index, info.Name, info.Why)
	}
	fam := computeFamily(in.procs, info.handle)
	d := &Device{inst: in, info: info, family: uint32(fam), tsBits: in.procs.queueFamilies(info.handle)[fam].tsBits,
		pipes: map[string]*Pipeline{}, recorders: map[*Recorder]struct{}{}}
	qci := []vulkan.DeviceQueueCreateInfo{{
		SType: vulkan.StructureTypeDeviceQueueCreateInfo, QueueFamilyIndex: d.family, QueueCount: 1,
		PQueuePriorities: []float32{1},
	}}
	var exts []string
	if opts.Present {
		if !in.procs.deviceHasExtension(info.handle, SwapchainExtension) {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNoPresent, info.Name, SwapchainExtension)
		}
		exts = append(exts, SwapchainExtension+"\x00")
		d.present = true
	}
	var handle vulkan.Device
	if err := resultError("vkCreateDevice", vulkan.CreateDevice(info.handle, &vulkan.DeviceCreateInfo{
		SType: vulkan.StructureTypeDeviceCreateInfo, QueueCreateInfoCount: 1, PQueueCreateInfos: qci,
		EnabledExtensionCount: uint32(len(exts)), PpEnabledExtensionNames: exts,
	}, nil, &handle)); err != nil {
		return nil, fmt.Errorf("open %s: %w", info.Name, err)
	}
	runtime.KeepAlive(qci) // the queue priorities are Go memory that only vulkan-go's C copy pointed to
	var queue vulkan.Queue
	vulkan.GetDeviceQueue(handle, d.family, 0, &queue)
	d.handle, d.queue = handle, queue
	if err := d.initAllocator(opts); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.initPipelineCache(opts.PipelineCacheDir); err != nil {
		d.Close()
		return nil, err
	}
	d.descs.init()
	return d, nil
}

func (d *Device) initAllocator(opts Options) error {
	// All buffers with the same usage and flags share memory-type bits and alignment (Vulkan spec, "Resource
	// Memory Association"), so one small probe buffer tells what every block may use.
	var probe vulkan.Buffer
	if err := resultError("vkCreateBuffer", vulkan.CreateBuffer(d.handle, &vulkan.BufferCreateInfo{
		SType: vulkan.StructureTypeBufferCreateInfo, Size: 4096, Usage: bufferUsage,
		SharingMode: vulkan.SharingModeExclusive,
	}, nil, &probe)); err != nil {
		return err
	}
	var req vulkan.MemoryRequirements
	vulkan.GetBufferMemoryRequirements(d.handle, probe, &req)
	req.Deref()
	vulkan.DestroyBuffer(d.handle, probe, nil)
	var mp vulkan.PhysicalDeviceMemoryProperties
	vulkan.GetPhysicalDeviceMemoryProperties(d.info.handle, &mp)
	mp.Deref()
	choice, err := chooseMemory(&mp, req.MemoryTypeBits, opts.ForceStaging)
	if err != nil {
		return fmt.Errorf("%s: %w", d.info.Name, err)
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < MinBlockSize {
		bs = MinBlockSize
	}
	maxAlloc := d.info.Limits.MaxMemoryAllocationSize
	if maxAlloc > 0 && bs > maxAlloc {
		bs = maxAlloc
	}
	// 16 bytes at least, so every buffer can be read with vec4 loads; texel-aligned, so every buffer can be bound
	// as a texel buffer from its start.
	align := max(uint64(req.Alignment), d.info.Limits.MinStorageBufferAlignment, 16)
	if d.info.Texel.Float1 || d.info.Texel.Float4 {
		align = max(align, d.info.Texel.OffsetAlignment)
	}
	d.alloc = allocator{blockSize: alignUp(bs, align), align: align, choice: choice, maxAlloc: maxAlloc,
		heapUsed: make([]uint64, len(d.info.Heaps))}
	for _, h := range d.info.Heaps {
		d.alloc.heapSize = append(d.alloc.heapSize, h.Size)
	}
	return nil
}

// Info describes the device.
func (d *Device) Info() DeviceInfo { return d.info }

// Name is the device's name as the driver reports it.
func (d *Device) Name() string { return d.info.Name }

// Instance returns the instance the device was opened from.
func (d *Device) Instance() *Instance { return d.inst }

// Mappable reports whether device buffers are read and written by the host directly (no staging copies).
func (d *Device) Mappable() bool { return d.alloc.choice[kindDevice].mappable }

// Messages returns the validation messages recorded so far by the device's instance.
func (d *Device) Messages() []Message { return d.inst.Messages() }

// WaitIdle waits until the device has finished all submitted work.
func (d *Device) WaitIdle() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return resultError("vkDeviceWaitIdle", vulkan.DeviceWaitIdle(d.handle))
}

// Close waits for the device, releases every object it created (recorders, pipelines, buffers), saves the
// pipeline cache and destroys the device, then the instance if Open created it. Closing twice is harmless.
func (d *Device) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	recs := make([]*Recorder, 0, len(d.recorders))
	for r := range d.recorders {
		recs = append(recs, r)
	}
	d.mu.Unlock()
	var firstErr error
	if d.handle != nil {
		firstErr = resultError("vkDeviceWaitIdle", vulkan.DeviceWaitIdle(d.handle))
	}
	for _, r := range recs {
		r.Close()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.handle != nil {
		if err := d.savePipelineCache(); err != nil && firstErr == nil {
			firstErr = err
		}
		for _, p := range d.pipes {
			p.destroy(d.handle)
		}
		d.descs.destroy(d.handle)
		if d.pcache != vulkan.NullPipelineCache {
			vulkan.DestroyPipelineCache(d.handle, d.pcache, nil)
		}
		for _, b := range d.alloc.blocks {
			b.release(d.handle)
		}
		d.alloc.blocks = nil
		vulkan.DestroyDevice(d.handle, nil)
	}
	if d.ownsInst {
		d.inst.Close()
	}
	return firstErr
}
