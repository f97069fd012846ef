package vk

import (
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	vulkan "github.com/vulkan-go/vulkan"

	"github.com/sqnet/sqnet/internal/atomicfile"
	"github.com/sqnet/sqnet/shaders"
)

// MaxBindings is the most storage buffers one pipeline may bind.
const MaxBindings = 8

// Access says how a shader uses one of its buffer bindings; the recorder derives barriers from it.
type Access uint8

// Buffer access modes.
const (
	Read Access = 1 << iota
	Write
	texel1 // bound through an R32_SFLOAT uniform texel buffer view
	texel4 // bound through an R32G32B32A32_SFLOAT uniform texel buffer view
	// ReadWrite is a storage buffer the shader reads and writes.
	ReadWrite = Read | Write
	// Texel1 is a read-only range bound as a uniform texel buffer of floats (GLSL `uniform samplerBuffer`;
	// texelFetch(s, i).x is float i of the range). Drivers fetch texels through their texture path: lavapipe
	// gathers them with vector instructions where it loads a storage buffer lane by lane, which made its GEMM
	// ≈1.7× faster. The range's offset must be a multiple of Info().Texel.OffsetAlignment and it may hold at
	// most Info().Texel.MaxElements texels; use it only where Info().Texel reports the format.
	Texel1 = Read | texel1
	// Texel4 is Texel1 with R32G32B32A32_SFLOAT texels: texelFetch(s, i) is floats 4i..4i+3 of the range, whose
	// size must be a multiple of 16 bytes.
	Texel4 = Read | texel4
)

// texelSize is the bytes per texel of a texel binding, 0 for a storage buffer.
func (a Access) texelSize() uint64 {
	switch {
	case a&texel4 != 0:
		return 16
	case a&texel1 != 0:
		return 4
	}
	return 0
}

// texelFormat is the view format of a texel binding.
func (a Access) texelFormat() vulkan.Format {
	if a&texel4 != 0 {
		return vulkan.FormatR32g32b32a32Sfloat
	}
	return vulkan.FormatR32Sfloat
}

// descriptorType is the descriptor type a binding of this access is written as.
func (a Access) descriptorType() vulkan.DescriptorType {
	if a.texelSize() != 0 {
		return vulkan.DescriptorTypeUniformTexelBuffer
	}
	return vulkan.DescriptorTypeStorageBuffer
}

// SpecConst is one specialization constant: its constant_id and its 32-bit value.
type SpecConst struct {
	ID   uint32
	Bits uint32
}

// SpecU32 is an unsigned (or bool) specialization constant.
func SpecU32(id, v uint32) SpecConst { return SpecConst{ID: id, Bits: v} }

// SpecI32 is a signed specialization constant.
func SpecI32(id uint32, v int32) SpecConst { return SpecConst{ID: id, Bits: uint32(v)} }

// SpecF32 is a float specialization constant.
func SpecF32(id uint32, v float32) SpecConst { return SpecConst{ID: id, Bits: math.Float32bits(v)} }

// PipelineSpec describes a compute pipeline: which embedded shader, its buffer bindings (set 0, bindings 0..n-1,
// all storage buffers), its push-constant size, its workgroup size (specialization constants 0, 1, 2) and any
// further specialization constants (ids from 3).
type PipelineSpec struct {
	Shader   string
	Bindings []Access
	PushSize uint32
	Local    [3]uint32 // zero entries mean 1
	Consts   []SpecConst
}

func (s PipelineSpec) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%v|%d|%v", s.Shader, s.Bindings, s.PushSize, s.local())
	for _, c := range s.Consts {
		fmt.Fprintf(&b, "|%d=%#x", c.ID, c.Bits)
	}
	return b.String()
}

func (s PipelineSpec) local() [3]uint32 {
	l := s.Local
	for i := range l {
		if l[i] == 0 {
			l[i] = 1
		}
	}
	return l
}

