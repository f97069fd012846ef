package vk_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sqnet/sqnet/vk"
	"github.com/sqnet/sqnet/vk/vktest"
)

// Feature tests in the manner of kompute's: one Vulkan mechanism each, exact expected values, all under the
// validation layer (vktest fails a test on any message).

// iotaPush mirrors iota.comp's push constants.
type iotaPush struct{ Nx, Ny, Nz, Base uint32 }

// scalarPush mirrors axpy.comp's and addscalar.comp's push constants.
type scalarPush struct {
	N uint32
	V float32
}

func mustPipeline(t testing.TB, d *vk.Device, spec vk.PipelineSpec) *vk.Pipeline {
	t.Helper()
	p, err := d.Pipeline(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustAlloc(t testing.TB, d *vk.Device, size uint64) *vk.Buffer {
	t.Helper()
	b, err := d.Alloc(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	return b
}

func mustRecorder(t testing.TB, d *vk.Device) *vk.Recorder {
	t.Helper()
	r, err := d.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// dispatchOnce records one single-workgroup dispatch of p with push constants push (nil for none), runs it and
// returns the first n words of out.
func dispatchOnce(t testing.TB, d *vk.Device, p *vk.Pipeline, push any, out *vk.Buffer, n int) []uint32 {
	t.Helper()
	r := mustRecorder(t, d)
	if err := r.Dispatch(p, [3]uint32{1, 1, 1}, push, out.All()); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
	got := make([]uint32, n)
	if err := vk.Download(out, got); err != nil {
		t.Fatal(err)
	}
	return got
}

// firstMismatch returns the first index where got and want differ, or -1.
func firstMismatch[T comparable](got, want []T) int {
	for i := range want {
		if got[i] != want[i] {
			return i
		}
	}
	return -1
}

func TestPushConstants(t *testing.T) {
	d := vktest.Open(t)
	p := mustPipeline(t, d, vk.PipelineSpec{Shader: "pushecho", Bindings: []vk.Access{vk.Write}, PushSize: 128,
		Local: [3]uint32{32, 1, 1}})
	out := mustAlloc(t, d, 32*4)
	var push [32]uint32
	for i := range push {
		push[i] = 0xdeadbeef ^ uint32(i)*0x01010101
	}
	r := mustRecorder(t, d)
	if err := r.Dispatch(p, [3]uint32{1, 1, 1}, push, out.All()); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
	got := make([]uint32, 32)
	if err := vk.Download(out, got); err != nil {
		t.Fatal(err)
	}
	if i := firstMismatch(got, push[:]); i >= 0 {
		t.Fatalf("push word %d: got %#x, want %#x", i, got[i], push[i])
	}
	// A push block of the wrong size is refused before it reaches the driver.
	if err := r.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := r.Dispatch(p, [3]uint32{1, 1, 1}, push[:31], out.All()); err == nil {
		t.Fatal("dispatch with 124 bytes of push constants for a 128-byte block succeeded")
	}
}

func TestSpecializationConstants(t *testing.T) {
	d := vktest.Open(t)
	out := mustAlloc(t, d, 6*4)
	cases := []struct {
		name   string
		local  [3]uint32
		consts []vk.SpecConst
		want   []uint32
	}{
		{"defaults", [3]uint32{}, nil, []uint32{7, math.Float32bits(0.5), math.MaxUint32, 1, 1, 1}},
		{"set", [3]uint32{4, 2, 3}, []vk.SpecConst{vk.SpecU32(3, 12345), vk.SpecF32(4, -3.25), vk.SpecI32(5, -42)},
			[]uint32{12345, math.Float32bits(-3.25), uint32(0xffffffd6), 4, 2, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPipeline(t, d, vk.PipelineSpec{Shader: "specconst", Bindings: []vk.Access{vk.Write},
				Local: c.local, Consts: c.consts})
			if p.Local() != [3]uint32{max(c.local[0], 1), max(c.local[1], 1), max(c.local[2], 1)} {
				t.Fatalf("Local() = %v", p.Local())
			}
			got := dispatchOnce(t, d, p, nil, out, 6)
			if i := firstMismatch(got, c.want); i >= 0 {
				t.Fatalf("word %d: got %#x, want %#x (all: %v)", i, got[i], c.want[i], got)
			}
		})
	}
	if _, err := d.Pipeline(vk.PipelineSpec{Shader: "specconst", Bindings: []vk.Access{vk.Write},
		Consts: []vk.SpecConst{vk.SpecU32(1, 3)}}); err == nil {
		t.Fatal("a constant with id 1 (the workgroup height) was accepted")
	}
}

// TestOddDispatchSizes writes iota over grids that leave the last workgroup partly empty, with sentinels after
// the end: every element inside is written exactly, nothing outside is touched.
func TestOddDispatchSizes(t *testing.T) {
	d := vktest.Open(t)
	const sentinel = 0xFFFFFFFF
	for _, local := range [][3]uint32{{64, 1, 1}, {8, 8, 1}, {4, 4, 4}, {1, 1, 1}} {
		p := mustPipeline(t, d, vk.PipelineSpec{Shader: "iota", Bindings: []vk.Access{vk.Write}, PushSize: 16,
			Local: local})
		for _, n := range [][3]uint32{{1, 1, 1}, {3, 5, 7}, {17, 1, 1}, {31, 3, 1}, {257, 1, 1}, {1000003, 1, 1},
			{65, 67, 3}} {
			if g := p.Groups(n[0], n[1], n[2]); g[0] > 65535 {
				continue // more workgroups than the guaranteed minimum of maxComputeWorkGroupCount
			}
			total := int(n[0] * n[1] * n[2])
			buf := mustAlloc(t, d, uint64(4*(total+16)))
			init := make([]uint32, total+16)
			for i := range init {
				init[i] = sentinel
			}
			if err := vk.Upload(buf, init); err != nil {
				t.Fatal(err)
			}
			r := mustRecorder(t, d)
			if err := r.Dispatch(p, p.Groups(n[0], n[1], n[2]), iotaPush{n[0], n[1], n[2], 100}, buf.All()); err != nil {
				t.Fatal(err)
			}
			if err := r.Run(); err != nil {
				t.Fatal(err)
			}
			got := make([]uint32, total+16)
			if err := vk.Download(buf, got); err != nil {
				t.Fatal(err)
			}
			want := make([]uint32, total+16)
			for i := range want {
				want[i] = sentinel
				if i < total {
					want[i] = 100 + uint32(i)
				}
			}
			if i := firstMismatch(got, want); i >= 0 {
				t.Fatalf("local %v grid %v: element %d = %#x, want %#x", local, n, i, got[i], want[i])
			}
			r.Close()
			buf.Free()
		}
	}
}

// TestWorkgroupLimits checks that sizes beyond the device's limits are refused with an error, not passed on.
func TestWorkgroupLimits(t *testing.T) {
	d := vktest.Open(t)
	lim := d.Info().Limits
	bad := [][3]uint32{
		{lim.MaxWorkgroupSize[0] + 1, 1, 1},
		{1, lim.MaxWorkgroupSize[1] + 1, 1},
	}
	// A square workgroup whose sides fit but whose product does not.
	side := uint32(math.Sqrt(float64(lim.MaxWorkgroupInvocations))) + 1
	if side <= lim.MaxWorkgroupSize[0] && side <= lim.MaxWorkgroupSize[1] {
		bad = append(bad, [3]uint32{side, side, 1})
	}
	for _, l := range bad {
		if _, err := d.Pipeline(vk.PipelineSpec{Shader: "iota", Bindings: []vk.Access{vk.Write}, PushSize: 16,
			Local: l}); err == nil || !strings.Contains(err.Error(), "workgroup") {
			t.Errorf("workgroup %v (limits %v, %d invocations): err = %v", l, lim.MaxWorkgroupSize,
				lim.MaxWorkgroupInvocations, err)
		}
	}
	p := mustPipeline(t, d, vk.PipelineSpec{Shader: "iota", Bindings: []vk.Access{vk.Write}, PushSize: 16,
		Local: [3]uint32{64, 1, 1}})
	buf := mustAlloc(t, d, 1024)
	r := mustRecorder(t, d)
	for _, g := range [][3]uint32{{0, 1, 1}, {lim.MaxWorkgroupCount[0] + 1, 1, 1}} {
		if err := r.Dispatch(p, g, iotaPush{1, 1, 1, 0}, buf.All()); err == nil {
			t.Errorf("dispatch of %v workgroups accepted", g)
		}
	}
	if err := r.Dispatch(p, [3]uint32{1, 1, 1}, iotaPush{1, 1, 1, 0}); err == nil {
		t.Error("dispatch with no buffer for a one-binding pipeline accepted")
	}
	if err := r.Dispatch(p, [3]uint32{1, 1, 1}, iotaPush{1, 1, 1, 0}, buf.Range(512, 1024)); err == nil {
		t.Error("dispatch with a range past the buffer's end accepted")
	}
	if err := r.Dispatch(p, [3]uint32{1, 1, 1}, iotaPush{1, 1, 1, 0}, buf.Range(4, 16)); err == nil &&
		lim.MinStorageBufferAlignment > 4 {
		t.Error("dispatch with a misaligned offset accepted")
	}
}

// TestLargeBufferInSlices fills a 256 MiB buffer through bindings no larger than maxStorageBufferRange and checks
// every element.
func TestLargeBufferInSlices(t *testing.T) {
	d := vktest.Open(t)
	const size = 256 << 20
	lim := d.Info().Limits
	buf := mustAlloc(t, d, size)
	p := mustPipeline(t, d, vk.PipelineSpec{Shader: "iota", Bindings: []vk.Access{vk.Write}, PushSize: 16,
		Local: [3]uint32{64, 1, 1}})
	if lim.MaxStorageBufferRange < size {
		r := mustRecorder(t, d)
		err := r.Dispatch(p, [3]uint32{1, 1, 1}, iotaPush{1, 1, 1, 0}, buf.All())
		if err == nil || !strings.Contains(err.Error(), "maxStorageBufferRange") {
			t.Fatalf("binding 256 MiB with maxStorageBufferRange %d: err = %v", lim.MaxStorageBufferRange, err)
		}
	}
	// Slices: the largest multiple of 1 MiB within the range limit, at most 64 MiB so the test crosses slices.
	slice := min(lim.MaxStorageBufferRange, 64<<20) / (1 << 20) * (1 << 20)
	const nx = 8192 // a 2-D grid keeps the workgroup count far below maxComputeWorkGroupCount
	r := mustRecorder(t, d)
	for off := uint64(0); off < size; off += slice {
		n := uint32(min(slice, size-off) / 4)
		if err := r.Dispatch(p, p.Groups(nx, n/nx, 1), iotaPush{nx, n / nx, 1, uint32(off / 4)},
			buf.Range(off, uint64(n)*4)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
	if r.Barriers() != 0 {
		t.Errorf("%d barriers between writes of disjoint slices, want 0", r.Barriers())
	}
	got := make([]uint32, size/4)
	if err := vk.Download(buf, got); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != uint32(i) {
			t.Fatalf("element %d (slice %d of %d bytes) = %d, want %d", i, uint64(i)*4/slice, slice, v, i)
		}
	}
}

// TestManyDispatches chains 10 000 dependent dispatches in one command buffer: each adds 1 to the same buffer, so
// any missing barrier loses increments.
func TestManyDispatches(t *testing.T) {
	d := vktest.Open(t)
	const n, times = 257, 10000
	p := mustPipeline(t, d, vk.PipelineSpec{Shader: "addscalar", Bindings: []vk.Access{vk.ReadWrite}, PushSize: 8,
		Local: [3]uint32{64, 1, 1}})
	buf := mustAlloc(t, d, 4*n)
	if err := vk.Upload(buf, make([]float32, n)); err != nil {
		t.Fatal(err)
	}
	r := mustRecorder(t, d)
	for range times {
		if err := r.Dispatch(p, p.Groups(n, 1, 1), scalarPush{n, 1}, buf.All()); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
	if r.Dispatches() != times || r.Barriers() != times-1 {
		t.Errorf("%d dispatches with %d barriers, want %d with %d", r.Dispatches(), r.Barriers(), times, times-1)
	}
	got := make([]float32, n)
	if err := vk.Download(buf, got); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != times {
			t.Fatalf("element %d = %v, want %d", i, v, times)
		}
	}
}

// TestBarriersOnlyOnHazards checks the recorder's hazard tracking on ranges of one block.
func TestBarriersOnlyOnHazards(t *testing.T) {
	d := vktest.Open(t)
	add := mustPipeline(t, d, vk.PipelineSpec{Shader: "addscalar", Bindings: []vk.Access{vk.ReadWrite}, PushSize: 8,
		Local: [3]uint32{64, 1, 1}})
	axpy := mustPipeline(t, d, vk.PipelineSpec{Shader: "axpy", Bindings: []vk.Access{vk.Read, vk.ReadWrite},
		PushSize: 8, Local: [3]uint32{64, 1, 1}})
	a, b, c := mustAlloc(t, d, 1024), mustAlloc(t, d, 1024), mustAlloc(t, d, 1024)
	for _, x := range []*vk.Buffer{a, b, c} {
		if err := vk.Upload(x, make([]float32, 256)); err != nil {
			t.Fatal(err)
		}
	}
	r := mustRecorder(t, d)
	steps := []struct {
		p        *vk.Pipeline
		bufs     []vk.Range
		barriers int // total barriers after this step
	}{
		{add, []vk.Range{a.All()}, 0},
		{add, []vk.Range{b.All()}, 0},                   // disjoint from a
		{axpy, []vk.Range{a.All(), c.All()}, 1},         // reads a, written above: read-after-write
		{axpy, []vk.Range{b.Range(0, 512), c.All()}, 2}, // c written by the step before: write-after-write
		{add, []vk.Range{b.Range(512, 512)}, 2},         // the other half of b: only a's... untouched since the barrier
		{add, []vk.Range{b.Range(0, 512)}, 3},           // read by the axpy since the barrier: write-after-read
	}
	for i, s := range steps {
		push := scalarPush{256, 1}
		if s.p == axpy {
			push = scalarPush{128, 2}
		}
		if err := r.Dispatch(s.p, s.p.Groups(256, 1, 1), push, s.bufs...); err != nil {
			t.Fatal(err)
		}
		if r.Barriers() != s.barriers {
			t.Fatalf("after step %d: %d barriers, want %d", i, r.Barriers(), s.barriers)
		}
	}
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
}

// TestRoundTrip uploads data, runs a shader on it and downloads the result, directly mapped and through staging
// buffers (the discrete-GPU path), including transfers larger than one staging buffer.
func TestRoundTrip(t *testing.T) {
	for _, staging := range []bool{false, true} {
		name := "mapped"
		if staging {
			name = "staging"
		}
		t.Run(name, func(t *testing.T) {
			opts := vktest.Options()
			opts.ForceStaging = staging
			d := vktest.OpenWith(t, opts)
			if staging && d.Mappable() {
				t.Fatal("ForceStaging left device memory mapped")
			}
			p := mustPipeline(t, d, vk.PipelineSpec{Shader: "axpy", Bindings: []vk.Access{vk.Read, vk.ReadWrite},
				PushSize: 8, Local: [3]uint32{128, 1, 1}})
			for _, n := range []int{1, 3, 17, 257, 5<<20 + 3} { // the last is 20 MiB: more than one staging buffer
				rng := rand.New(rand.NewPCG(uint64(n), 1))
				x, y := make([]float32, n), make([]float32, n)
				for i := range x {
					x[i], y[i] = rng.Float32()*4-2, rng.Float32()*4-2
				}
				bx, by := mustAlloc(t, d, uint64(4*n)), mustAlloc(t, d, uint64(4*n))
				if err := vk.Upload(bx, x); err != nil {
					t.Fatal(err)
				}
				if err := vk.Upload(by, y); err != nil {
					t.Fatal(err)
				}
				r := mustRecorder(t, d)
				nx := uint32(n)
				g := p.Groups(nx, 1, 1)
				if err := r.Dispatch(p, g, scalarPush{nx, 2}, bx.All(), by.All()); err != nil {
					t.Fatal(err)
				}
				if err := r.Run(); err != nil {
					t.Fatal(err)
				}
				got := make([]float32, n)
				if err := vk.Download(by, got); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if want := 2*x[i] + y[i]; got[i] != want { // 2·x is exact: one rounding either way
						t.Fatalf("n=%d: element %d = %v, want %v (x=%v y=%v)", n, i, got[i], want, x[i], y[i])
					}
				}
				// Partial reads and writes at an offset.
				if err := by.Write(8, []byte{1, 2, 3, 4}); err != nil && n >= 3 {
					t.Fatal(err)
				}
				if err := by.Read(uint64(4*n)-2, make([]byte, 4)); err == nil {
					t.Fatal("read past the end of a buffer succeeded")
				}
			}
		})
	}
}

func TestTimestamps(t *testing.T) {
	d := vktest.Open(t)
	const n = 1 << 22
	p := mustPipeline(t, d, vk.PipelineSpec{Shader: "addscalar", Bindings: []vk.Access{vk.ReadWrite}, PushSize: 8,
		Local: [3]uint32{256, 1, 1}})
	buf := mustAlloc(t, d, 4*n)
	r := mustRecorder(t, d)
	if err := r.Timestamp("start"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := r.Dispatch(p, p.Groups(n, 1, 1), scalarPush{n, 1}, buf.All()); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Timestamp("end"); err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 2; run++ { // a replayed recording rewrites its timestamps
		start := time.Now()
		if err := r.Run(); err != nil {
			t.Fatal(err)
		}
		wall := time.Since(start)
		ts, err := r.Timings()
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 2 || ts[0].Label != "start" || ts[1].Label != "end" || ts[0].Ns != 0 {
			t.Fatalf("timings %+v", ts)
		}
		if ts[1].Ns <= 0 || ts[1].Ns > float64(wall.Nanoseconds()) {
			t.Fatalf("run %d: 4 dispatches over 16 MiB took %.0f ns on the device, %v on the host clock", run,
				ts[1].Ns, wall)
		}
	}
}

// TestTeardown opens and closes devices repeatedly, leaving objects for Close to release; the validation layer
// must stay silent and closed objects must refuse use.
func TestTeardown(t *testing.T) {
	for i := 0; i < 3; i++ {
		d, err := vk.Open(vktest.Options())
		if err != nil {
			t.Fatalf("%v\n%s", err, vktest.Hint)
		}
		inst := d.Instance()
		p := mustPipeline(t, d, vk.PipelineSpec{Shader: "iota", Bindings: []vk.Access{vk.Write}, PushSize: 16})
		b, err := d.Alloc(4096)
		if err != nil {
			t.Fatal(err)
		}
		big, err := d.Alloc(DefaultBlockSizeForTest)
		if err != nil {
			t.Fatal(err)
		}
		r, err := d.NewRecorder()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Dispatch(p, [3]uint32{1, 1, 1}, iotaPush{1, 1, 1, 0}, b.All()); err != nil {
			t.Fatal(err)
		}
		if err := r.Submit(); err != nil { // submitted, never waited for: Close must wait
			t.Fatal(err)
		}
		big.Free()
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		b.Free() // after Close: harmless
		r.Close()
		if _, err := d.Alloc(16); !errors.Is(err, vk.ErrClosed) {
			t.Fatalf("Alloc after Close: %v", err)
		}
		if _, err := d.NewRecorder(); !errors.Is(err, vk.ErrClosed) {
			t.Fatalf("NewRecorder after Close: %v", err)
		}
		vktest.CheckMessages(t, inst.Messages())
	}
}

// DefaultBlockSizeForTest is larger than half a block, so it gets (and on Free releases) a block of its own.
const DefaultBlockSizeForTest = vk.DefaultBlockSize/2 + 4096

func TestAllocationLargerThanHeap(t *testing.T) {
	d := vktest.Open(t)
	var biggest vk.Heap
	for _, h := range d.Info().Heaps {
		if h.Size > biggest.Size {
			biggest = h
		}
	}
	_, err := d.Alloc(biggest.Size + 1<<30)
	if !errors.Is(err, vk.ErrOutOfMemory) || !vk.IsEnvironment(err) {
		t.Fatalf("allocating more than the largest heap: err = %v, want ErrOutOfMemory", err)
	}
	for _, part := range []string{"allocate " + vk.HumanBytes(biggest.Size+1<<30), "heap"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name %q", err, part)
		}
	}
	if _, err := d.Alloc(0); err == nil {
		t.Error("a zero-byte allocation succeeded")
	}
}

func TestPipelineCachePersisted(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		opts := vktest.Options()
		opts.PipelineCacheDir = dir
		d := vktest.OpenWith(t, opts)
		mustPipeline(t, d, vk.PipelineSpec{Shader: "axpy", Bindings: []vk.Access{vk.Read, vk.ReadWrite}, PushSize: 8,
			Local: [3]uint32{64, 1, 1}})
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepathGlob(dir, "pipelines-*.bin")
	if len(files) != 1 {
		t.Fatalf("pipeline cache files in %s: %v, want one", dir, files)
	}
}

// TestPipelinesUnderGC creates pipelines while another goroutine forces garbage collections back to back. The
// structs a driver reads during vkCreateComputePipelines, vkUpdateDescriptorSets and vkQueueSubmit must not be
// memory the Go collector can free mid-call (vulkan-go's converters hand it to a finalizer; CI crashed inside
// SwiftShader's pipeline compiler that way): every pipeline must see exactly its own specialization constants.
func TestPipelinesUnderGC(t *testing.T) {
	d := vktest.Open(t)
	out := mustAlloc(t, d, 6*4)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	n := 48
	if testing.Short() {
		n = 16
	}
	for i := range n {
		v := uint32(1000 + i)
		p := mustPipeline(t, d, vk.PipelineSpec{Shader: "specconst", Bindings: []vk.Access{vk.Write},
			Local: [3]uint32{uint32(1 + i%4), 1, 1}, Consts: []vk.SpecConst{vk.SpecU32(3, v), vk.SpecF32(4, float32(i)),
				vk.SpecI32(5, -int32(i))}})
		got := dispatchOnce(t, d, p, nil, out, 6)
		want := []uint32{v, math.Float32bits(float32(i)), uint32(-int32(i)), uint32(1 + i%4), 1, 1}
		if j := firstMismatch(got, want); j >= 0 {
			t.Fatalf("pipeline %d, word %d: got %#x, want %#x", i, j, got[j], want[j])
		}
	}
}

// TestTexelBindings reads a range through vec4 and float texel views at a non-zero offset and checks every value
// arrives from its place; misaligned, ragged, oversized and writable texel bindings are refused before the driver
// sees them.
func TestTexelBindings(t *testing.T) {
	d := vktest.Open(t)
	tx := d.Info().Texel
	if !tx.Float1 || !tx.Float4 {
		t.Skipf("%s reads no fp32 uniform texel buffers", d.Info().Name)
	}
	const n = 300
	off := tx.OffsetAlignment // bytes: the views start past the buffer's start
	in := mustAlloc(t, d, off+n*4)
	vals := make([]float32, (off+n*4)/4)
	for i := range vals {
		vals[i] = float32(i) // float i of the buffer
	}
	if err := vk.Upload(in, vals); err != nil {
		t.Fatal(err)
	}
	out := mustAlloc(t, d, n*4)
	p := mustPipeline(t, d, vk.PipelineSpec{Shader: "texelread", Bindings: []vk.Access{vk.Texel4, vk.Texel1, vk.Write},
		PushSize: 4, Local: [3]uint32{64, 1, 1}})
	view := vk.Range{Buf: in, Off: off, Size: n * 4}
	r := mustRecorder(t, d)
	if !d.TexelFits(view, vk.Texel4) || !d.TexelFits(view, vk.Texel1) {
		t.Fatalf("TexelFits refuses %d bytes at offset %d", view.Size, view.Off)
	}
	if err := r.Dispatch(p, [3]uint32{(n + 63) / 64, 1, 1}, uint32(n), view, view, out.All()); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n)
	if err := vk.Download(out, got); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, n)
	for i := range want {
		v := float32(off/4) + float32(i)
		want[i] = v + 1000*v
	}
	if i := firstMismatch(got, want); i >= 0 {
		t.Fatalf("value %d: got %g, want %g (texel views start at the wrong place)", i, got[i], want[i])
	}
	if err := r.Reset(); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name   string
		t4, t1 vk.Range
		want   string
	}{
		{"misaligned", vk.Range{Buf: in, Off: 4, Size: 64}, view, "minTexelBufferOffsetAlignment"},
		{"ragged vec4", vk.Range{Buf: in, Off: off, Size: 20}, view, "16-byte texels"},
	}
	if tx.MaxElements*4 <= 64<<20 { // SwiftShader: 65536 texels, a 256 KiB range
		big := mustAlloc(t, d, (tx.MaxElements+1)*4)
		bad = append(bad, struct {
			name   string
			t4, t1 vk.Range
			want   string
		}{"too many texels", view, big.All(), "maxTexelBufferElements"})
	}
	for _, c := range bad {
		err := r.Dispatch(p, [3]uint32{1, 1, 1}, uint32(n), c.t4, c.t1, out.All())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.want)
		}
		if d.TexelFits(c.t4, vk.Texel4) && d.TexelFits(c.t1, vk.Texel1) {
			t.Errorf("%s: TexelFits accepts it", c.name)
		}
	}
	if _, err := d.Pipeline(vk.PipelineSpec{Shader: "texelread", Bindings: []vk.Access{vk.Texel4 | vk.Write, vk.Texel1,
		vk.Write}, PushSize: 4}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a writable texel binding: %v, want an error saying texel bindings are read-only", err)
	}
}
