package vk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unsafe"

	vulkan "github.com/vulkan-go/vulkan"
)

// MaxTimestamps is how many timestamps one recorder may write: enough for a timestamp after every op of an
// adversarial training step (PGD-40 inside: 788 ops on small).
const MaxTimestamps = 4096

// Recorder records many dispatches and copies into one command buffer, inserting a pipeline barrier only where a
// command touches bytes that an earlier command since the last barrier wrote (read-after-write, write-after-write)
// or read (write-after-read). A recorded command buffer can be submitted any number of times: a training step is
// recorded once and replayed.
//
// A Recorder is not safe for concurrent use; its device is.
type Recorder struct {
	dev                  *Device
	pool                 vulkan.CommandPool
	cb                   vulkan.CommandBuffer
	fence                vulkan.Fence
	queries              vulkan.QueryPool
	labels               []string
	pending              []access // what commands since the last barrier touched
	recording            bool
	inFlight             bool
	dispatches, barriers int
	closed               bool
}

// access is one byte range of a block that a recorded command reads or writes.
type access struct {
	blk       *block
	off, size uint64
	write     bool
}

// Timing is one timestamp: its label and nanoseconds since the recorder's first timestamp.
type Timing struct {
	Label string
	Ns    float64
}

// NewRecorder creates a recorder (its own command pool, command buffer and fence) and begins recording.
func (d *Device) NewRecorder() (*Recorder, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	r := &Recorder{dev: d}
	var pool vulkan.CommandPool
	if err := resultError("vkCreateCommandPool", vulkan.CreateCommandPool(d.handle, &vulkan.CommandPoolCreateInfo{
		SType: vulkan.StructureTypeCommandPoolCreateInfo, QueueFamilyIndex: d.family,
		Flags: vulkan.CommandPoolCreateFlags(vulkan.CommandPoolCreateResetCommandBufferBit),
	}, nil, &pool)); err != nil {
		return nil, err
	}
	r.pool = pool
	cbs := make([]vulkan.CommandBuffer, 1)
	if err := resultError("vkAllocateCommandBuffers", vulkan.AllocateCommandBuffers(d.handle, &vulkan.CommandBufferAllocateInfo{
		SType: vulkan.StructureTypeCommandBufferAllocateInfo, CommandPool: r.pool,
		Level: vulkan.CommandBufferLevelPrimary, CommandBufferCount: 1,
	}, cbs)); err != nil {
		r.destroy()
		return nil, err
	}
	r.cb = cbs[0]
	var fence vulkan.Fence
	if err := resultError("vkCreateFence", vulkan.CreateFence(d.handle, &vulkan.FenceCreateInfo{
		SType: vulkan.StructureTypeFenceCreateInfo}, nil, &fence)); err != nil {
		r.destroy()
		return nil, err
	}
	r.fence = fence
	if err := r.begin(); err != nil {
		r.destroy()
		return nil, err
	}
	d.recorders[r] = struct{}{}
	return r, nil
}

func (r *Recorder) begin() error {
	if err := resultError("vkBeginCommandBuffer", vulkan.BeginCommandBuffer(r.cb, &vulkan.CommandBufferBeginInfo{
		SType: vulkan.StructureTypeCommandBufferBeginInfo})); err != nil {
		return err
	}
	r.recording = true
	r.pending = r.pending[:0]
	r.labels = r.labels[:0]
	r.dispatches, r.barriers = 0, 0
	return nil
}

func (r *Recorder) usable() error {
	switch {
	case r.closed:
		return ErrClosed
	case r.dev.closed:
		return ErrClosed
	case !r.recording:
		return fmt.Errorf("recorder is not recording: call Reset after Submit to record anew")
	}
	return nil
}

// Dispatches returns how many dispatches have been recorded; Barriers how many pipeline barriers were inserted.
func (r *Recorder) Dispatches() int { return r.dispatches }

// Barriers returns how many hazard barriers the recorder has inserted so far.
func (r *Recorder) Barriers() int { return r.barriers }

// hazard reports whether accesses conflict with what has been recorded since the last barrier.
func (r *Recorder) hazard(acc []access) bool {
	for _, a := range acc {
		for _, p := range r.pending {
			if p.blk == a.blk && a.off < p.off+p.size && p.off < a.off+a.size && (p.write || a.write) {
				return true
			}
		}
	}
	return false
}

// Barrier records a full compute/transfer memory barrier unconditionally.
func (r *Recorder) Barrier() error {
	if err := r.usable(); err != nil {
		return err
	}
	r.barrier()
	return nil
}