// Pipeline is a compute pipeline with its layouts. Pipelines are cached by spec on their device and destroyed
// with it.
type Pipeline struct {
	dev       *Device
	spec      PipelineSpec
	local     [3]uint32
	module    vulkan.ShaderModule
	setLayout vulkan.DescriptorSetLayout
	layout    vulkan.PipelineLayout
	handle    vulkan.Pipeline
}

// Local returns the pipeline's workgroup size.
func (p *Pipeline) Local() [3]uint32 { return p.local }

// Groups returns the workgroup counts that cover an nx×ny×nz grid of invocations (each at least 1).
func (p *Pipeline) Groups(nx, ny, nz uint32) [3]uint32 {
	g := [3]uint32{nx, ny, nz}
	for i := range g {
		g[i] = max(1, (g[i]+p.local[i]-1)/p.local[i])
	}
	return g
}

// Pipeline returns the pipeline for spec, creating it on first use. It checks the workgroup size, binding count
// and push-constant size against the device's limits and returns an error rather than invalid usage.
func (d *Device) Pipeline(spec PipelineSpec) (*Pipeline, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	key := spec.key()
	if p, ok := d.pipes[key]; ok {
		return p, nil
	}
	if err := d.checkSpec(spec); err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", spec.Shader, err)
	}
	code, err := shaders.SPIRV(spec.Shader)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{dev: d, spec: spec, local: spec.local()}
	if err := p.create(d, code); err != nil {
		p.destroy(d.handle)
		return nil, fmt.Errorf("pipeline %s: %w", spec.Shader, err)
	}
	d.pipes[key] = p
	return p, nil
}

func (d *Device) checkSpec(s PipelineSpec) error {
	lim := d.info.Limits
	l := s.local()
	inv := uint64(1)
	for i := range l {
		if l[i] > lim.MaxWorkgroupSize[i] {
			return fmt.Errorf("workgroup size %v: dimension %d exceeds the device's maximum %v", l, i,
				lim.MaxWorkgroupSize)
		}
		inv *= uint64(l[i])
	}
	if inv > uint64(lim.MaxWorkgroupInvocations) {
		return fmt.Errorf("workgroup size %v is %d invocations, more than the device's maximum %d", l, inv,
			lim.MaxWorkgroupInvocations)
	}
	if len(s.Bindings) == 0 || len(s.Bindings) > MaxBindings ||
		uint32(len(s.Bindings)) > lim.MaxStorageBuffersPerStage {
		return fmt.Errorf("%d buffer bindings (allowed 1..%d, device %d)", len(s.Bindings), MaxBindings,
			lim.MaxStorageBuffersPerStage)
	}
	for i, a := range s.Bindings {
		if a&Write != 0 && a.texelSize() != 0 || a&(texel1|texel4) == texel1|texel4 {
			return fmt.Errorf("binding %d: access %#x (texel bindings are read-only, of one format)", i, uint8(a))
		}
		if a.texelSize() == 16 && !d.info.Texel.Float4 || a.texelSize() == 4 && !d.info.Texel.Float1 {
			return fmt.Errorf("binding %d: the device cannot read %v uniform texel buffers", i, a.texelFormat())
		}
	}
	if s.PushSize%4 != 0 || s.PushSize > lim.MaxPushConstants {
		return fmt.Errorf("push constants of %d bytes (must be a multiple of 4, at most %d)", s.PushSize,
			lim.MaxPushConstants)
	}
	if len(s.Consts)+3 > maxSpecConsts {
		return fmt.Errorf("%d specialization constants (at most %d besides the workgroup size)", len(s.Consts),
			maxSpecConsts-3)
	}
	seen := map[uint32]bool{0: true, 1: true, 2: true}
	for _, c := range s.Consts {
		if seen[c.ID] {
			return fmt.Errorf("specialization constant id %d used twice (0-2 are the workgroup size)", c.ID)
		}
		seen[c.ID] = true
	}
	return nil
}

