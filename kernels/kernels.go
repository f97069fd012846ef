// Package kernels holds one typed Go entry point per compute shader, and a plain-Go CPU reference of each.
//
// An entry point checks shapes and buffer sizes, returns an error for anything wrong (zero sizes, mismatched
// shapes, buffers too small) before the driver sees it, picks the workgroup size from the device's limits, and
// records the dispatch into a vk.Recorder, so callers (the graph scheduler, attacks) batch many kernels into one
// command buffer. Tensors are fp32, NCHW, densely packed, passed as vk.Range.
//
// CPU references (the *Ref functions) compute the same result in float32 or float64 plain Go; the tests compare
// every kernel against them on seeded inputs, and the graph package uses them as its reference path.
package kernels

import (
	"fmt"

	"github.com/sqnet/sqnet/vk"
)

// Lib is the kernel library of one device: it owns nothing but the device's pipeline cache does the caching, so
// a Lib is cheap and many may share a device.
type Lib struct {
	dev *vk.Device
	// wg is the 1-D workgroup size for elementwise kernels: 256, or the device's maximum if smaller
	// (SwiftShader allows 256 invocations, lavapipe 1024, most GPUs 1024).
	wg uint32
	// texel says whether kernels read their big operands through uniform texel buffer views (vk.Texel1,
	// vk.Texel4) where the ranges allow it. On by default on CPU drivers, where it measured 1.5–1.7× faster
	// (lavapipe gathers texels with vector instructions and loads storage buffers lane by lane); off on GPUs,
	// where storage buffers are measured and texel reads are not. Tests turn it off to cover the other variants.
	texel bool
}

// New returns the kernel library for a device.
func New(d *vk.Device) *Lib {
	info := d.Info()
	return &Lib{dev: d, wg: min(256, info.Limits.MaxWorkgroupInvocations),
		texel: info.Type == vk.TypeCPU && info.Texel.Float1 && info.Texel.Float4}
}

// Device returns the library's device.
func (l *Lib) Device() *vk.Device { return l.dev }

// pipeline returns the pipeline for spec from the device's cache.
func (l *Lib) pipeline(spec vk.PipelineSpec) (*vk.Pipeline, error) {
	return l.dev.Pipeline(spec)
}

// dispatch1D records shader over n invocations in 1-D workgroups of l.wg (folding into a 2-D grid of workgroups
// when n needs more than maxComputeWorkGroupCount[0] of them; shaders index with gid.x + gid.y·stride where
// stride is gl_NumWorkGroups.x·gl_WorkGroupSize.x).
func (l *Lib) dispatch1D(r *vk.Recorder, shader string, n int, push any, access []vk.Access, bufs ...vk.Range) error {
	p, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: access, PushSize: pushSize(push),
		Local: [3]uint32{l.wg, 1, 1}})
	if err != nil {
		return err
	}
	return r.Dispatch(p, l.groups1D(n), push, bufs...)
}

// groups1D returns the workgroup counts covering n invocations of l.wg each, as a 2-D grid when needed.
func (l *Lib) groups1D(n int) [3]uint32 {
	g := (uint64(n) + uint64(l.wg) - 1) / uint64(l.wg)
	maxX := uint64(l.dev.Info().Limits.MaxWorkgroupCount[0])
	if g <= maxX {
		return [3]uint32{uint32(max(g, 1)), 1, 1}
	}
	return [3]uint32{uint32(maxX), uint32((g + maxX - 1) / maxX), 1}
}

// Run records with fn into a fresh recorder, submits, waits and closes it: the one-shot path tests and simple
// callers use.
func (l *Lib) Run(fn func(r *vk.Recorder) error) error {
	r, err := l.dev.NewRecorder()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := fn(r); err != nil {
		return err
	}
	return r.Run()
}

// pushSize returns the encoded size of push-constant data (0 for nil).
func pushSize(push any) uint32 {
	if push == nil {
		return 0
	}
	return uint32(binarySize(push))
}

// need checks that r holds at least elems float32 values, naming the operand in the error.
func need(op, name string, r vk.Range, elems int) error {
	return needWords(op, name, r, elems, "floats")
}

// sized is an operand, its name and how many floats it must hold.
type sized struct {
	name string
	r    vk.Range
	n    int
}

// needEach runs need on every operand in order, returning the first failure.
func needEach(op string, ops ...sized) error {
	for _, o := range ops {
		if err := need(op, o.name, o.r, o.n); err != nil {
			return err
		}
	}
	return nil
}

