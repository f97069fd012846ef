package vk

import (
	"fmt"
	"sort"
	"unsafe"

	vulkan "github.com/vulkan-go/vulkan"
)

// DefaultBlockSize is the size of the memory blocks buffers are suballocated from. Requests larger than half a
// block get a block of their own, so a big tensor never strands most of a shared block.
const DefaultBlockSize = 64 << 20

// MinBlockSize is the smallest block size the allocator accepts (DESIGN.md: blocks of at least 16 MiB).
const MinBlockSize = 16 << 20

// bufferUsage is what every block's VkBuffer may be used for: bound as storage or read through uniform texel
// buffer views, and copied to and from.
const bufferUsage = vulkan.BufferUsageFlags(vulkan.BufferUsageStorageBufferBit |
	vulkan.BufferUsageUniformTexelBufferBit | vulkan.BufferUsageTransferSrcBit | vulkan.BufferUsageTransferDstBit)

// memKind is what a block's memory is for.
type memKind int

const (
	kindDevice  memKind = iota // tensors: device-local, mapped directly when the host can see it
	kindStaging                // host-visible, coherent: the bounce buffer for devices whose local memory is not
)

// memChoice is the memory type chosen for a kind of block.
type memChoice struct {
	typeIndex uint32
	heap      int
	mappable  bool // host-visible and host-coherent, so the host may read and write it directly
}

// span is a free byte range inside a block.
type span struct{ off, size uint64 }

// block is one vkAllocateMemory with one VkBuffer spanning all of it; Buffers are byte ranges of a block, so binding
// a Buffer is binding the block's VkBuffer at an offset, and descriptor sets stay valid while the block lives.
type block struct {
	kind      memKind
	mem       vulkan.DeviceMemory
	buf       vulkan.Buffer
	size      uint64
	mapped    unsafe.Pointer // nil unless mappable
	free      []span         // sorted by offset, coalesced
	dedicated bool           // holds exactly one Buffer and is released with it
	heap      int
}

// allocator suballocates Buffers from blocks. It is used with the device's mutex held.
type allocator struct {
	blockSize uint64
	align     uint64
	choice    [2]memChoice
	heapSize  []uint64
	heapUsed  []uint64
	blocks    []*block
	maxAlloc  uint64
}

// Buffer is a range of device memory usable as a storage buffer. Its offset inside its block is aligned to the
// device's minStorageBufferOffsetAlignment, so it can be bound directly.
type Buffer struct {
	dev   *Device
	blk   *block
	off   uint64
	size  uint64
	freed bool
}

// Size returns the buffer's size in bytes.
func (b *Buffer) Size() uint64 { return b.size }

// Range is a byte range of a Buffer, the unit that dispatches bind and copies move.
type Range struct {
	Buf  *Buffer
	Off  uint64
	Size uint64
}

// All returns the whole buffer as a Range.
func (b *Buffer) All() Range { return Range{Buf: b, Off: 0, Size: b.size} }

// Range returns bytes [off, off+size) of the buffer; bounds are checked where the range is used.
func (b *Buffer) Range(off, size uint64) Range { return Range{Buf: b, Off: off, Size: size} }

func (r Range) check(dev *Device) error {
	switch {
	case r.Buf == nil:
		return fmt.Errorf("nil buffer")
	case r.Buf.dev != dev:
		return fmt.Errorf("buffer belongs to another device")
	case r.Buf.freed:
		return fmt.Errorf("buffer used after Free")
	case r.Size == 0:
		return fmt.Errorf("empty range")
	case r.Off > r.Buf.size || r.Size > r.Buf.size-r.Off:
		return fmt.Errorf("range [%d, %d) outside a %d-byte buffer", r.Off, r.Off+r.Size, r.Buf.size)
	}
	return nil
}

// abs returns the range's offset inside its block.
func (r Range) abs() uint64 { return r.Buf.off + r.Off }

func alignUp(v, a uint64) uint64 { return (v + a - 1) / a * a }