func (p *Pipeline) create(d *Device, code []byte) error {
	// Through the shim (see shim.go): vulkan-go's create infos point at Go memory a collection during the call
	// may free (TestPipelinesUnderGC saw "does not contain valid spirv" from the validation layer).
	module, r := d.inst.procs.createShaderModule(d.handle, code)
	p.module = module
	if err := resultError("vkCreateShaderModule", r); err != nil {
		return err
	}
	types := make([]vulkan.DescriptorType, len(p.spec.Bindings))
	for i, a := range p.spec.Bindings {
		types[i] = a.descriptorType()
	}
	setLayout, layout, r := d.inst.procs.createLayouts(d.handle, types, p.spec.PushSize)
	p.setLayout = setLayout
	if err := resultError("vkCreateDescriptorSetLayout/vkCreatePipelineLayout", r); err != nil {
		return err
	}
	p.layout = layout
	consts := append([]SpecConst{SpecU32(0, p.local[0]), SpecU32(1, p.local[1]), SpecU32(2, p.local[2])},
		p.spec.Consts...)
	pipe, r := d.inst.procs.createComputePipeline(d.handle, d.pcache, p.module, p.layout, consts)
	if err := resultError("vkCreateComputePipelines", r); err != nil {
		return err
	}
	p.handle = pipe
	return nil
}

func (p *Pipeline) destroy(dev vulkan.Device) {
	if p.handle != vulkan.NullPipeline {
		vulkan.DestroyPipeline(dev, p.handle, nil)
	}
	if p.layout != vulkan.NullPipelineLayout {
		vulkan.DestroyPipelineLayout(dev, p.layout, nil)
	}
	if p.setLayout != vulkan.NullDescriptorSetLayout {
		vulkan.DestroyDescriptorSetLayout(dev, p.setLayout, nil)
	}
	if p.module != vulkan.NullShaderModule {
		vulkan.DestroyShaderModule(dev, p.module, nil)
	}
}

// PipelineCacheEnv names the environment variable that overrides where the pipeline cache lives ("off" keeps it
// in memory).
const PipelineCacheEnv = "SQNET_PIPELINE_CACHE"

// initPipelineCache creates the VkPipelineCache, seeded from the file of this exact device and driver (the
// file name carries vendor, device and pipelineCacheUUID, and the driver checks the header again). A missing or
// unreadable file just means an empty cache.
func (d *Device) initPipelineCache(dir string) error {
	if dir == "" {
		dir = os.Getenv(PipelineCacheEnv)
	}
	if dir == "" {
		if base, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(base, "sqnet")
		}
	}
	var seed []byte
	if dir != "" && dir != "off" {
		d.pcacheFile = filepath.Join(dir, fmt.Sprintf("pipelines-%04x-%04x-%s.bin", d.info.VendorID,
			d.info.DeviceID, hex.EncodeToString(d.info.cacheUUID[:])))
		seed, _ = os.ReadFile(d.pcacheFile)
	}
	info := vulkan.PipelineCacheCreateInfo{SType: vulkan.StructureTypePipelineCacheCreateInfo}
	var pin runtime.Pinner
	if len(seed) > 0 {
		pin.Pin(&seed[0])
		info.InitialDataSize = uint(len(seed))
		info.PInitialData = unsafe.Pointer(&seed[0])
	}
	var cache vulkan.PipelineCache
	err := resultError("vkCreatePipelineCache", vulkan.CreatePipelineCache(d.handle, &info, nil, &cache))
	d.pcache = cache
	pin.Unpin()
	return err
}

// savePipelineCache writes the cache atomically (temp file, fsync, rename), so a crash never leaves a torn file.
func (d *Device) savePipelineCache() error {
	if d.pcacheFile == "" || d.pcache == vulkan.NullPipelineCache || len(d.pipes) == 0 {
		return nil
	}
	var n uint
	if vulkan.GetPipelineCacheData(d.handle, d.pcache, &n, nil) != vulkan.Success || n == 0 {
		return nil
	}
	data := make([]byte, n)
	if r := vulkan.GetPipelineCacheData(d.handle, d.pcache, &n, unsafe.Pointer(&data[0])); r != vulkan.Success {
		return nil // the cache is an optimisation; failing to read it back is not worth failing Close
	}
	return atomicfile.Write(d.pcacheFile, data[:n], 0o644)
}