func (r *Recorder) barrier() {
	const stages = vulkan.PipelineStageFlags(vulkan.PipelineStageComputeShaderBit | vulkan.PipelineStageTransferBit)
	r.dev.inst.procs.memoryBarrier(r.cb, stages, stages,
		vulkan.AccessFlags(vulkan.AccessShaderWriteBit|vulkan.AccessTransferWriteBit),
		vulkan.AccessFlags(vulkan.AccessShaderReadBit|vulkan.AccessShaderWriteBit|
			vulkan.AccessTransferReadBit|vulkan.AccessTransferWriteBit))
	r.pending = r.pending[:0]
	r.barriers++
}

// track inserts a barrier if acc conflicts with pending work, then records acc as pending.
func (r *Recorder) track(acc []access) {
	if r.hazard(acc) {
		r.barrier()
	}
	r.pending = append(r.pending, acc...)
}

// Dispatch records one dispatch of p over groups workgroups, with push-constant data push (nil, a []byte, or a
// fixed-size value such as a struct of uint32/int32/float32 fields, encoded little-endian) and one Range per
// binding of the pipeline. Every argument is checked against the pipeline and the device's limits; nothing
// invalid reaches the driver.
func (r *Recorder) Dispatch(p *Pipeline, groups [3]uint32, push any, bufs ...Range) error {
	if err := r.usable(); err != nil {
		return err
	}
	d := r.dev
	if p == nil || p.dev != d {
		return fmt.Errorf("dispatch: pipeline is nil or from another device")
	}
	name := p.spec.Shader
	if len(bufs) != len(p.spec.Bindings) {
		return fmt.Errorf("dispatch %s: %d buffers for %d bindings", name, len(bufs), len(p.spec.Bindings))
	}
	lim := d.info.Limits
	for i, g := range groups {
		if g == 0 || g > lim.MaxWorkgroupCount[i] {
			return fmt.Errorf("dispatch %s: %v workgroups (each dimension must be 1..%v)", name, groups,
				lim.MaxWorkgroupCount)
		}
	}
	pc, err := encodePush(push)
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", name, err)
	}
	if uint32(len(pc)) != p.spec.PushSize {
		return fmt.Errorf("dispatch %s: %d bytes of push constants, pipeline declares %d", name, len(pc),
			p.spec.PushSize)
	}
	key := setKey{layout: p.setLayout, n: len(bufs)}
	acc := make([]access, len(bufs))
	for i, b := range bufs {
		if err := b.check(d); err != nil {
			return fmt.Errorf("dispatch %s: binding %d: %w", name, i, err)
		}
		if ts := p.spec.Bindings[i].texelSize(); ts != 0 {
			if err := d.texelRangeOK(b, ts); err != nil {
				return fmt.Errorf("dispatch %s: binding %d: %w", name, i, err)
			}
		} else if b.abs()%lim.MinStorageBufferAlignment != 0 {
			return fmt.Errorf("dispatch %s: binding %d: offset %d is not a multiple of the device's "+
				"minStorageBufferOffsetAlignment %d", name, i, b.Off, lim.MinStorageBufferAlignment)
		}
		if b.Size > lim.MaxStorageBufferRange {
			return fmt.Errorf("dispatch %s: binding %d: range of %s exceeds the device's maxStorageBufferRange %s; "+
				"bind it in slices", name, i, HumanBytes(b.Size), HumanBytes(lim.MaxStorageBufferRange))
		}
		key.b[i] = bindKey{buf: b.Buf.blk.buf, off: b.abs(), size: b.Size}
		key.acc[i] = p.spec.Bindings[i]
		acc[i] = access{blk: b.Buf.blk, off: b.abs(), size: b.Size, write: p.spec.Bindings[i]&Write != 0}
	}
	d.mu.Lock()
	set, err := d.descs.get(d.handle, d.inst.procs, key)
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", name, err)
	}
	r.track(acc)
	vulkan.CmdBindPipeline(r.cb, vulkan.PipelineBindPointCompute, p.handle)
	vulkan.CmdBindDescriptorSets(r.cb, vulkan.PipelineBindPointCompute, p.layout, 0, 1,
		[]vulkan.DescriptorSet{set}, 0, nil)
	if len(pc) > 0 {
		vulkan.CmdPushConstants(r.cb, p.layout, vulkan.ShaderStageFlags(vulkan.ShaderStageComputeBit), 0,
			uint32(len(pc)), unsafe.Pointer(&pc[0]))
	}
	vulkan.CmdDispatch(r.cb, groups[0], groups[1], groups[2])
	r.dispatches++
	return nil
}

