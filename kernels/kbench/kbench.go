// Package kbench runs the kernel benchmark suite (GEMM, the madry MNIST convolutions, and the device's
// register-only multiply-add ceiling) on a Vulkan device and returns structured results, with gonum's blas32.Gemm
// measured in the same run on the same shapes as the in-process CPU baseline. `sqnet bench kernels` prints its
// Report.
package kbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk"
)

// Options select what Run measures.
type Options struct {
	// MinTime is how long each benchmark repeats at least (default 300 ms); every benchmark runs at least twice
	// after one warm-up run, and reports its fastest repeat.
	MinTime time.Duration
	// GEMMSizes are the square GEMM sizes (default 256, 512, 1024).
	GEMMSizes []int
	// Batches are the batch sizes of the convolution benchmarks (default 50 and 128).
	Batches []int
	// NoBLAS skips the gonum baseline.
	NoBLAS bool
	// NoPeer skips the out-of-process peer of the GEMM rows (numpy's matmul, on OpenBLAS when installed).
	NoPeer bool
	// PeakInvocations and PeakIters size the register-only multiply-add runs (defaults 1<<20 invocations of 256
	// steps: 12.9 GFLOP, enough to fill a large GPU; 0.1–0.2 s on lavapipe).
	PeakInvocations, PeakIters int
}

// Result is one benchmark.
type Result struct {
	Name   string  `json:"name"`   // e.g. "gemm", "conv1/forward"
	Shape  string  `json:"shape"`  // human-readable shape
	GFLOPS float64 `json:"gflops"` // device GFLOP/s (fastest repeat)
	Ms     float64 `json:"ms"`     // device milliseconds per run (fastest repeat)
	// SlowestMs is the slowest timed repeat; SetupMs the one-time setup before the repeats: recording (which
	// creates and compiles the pipelines, or loads them from the pipeline cache) and the untimed first run.
	SlowestMs float64 `json:"slowest_ms"`
	SetupMs   float64 `json:"setup_ms"`
	// BLASGFLOPS is gonum blas32.Gemm's GFLOP/s on the same product (for a convolution pass, the GEMM of
	// its im2col form: the same multiply-add count), 0 when skipped.
	BLASGFLOPS float64 `json:"blas_gflops,omitempty"`
	BLASMs     float64 `json:"blas_ms,omitempty"`
	// PeerGFLOPS is the Report's Peer's GFLOP/s on the same square GEMM (GEMM rows), or its fastest GEMM
	// (peak rows: how the device's ceiling compares with what the peer reaches on the same cores); 0 when not
	// measured.
	PeerGFLOPS float64 `json:"peer_gflops,omitempty"`
	// GEMM is the m, n, k of the product (for a convolution, its GEMM equivalent); zero for the peak rows.
	GEMM [3]int `json:"gemm"`
}

// Report is the whole suite's output.
type Report struct {
	Device  string   `json:"device"`
	Driver  string   `json:"driver"`
	Results []Result `json:"results"`
	// Peer is what measured the GEMM rows' PeerGFLOPS (numpy + OpenBLAS), or why nothing did; nil with NoPeer.
	Peer *Peer `json:"peer,omitempty"`
}

func (o Options) withDefaults() Options {
	if o.MinTime <= 0 {
		o.MinTime = 300 * time.Millisecond
	}
	if len(o.GEMMSizes) == 0 {
		o.GEMMSizes = []int{256, 512, 1024}
	}
	if len(o.Batches) == 0 {
		o.Batches = []int{50, 128}
	}
	if o.PeakInvocations <= 0 {
		o.PeakInvocations = 1 << 20
	}
	if o.PeakIters <= 0 {
		o.PeakIters = 256
	}
	return o
}

// MadryConvs are the two convolutions of the madry MNIST model at batch b: 5×5, padding 2, stride 1, 1→32 on
// 28×28 and 32→64 on 14×14.
func MadryConvs(b int) []kernels.ConvShape {
	return []kernels.ConvShape{
		{B: b, Cin: 1, H: 28, W: 28, Cout: 32, KH: 5, KW: 5, PadH: 2, PadW: 2},
		{B: b, Cin: 32, H: 14, W: 14, Cout: 64, KH: 5, KW: 5, PadH: 2, PadW: 2},
	}
}