// needU32 checks that r holds at least elems uint32 values (labels, indices, counts).
func needU32(op, name string, r vk.Range, elems int) error {
	return needWords(op, name, r, elems, "uint32 values")
}

// needWords checks that r holds at least elems 4-byte values of the named kind.
func needWords(op, name string, r vk.Range, elems int, kind string) error {
	if elems <= 0 {
		return fmt.Errorf("%s: %s has %d elements; sizes must be positive", op, name, elems)
	}
	if r.Buf == nil {
		return fmt.Errorf("%s: %s: nil buffer", op, name)
	}
	if r.Size < uint64(elems)*4 {
		return fmt.Errorf("%s: %s needs %d %s (%d bytes), the range holds %d bytes", op, name, elems, kind,
			uint64(elems)*4, r.Size)
	}
	return nil
}

// Dim is a named size, for error messages.
type Dim struct {
	Name string
	V    int
}

// positive checks that every size is positive, in order, naming the first that is not.
func positive(op string, dims ...Dim) error {
	total := int64(1)
	for _, d := range dims {
		if d.V <= 0 {
			return fmt.Errorf("%s: %s = %d; sizes must be positive", op, d.Name, d.V)
		}
		total *= int64(d.V)
		if total > 1<<31 {
			return fmt.Errorf("%s: %v spans more than 2^31 elements", op, dims)
		}
	}
	return nil
}

// to64s widens a float32 slice (CPU references accumulate in float64).
func to64s(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// named is an operand and its name, for error messages.
type named struct {
	name string
	r    vk.Range
}

// disjoint checks that no two of the operands share bytes: a kernel that reads one while writing another in the
// same dispatch would race. Ranges of different Buffers never overlap (each Buffer is its own span of a block).
func disjoint(op string, ops ...named) error {
	for i, a := range ops {
		for _, b := range ops[i+1:] {
			if a.r.Buf != nil && a.r.Buf == b.r.Buf && a.r.Off < b.r.Off+b.r.Size && b.r.Off < a.r.Off+a.r.Size {
				return fmt.Errorf("%s: %s and %s overlap", op, a.name, b.name)
			}
		}
	}
	return nil
}

// texelFits reports whether the library reads through texel views and every range can be bound as a texel buffer
// of access a (vk.Texel1 or vk.Texel4).
func (l *Lib) texelFits(a vk.Access, rs ...vk.Range) bool {
	if !l.texel {
		return false
	}
	for _, r := range rs {
		if !l.dev.TexelFits(r, a) {
			return false
		}
	}
	return true
}

// texelHolds reports whether the library reads texels and n floats fit one texel view of a (Texel1 or Texel4) on
// this device by count (maxTexelBufferElements; SwiftShader allows the minimum, 65536): what a kernel can know of
// its operands from their shapes, before it has their ranges (to size a scratch for the path it will take).
func (l *Lib) texelHolds(a vk.Access, ns ...int) bool {
	tx := l.dev.Info().Texel
	if !l.texel || a == vk.Texel1 && !tx.Float1 || a == vk.Texel4 && !tx.Float4 {
		return false
	}
	per := uint64(1)
	if a == vk.Texel4 {
		per = 4
	}
	for _, n := range ns {
		if uint64(n)/per > tx.MaxElements {
			return false
		}
	}
	return true
}

// vec4Variant returns the VEC4 variant of an elementwise shader (its name + "4") and the elements each of its
// reads covers (4) when n elements of every range can be read as n/4 vec4s — n a multiple of 4 and each range
// starting on a 16-byte boundary (a std430 vec4 array's stride and alignment) — else shader and 1.
func vec4Variant(shader string, n int, rs ...vk.Range) (string, int) {
	if n%4 != 0 {
		return shader, 1
	}
	for _, r := range rs {
		if r.Off%16 != 0 {
			return shader, 1
		}
	}
	return shader + "4", 4
}

// texel1Variant returns shader's texel variant (its name + "_t", reading the ranges rs through R32_SFLOAT views)
// and the access to bind rs with when the library reads texels and every range allows it; else shader and vk.Read.
func (l *Lib) texel1Variant(shader string, rs ...vk.Range) (string, vk.Access) {
	if l.texelFits(vk.Texel1, rs...) {
		return shader + "_t", vk.Texel1
	}
	return shader, vk.Read
}