// encodePush turns push-constant data into bytes.
func encodePush(push any) ([]byte, error) {
	switch v := push.(type) {
	case nil:
		return nil, nil
	case []byte:
		return v, nil
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, push); err != nil {
		return nil, fmt.Errorf("push constants of type %T: %v", push, err)
	}
	return buf.Bytes(), nil
}

// Copy records a buffer-to-buffer copy of src.Size bytes from src to dst (dst.Size must be at least as large).
func (r *Recorder) Copy(dst, src Range) error {
	if err := r.usable(); err != nil {
		return err
	}
	if err := src.check(r.dev); err != nil {
		return fmt.Errorf("copy source: %w", err)
	}
	if err := dst.check(r.dev); err != nil {
		return fmt.Errorf("copy destination: %w", err)
	}
	if dst.Size < src.Size {
		return fmt.Errorf("copy of %d bytes into a %d-byte range", src.Size, dst.Size)
	}
	if src.Buf.blk == dst.Buf.blk && src.abs() < dst.abs()+src.Size && dst.abs() < src.abs()+src.Size {
		return fmt.Errorf("copy between overlapping ranges")
	}
	r.track([]access{{blk: src.Buf.blk, off: src.abs(), size: src.Size},
		{blk: dst.Buf.blk, off: dst.abs(), size: src.Size, write: true}})
	r.dev.inst.procs.copyBuffer(r.cb, src.Buf.blk.buf, dst.Buf.blk.buf, src.abs(), dst.abs(), src.Size)
	return nil
}

// Timestamp records a timestamp written when all previously recorded commands have completed. It fails on a
// queue that has no timestamp support.
func (r *Recorder) Timestamp(label string) error {
	if err := r.usable(); err != nil {
		return err
	}
	d := r.dev
	if d.tsBits == 0 {
		return fmt.Errorf("timestamps: %s's compute queue does not support them", d.info.Name)
	}
	if len(r.labels) == MaxTimestamps {
		return fmt.Errorf("timestamps: more than %d in one recording", MaxTimestamps)
	}
	if r.queries == vulkan.NullQueryPool {
		var queries vulkan.QueryPool
		if err := resultError("vkCreateQueryPool", vulkan.CreateQueryPool(d.handle, &vulkan.QueryPoolCreateInfo{
			SType: vulkan.StructureTypeQueryPoolCreateInfo, QueryType: vulkan.QueryTypeTimestamp,
			QueryCount: MaxTimestamps,
		}, nil, &queries)); err != nil {
			return err
		}
		r.queries = queries
	}
	i := uint32(len(r.labels))
	// Reset in the command buffer itself, so a replayed recording rewrites its queries every submit.
	vulkan.CmdResetQueryPool(r.cb, r.queries, i, 1)
	vulkan.CmdWriteTimestamp(r.cb, vulkan.PipelineStageBottomOfPipeBit, r.queries, i)
	r.labels = append(r.labels, label)
	return nil
}

// End finishes recording. A final barrier makes every shader and transfer write visible to the host, so buffers
// read after Wait hold the results.
func (r *Recorder) End() error {
	if err := r.usable(); err != nil {
		return err
	}
	r.dev.inst.procs.memoryBarrier(r.cb,
		vulkan.PipelineStageFlags(vulkan.PipelineStageComputeShaderBit|vulkan.PipelineStageTransferBit),
		vulkan.PipelineStageFlags(vulkan.PipelineStageHostBit),
		vulkan.AccessFlags(vulkan.AccessShaderWriteBit|vulkan.AccessTransferWriteBit),
		vulkan.AccessFlags(vulkan.AccessHostReadBit))
	r.recording = false
	return resultError("vkEndCommandBuffer", vulkan.EndCommandBuffer(r.cb))
}

// Submit ends recording if needed and submits the command buffer; Wait blocks until it has run. A recorder
// may be submitted again after Wait.
func (r *Recorder) Submit() error {
	if r.closed || r.dev.closed {
		return ErrClosed
	}
	if r.inFlight {
		return fmt.Errorf("submit: the previous submit has not been waited for")
	}
	if r.recording {
		if err := r.End(); err != nil {
			return err
		}
	}
	d := r.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := resultError("vkResetFences", vulkan.ResetFences(d.handle, 1, []vulkan.Fence{r.fence})); err != nil {
		return err
	}
	if err := resultError("vkQueueSubmit", d.inst.procs.queueSubmit(d.queue, r.cb, r.fence)); err != nil {
		return err
	}
	r.inFlight = true
	return nil
}