// Run measures the suite on d, reporting each finished benchmark's line to progress (which may be nil).
func Run(d *vk.Device, opts Options, progress func(string)) (Report, error) {
	opts = opts.withDefaults()
	info := d.Info()
	rep := Report{Device: info.Name, Driver: info.Driver + " " + info.DriverVer}
	l := kernels.New(d)
	say := func(r Result) {
		rep.Results = append(rep.Results, r)
		if progress != nil {
			line := fmt.Sprintf("%-24s %-34s %8.2f GFLOP/s %9.3f ms", r.Name, r.Shape, r.GFLOPS, r.Ms)
			if r.BLASGFLOPS > 0 {
				line += fmt.Sprintf("   gonum %6.2f GFLOP/s", r.BLASGFLOPS)
			}
			if r.PeerGFLOPS > 0 {
				line += fmt.Sprintf("   numpy %6.2f GFLOP/s", r.PeerGFLOPS)
			}
			progress(line)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var gemms []Result
	for _, s := range opts.GEMMSizes {
		res, err := benchGEMM(l, rng, s, opts)
		if err != nil {
			return rep, err
		}
		gemms = append(gemms, res)
	}
	var peaks []Result
	for _, fused := range []bool{false, true} {
		res, err := benchPeak(l, rng, fused, opts)
		if err != nil {
			return rep, err
		}
		peaks = append(peaks, res)
	}
	if !opts.NoPeer {
		// Right after sqnet's own GEMMs, on the same cores: the reference issue 17 measures GEMM against.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		p := NumpyGEMM(ctx, opts.GEMMSizes, opts.MinTime)
		cancel()
		rep.Peer = &p
		for i := range gemms {
			gemms[i].PeerGFLOPS = p.GFLOPS[gemms[i].GEMM[0]]
		}
		fastest := 0.0
		for _, g := range p.GFLOPS {
			fastest = max(fastest, g)
		}
		for i := range peaks {
			peaks[i].PeerGFLOPS = fastest
		}
		if progress != nil {
			progress("GEMM peer: " + p.Name)
		}
	}
	for _, r := range append(gemms, peaks...) {
		say(r)
	}
	for _, b := range opts.Batches {
		for i, cs := range MadryConvs(b) {
			for _, pass := range []string{"forward", "backward-data", "backward-filter"} {
				res, err := benchConv(l, rng, fmt.Sprintf("conv%d/%s", i+1, pass), cs, opts)
				if err != nil {
					return rep, err
				}
				say(res)
			}
		}
	}
	return rep, nil
}

// buffers allocates device buffers of the given float counts filled with uniform [−1, 1) values.
func buffers(d *vk.Device, rng *rand.Rand, sizes ...int) ([]*vk.Buffer, func(), error) {
	var bufs []*vk.Buffer
	free := func() {
		for _, b := range bufs {
			b.Free()
		}
	}
	for _, n := range sizes {
		b, err := d.Alloc(uint64(4 * n))
		if err != nil {
			free()
			return nil, nil, err
		}
		bufs = append(bufs, b)
		if err := vk.Upload(b, random(rng, n)); err != nil {
			free()
			return nil, nil, err
		}
	}
	return bufs, free, nil
}

func random(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*rng.Float32() - 1
	}
	return v
}

// timing is one benchmark's measurement, in seconds: the fastest and the slowest timed repeat, and the one-time
// setup before them (recording, which creates and compiles the pipelines, and the untimed first run).
type timing struct{ best, slowest, setup float64 }

// timeRecorded records once with fn and times the replays; the setup is the recording (which creates and
// compiles the pipelines) plus repeat's untimed first run.
func timeRecorded(d *vk.Device, minTime time.Duration, fn func(r *vk.Recorder) error) (timing, error) {
	start := time.Now()
	r, err := d.NewRecorder()
	if err != nil {
		return timing{}, err
	}
	defer r.Close()
	if err := fn(r); err != nil {
		return timing{}, err
	}
	recording := time.Since(start).Seconds()
	t, err := repeat(minTime, r.Run)
	t.setup += recording
	return t, err
}

// repeat runs f once to warm up (pipeline compilation, first touch; its time is the setup), then repeatedly for
// at least minTime and at least twice. The fastest run is the measurement — the least disturbed by other load on
// the machine — and the slowest says how disturbed the others were.
func repeat(minTime time.Duration, f func() error) (timing, error) {
	var t timing
	t0 := time.Now()
	if err := f(); err != nil {
		return t, err
	}
	t.setup = time.Since(t0).Seconds()
	start := time.Now()
	for n := 0; n < 2 || time.Since(start) < minTime; n++ {
		t0 := time.Now()
		if err := f(); err != nil {
			return t, err
		}
		dt := time.Since(t0).Seconds()
		if t.best == 0 || dt < t.best {
			t.best = dt
		}
		t.slowest = max(t.slowest, dt)
	}
	return t, nil
}

func benchGEMM(l *kernels.Lib, rng *rand.Rand, s int, o Options) (Result, error) {
	d := l.Device()
	bufs, free, err := buffers(d, rng, s*s, s*s, s*s)
	if err != nil {
		return Result{}, err
	}
	defer free()
	tm, err := timeRecorded(d, o.MinTime, func(r *vk.Recorder) error {
		return l.Gemm(r, bufs[0].All(), bufs[1].All(), bufs[2].All(), s, s, s, kernels.GemmOpts{})
	})
	if err != nil {
		return Result{}, fmt.Errorf("gemm %d³: %w", s, err)
	}
	res := Result{Name: "gemm", Shape: fmt.Sprintf("%d×%d×%d", s, s, s), GEMM: [3]int{s, s, s}}
	fill(&res, kernels.GemmFlops(s, s, s), tm)
	return res, blasBaseline(&res, rng, o)
}

// benchPeak times the register-only multiply-add loop (kernels.Peak), written as a*b + c or with fma().
func benchPeak(l *kernels.Lib, rng *rand.Rand, fused bool, o Options) (Result, error) {
	d := l.Device()
	n, iters := o.PeakInvocations, o.PeakIters
	bufs, free, err := buffers(d, rng, n, n)
	if err != nil {
		return Result{}, err
	}
	defer free()
	name, form := "peak/mad", "a*b + c"
	if fused {
		name, form = "peak/fma", "fma()"
	}
	tm, err := timeRecorded(d, o.MinTime, func(r *vk.Recorder) error {
		return l.Peak(r, bufs[0].All(), bufs[1].All(), n, iters, 0.75, fused)
	})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	res := Result{Name: name, Shape: form + ", operands in registers"}
	fill(&res, kernels.PeakFlops(n, iters), tm)
	return res, nil
}

func benchConv(l *kernels.Lib, rng *rand.Rand, name string, cs kernels.ConvShape, o Options) (Result, error) {
	d := l.Device()
	bufs, free, err := buffers(d, rng, cs.InLen(), cs.WLen(), cs.OutLen())
	if err != nil {
		return Result{}, err
	}
	defer free()
	x, w, y := bufs[0].All(), bufs[1].All(), bufs[2].All()
	p := cs.OH() * cs.OW()
	res := Result{Name: name, Shape: fmt.Sprintf("b%d %d→%d %dx%d k%dx%d", cs.B, cs.Cin, cs.Cout, cs.H, cs.W,
		cs.KH, cs.KW)}
	var rec func(r *vk.Recorder) error
	switch {
	case strings.HasSuffix(name, "forward"):
		res.GEMM = [3]int{cs.Cout, cs.B * p, cs.Cin * cs.KH * cs.KW}
		o, free, err := scratchOpts(d, l.ConvFwdScratch(cs)) // packed weights, as training and attacks run it
		if err != nil {
			return Result{}, err
		}
		defer free()
		rec = func(r *vk.Recorder) error { return l.Conv2D(r, x, w, y, cs, o) }
	case strings.HasSuffix(name, "data"):
		res.GEMM = [3]int{cs.Cin, cs.B * cs.H * cs.W, cs.Cout * cs.KH * cs.KW}
		o, free, err := scratchOpts(d, l.ConvDataScratch(cs)) // packed weights or two passes, as training and attacks run it
		if err != nil {
			return Result{}, err
		}
		defer free()
		rec = func(r *vk.Recorder) error { return l.Conv2DBackwardData(r, y, w, x, cs, o) }
	default:
		res.GEMM = [3]int{cs.Cout, cs.Cin * cs.KH * cs.KW, cs.B * p}
		o, free, err := scratchOpts(d, l.ConvFilterScratch(cs)) // split over images, as training runs it
		if err != nil {
			return Result{}, err
		}
		defer free()
		rec = func(r *vk.Recorder) error { return l.Conv2DBackwardFilter(r, x, y, w, cs, o) }
	}
	tm, err := timeRecorded(d, o.MinTime, rec)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	fill(&res, cs.Flops(), tm)
	return res, blasBaseline(&res, rng, o)
}

// scratchOpts returns convolution options with a scratch of n floats (none when n is 0) and its release.
func scratchOpts(d *vk.Device, n int) (kernels.ConvOpts, func(), error) {
	if n == 0 {
		return kernels.ConvOpts{}, func() {}, nil
	}
	scratch, err := d.Alloc(4 * uint64(n))
	if err != nil {
		return kernels.ConvOpts{}, nil, err
	}
	return kernels.ConvOpts{Scratch: scratch.All()}, scratch.Free, nil
}

func fill(r *Result, flops float64, t timing) {
	r.Ms, r.SlowestMs, r.SetupMs = t.best*1e3, t.slowest*1e3, t.setup*1e3
	r.GFLOPS = flops / t.best / 1e9
}

// blasBaseline times gonum's blas32.Gemm on r's GEMM shape (plain layouts: the baseline is the arithmetic, not
// the im2col gather).
func blasBaseline(r *Result, rng *rand.Rand, o Options) error {
	if o.NoBLAS {
		return nil
	}
	m, n, k := r.GEMM[0], r.GEMM[1], r.GEMM[2]
	a, b, c := random(rng, m*k), random(rng, k*n), make([]float32, m*n)
	t, err := repeat(o.MinTime, func() error { kernels.GemmBLAS(a, b, c, m, n, k, false, false); return nil })
	if err != nil {
		return err
	}
	sec := t.best
	r.BLASMs = sec * 1e3
	r.BLASGFLOPS = kernels.GemmFlops(m, n, k) / sec / 1e9
	return nil
}