// HumanBytes spells a byte count with a binary unit, as error messages and tables show it.
func HumanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// chooseMemory picks the memory types for device blocks and staging blocks among those the buffer allows.
// Device blocks prefer DEVICE_LOCAL; they are mapped directly only when that same type is also HOST_VISIBLE and
// HOST_COHERENT (unified memory: integrated GPUs, lavapipe, SwiftShader). Otherwise transfers bounce through
// staging blocks, which the specification guarantees a HOST_VISIBLE|HOST_COHERENT type for.
func chooseMemory(mp *vulkan.PhysicalDeviceMemoryProperties, allowed uint32, forceStaging bool) ([2]memChoice, error) {
	const (
		local    = vulkan.MemoryPropertyFlags(vulkan.MemoryPropertyDeviceLocalBit)
		visible  = vulkan.MemoryPropertyFlags(vulkan.MemoryPropertyHostVisibleBit)
		coherent = vulkan.MemoryPropertyFlags(vulkan.MemoryPropertyHostCoherentBit)
		cached   = vulkan.MemoryPropertyFlags(vulkan.MemoryPropertyHostCachedBit)
	)
	find := func(want, prefer vulkan.MemoryPropertyFlags) int {
		found := -1
		for i := uint32(0); i < mp.MemoryTypeCount; i++ {
			if allowed&(1<<i) == 0 {
				continue
			}
			mp.MemoryTypes[i].Deref()
			f := mp.MemoryTypes[i].PropertyFlags
			if f&want != want {
				continue
			}
			if f&prefer == prefer {
				return int(i)
			}
			if found < 0 {
				found = int(i)
			}
		}
		return found
	}
	var out [2]memChoice
	dev := find(local, visible|coherent)
	if dev < 0 {
		dev = find(0, 0) // no device-local type offered for buffers: any will do
	}
	stage := find(visible|coherent, cached)
	if dev < 0 || stage < 0 {
		return out, fmt.Errorf("device offers no usable memory type for storage buffers")
	}
	mp.MemoryTypes[dev].Deref()
	mp.MemoryTypes[stage].Deref()
	df := mp.MemoryTypes[dev].PropertyFlags
	out[kindDevice] = memChoice{typeIndex: uint32(dev), heap: int(mp.MemoryTypes[dev].HeapIndex),
		mappable: !forceStaging && df&(visible|coherent) == visible|coherent}
	out[kindStaging] = memChoice{typeIndex: uint32(stage), heap: int(mp.MemoryTypes[stage].HeapIndex), mappable: true}
	return out, nil
}

// newBlock allocates one block of memory and its spanning VkBuffer, checking the heap's size first so an
// impossible request fails with a message naming the size and the heap instead of a driver error (or a driver
// that overcommits and dies later).
func (d *Device) newBlock(kind memKind, size uint64, dedicated bool) (*block, error) {
	a := &d.alloc
	ch := a.choice[kind]
	heap := ch.heap
	heapDesc := fmt.Sprintf("heap %d (%s, %s", heap, heapKind(d.info.Heaps[heap]), HumanBytes(a.heapSize[heap]))
	if size > a.heapSize[heap] {
		return nil, fmt.Errorf("allocate %s: larger than %s) of %s: %w", HumanBytes(size), heapDesc, d.info.Name,
			ErrOutOfMemory)
	}
	if a.heapUsed[heap]+size > a.heapSize[heap] {
		return nil, fmt.Errorf("allocate %s: %s already in use of %s) of %s: %w", HumanBytes(size),
			HumanBytes(a.heapUsed[heap]), heapDesc, d.info.Name, ErrOutOfMemory)
	}
	if a.maxAlloc > 0 && size > a.maxAlloc {
		return nil, fmt.Errorf("allocate %s: larger than the device's maxMemoryAllocationSize %s: %w",
			HumanBytes(size), HumanBytes(a.maxAlloc), ErrOutOfMemory)
	}
	b := &block{kind: kind, size: size, dedicated: dedicated, heap: heap}
	var buf vulkan.Buffer
	if err := resultError("vkCreateBuffer", vulkan.CreateBuffer(d.handle, &vulkan.BufferCreateInfo{
		SType: vulkan.StructureTypeBufferCreateInfo, Size: vulkan.DeviceSize(size), Usage: bufferUsage,
		SharingMode: vulkan.SharingModeExclusive,
	}, nil, &buf)); err != nil {
		return nil, fmt.Errorf("allocate %s: %w", HumanBytes(size), err)
	}
	var req vulkan.MemoryRequirements
	b.buf = buf
	vulkan.GetBufferMemoryRequirements(d.handle, b.buf, &req)
	req.Deref()
	var mem vulkan.DeviceMemory
	r := vulkan.AllocateMemory(d.handle, &vulkan.MemoryAllocateInfo{
		SType: vulkan.StructureTypeMemoryAllocateInfo, AllocationSize: req.Size, MemoryTypeIndex: ch.typeIndex,
	}, nil, &mem)
	b.mem = mem
	if r != vulkan.Success {
		vulkan.DestroyBuffer(d.handle, b.buf, nil)
		return nil, fmt.Errorf("allocate %s in %s) of %s: %w", HumanBytes(size), heapDesc, d.info.Name,
			resultError("vkAllocateMemory", r))
	}
	if err := resultError("vkBindBufferMemory", vulkan.BindBufferMemory(d.handle, b.buf, b.mem, 0)); err != nil {
		b.release(d.handle)
		return nil, err
	}
	if ch.mappable || kind == kindStaging {
		var p unsafe.Pointer
		if err := resultError("vkMapMemory", vulkan.MapMemory(d.handle, b.mem, 0, vulkan.DeviceSize(size), 0, &p)); err != nil {
			b.release(d.handle)
			return nil, err
		}
		b.mapped = p
	}
	b.free = []span{{0, size}}
	a.heapUsed[heap] += uint64(req.Size)
	a.blocks = append(a.blocks, b)
	return b, nil
}