// Wait blocks until the last Submit has finished on the device.
func (r *Recorder) Wait() error {
	if !r.inFlight {
		return nil
	}
	for {
		res := vulkan.WaitForFences(r.dev.handle, 1, []vulkan.Fence{r.fence}, vulkan.True, uint64(time.Second))
		if res == vulkan.Timeout {
			continue // long work on a slow device; keep waiting, a lost device reports itself
		}
		r.inFlight = false
		return resultError("vkWaitForFences", res)
	}
}

// Run submits and waits.
func (r *Recorder) Run() error {
	if err := r.Submit(); err != nil {
		return err
	}
	return r.Wait()
}

// Reset discards what was recorded and begins a new recording.
func (r *Recorder) Reset() error {
	if r.closed || r.dev.closed {
		return ErrClosed
	}
	if err := r.Wait(); err != nil {
		return err
	}
	if r.recording {
		if err := resultError("vkEndCommandBuffer", vulkan.EndCommandBuffer(r.cb)); err != nil {
			return err
		}
	}
	if err := resultError("vkResetCommandBuffer", vulkan.ResetCommandBuffer(r.cb, 0)); err != nil {
		return err
	}
	return r.begin()
}

// Timings returns the timestamps of the last completed submit, in nanoseconds since the first one.
func (r *Recorder) Timings() ([]Timing, error) {
	if r.inFlight {
		return nil, fmt.Errorf("timings: call Wait first")
	}
	n := len(r.labels)
	if n == 0 {
		return nil, nil
	}
	raw := make([]uint64, n)
	if err := resultError("vkGetQueryPoolResults", vulkan.GetQueryPoolResults(r.dev.handle, r.queries, 0, uint32(n),
		uint(8*n), unsafe.Pointer(&raw[0]), 8,
		vulkan.QueryResultFlags(vulkan.QueryResult64Bit|vulkan.QueryResultWaitBit))); err != nil {
		return nil, err
	}
	mask := uint64(math.MaxUint64)
	if r.dev.tsBits < 64 {
		mask = 1<<r.dev.tsBits - 1
	}
	period := float64(r.dev.info.Limits.TimestampPeriod)
	out := make([]Timing, n)
	for i := range raw {
		out[i] = Timing{Label: r.labels[i], Ns: float64((raw[i]-raw[0])&mask) * period}
	}
	return out, nil
}

// Close waits for pending work and destroys the recorder's objects. Closing twice is harmless.
func (r *Recorder) Close() {
	if r == nil || r.closed {
		return
	}
	r.Wait()
	d := r.dev
	d.mu.Lock()
	delete(d.recorders, r)
	d.mu.Unlock()
	r.destroy()
}

func (r *Recorder) destroy() {
	r.closed = true
	h := r.dev.handle
	if r.queries != vulkan.NullQueryPool {
		vulkan.DestroyQueryPool(h, r.queries, nil)
	}
	if r.fence != vulkan.NullFence {
		vulkan.DestroyFence(h, r.fence, nil)
	}
	if r.pool != vulkan.NullCommandPool {
		vulkan.DestroyCommandPool(h, r.pool, nil)
	}
}

// texelRangeOK reports why r cannot be bound as a uniform texel buffer of texelSize-byte texels, or nil.
func (d *Device) texelRangeOK(r Range, texelSize uint64) error {
	t := d.info.Texel
	switch {
	case r.abs()%t.OffsetAlignment != 0:
		return fmt.Errorf("texel binding at offset %d: not a multiple of the device's minTexelBufferOffsetAlignment %d",
			r.Off, t.OffsetAlignment)
	case r.Size%texelSize != 0:
		return fmt.Errorf("texel binding of %d bytes: not a whole number of %d-byte texels", r.Size, texelSize)
	case r.Size/texelSize > t.MaxElements:
		return fmt.Errorf("texel binding of %d texels: more than the device's maxTexelBufferElements %d",
			r.Size/texelSize, t.MaxElements)
	}
	return nil
}

// TexelFits reports whether r (a valid range of this device) can be bound as a uniform texel buffer of a (Texel1
// or Texel4): the device reads that format, and the range's offset, size and texel count suit its limits.
// Kernels check it to choose between a texel and a storage-buffer variant of a shader.
func (d *Device) TexelFits(r Range, a Access) bool {
	ts := a.texelSize()
	if ts == 0 || ts == 16 && !d.info.Texel.Float4 || ts == 4 && !d.info.Texel.Float1 || r.Buf == nil ||
		r.Buf.blk == nil {
		return false
	}
	return d.texelRangeOK(r, ts) == nil
}