func heapKind(h Heap) string {
	if h.DeviceLocal {
		return "device-local"
	}
	return "host"
}

func (b *block) release(dev vulkan.Device) {
	if b.mapped != nil {
		vulkan.UnmapMemory(dev, b.mem)
		b.mapped = nil
	}
	vulkan.DestroyBuffer(dev, b.buf, nil)
	vulkan.FreeMemory(dev, b.mem, nil)
}

// take carves size bytes aligned to align out of the block's free list, or reports false.
func (b *block) take(size, align uint64) (uint64, bool) {
	for i, s := range b.free {
		start := alignUp(s.off, align)
		if start+size > s.off+s.size {
			continue
		}
		var repl []span
		if start > s.off {
			repl = append(repl, span{s.off, start - s.off})
		}
		if end := start + size; end < s.off+s.size {
			repl = append(repl, span{end, s.off + s.size - end})
		}
		b.free = append(b.free[:i], append(repl, b.free[i+1:]...)...)
		return start, true
	}
	return 0, false
}

// give returns a range to the free list and merges it with its neighbours.
func (b *block) give(off, size uint64) {
	b.free = append(b.free, span{off, size})
	sort.Slice(b.free, func(i, j int) bool { return b.free[i].off < b.free[j].off })
	merged := b.free[:1]
	for _, s := range b.free[1:] {
		last := &merged[len(merged)-1]
		if last.off+last.size == s.off {
			last.size += s.size
		} else {
			merged = append(merged, s)
		}
	}
	b.free = merged
}

// allocate returns a Buffer of size bytes of the given kind, reusing free space in existing blocks first.
func (d *Device) allocate(kind memKind, size uint64) (*Buffer, error) {
	if size == 0 {
		return nil, fmt.Errorf("allocate a zero-byte buffer")
	}
	a := &d.alloc
	rounded := alignUp(size, a.align)
	if rounded > a.blockSize/2 {
		blk, err := d.newBlock(kind, rounded, true)
		if err != nil {
			return nil, err
		}
		blk.free = nil
		return &Buffer{dev: d, blk: blk, off: 0, size: size}, nil
	}
	for _, blk := range a.blocks {
		if blk.kind != kind || blk.dedicated {
			continue
		}
		if off, ok := blk.take(rounded, a.align); ok {
			return &Buffer{dev: d, blk: blk, off: off, size: size}, nil
		}
	}
	blk, err := d.newBlock(kind, a.blockSize, false)
	if err != nil {
		return nil, err
	}
	off, _ := blk.take(rounded, a.align)
	return &Buffer{dev: d, blk: blk, off: off, size: size}, nil
}

// Alloc returns a device buffer of size bytes, suballocated from a shared block (or a block of its own when it is
// larger than half a block). Its contents are undefined until written.
func (d *Device) Alloc(size uint64) (*Buffer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	return d.allocate(kindDevice, size)
}

// Free returns the buffer's memory to its block; a buffer with a block of its own releases that block. No command
// buffer that uses it may still be pending. Freeing twice is harmless.
func (b *Buffer) Free() {
	if b == nil || b.freed {
		return
	}
	d := b.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	b.freed = true
	if d.closed {
		return
	}
	if b.blk.dedicated {
		d.dropDescriptorSets(b.blk.buf)
		d.releaseBlock(b.blk)
		return
	}
	b.blk.give(b.off, alignUp(b.size, d.alloc.align))
}

// releaseBlock frees one block and removes it from the allocator.
func (d *Device) releaseBlock(blk *block) {
	a := &d.alloc
	for i, x := range a.blocks {
		if x == blk {
			a.blocks = append(a.blocks[:i], a.blocks[i+1:]...)
			break
		}
	}
	var req vulkan.MemoryRequirements
	vulkan.GetBufferMemoryRequirements(d.handle, blk.buf, &req)
	req.Deref()
	a.heapUsed[blk.heap] -= uint64(req.Size)
	blk.release(d.handle)
}

// MemoryInUse returns the bytes of device memory held in blocks, per heap index.
func (d *Device) MemoryInUse() []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]uint64(nil), d.alloc.heapUsed...)
}
