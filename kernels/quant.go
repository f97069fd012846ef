package kernels

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/sqnet/sqnet/vk"
)

// QuantShape describes a quantizer's NCHW input and its thresholds: L − 1 thresholds, either one set per channel
// (a [C, L−1] tensor, row c for channel c) or one set shared by all channels (an [L−1] tensor).
type QuantShape struct {
	N, C, H, W int  // input shape, NCHW
	Levels     int  // L ≥ 2 quantization levels
	PerChannel bool // thresholds [C, L−1] rather than shared [L−1]
}

// Elems returns the input's element count N·C·H·W.
func (s QuantShape) Elems() int { return s.N * s.C * s.H * s.W }

// Thresholds returns the threshold tensor's element count: C·(L−1) per channel, else L−1.
func (s QuantShape) Thresholds() int {
	if s.PerChannel {
		return s.C * (s.Levels - 1)
	}
	return s.Levels - 1
}

// InitThresholds returns the threshold tensor initialised to DefaultThresholds(Levels), repeated per channel when
// PerChannel.
func (s QuantShape) InitThresholds() []float32 {
	t := DefaultThresholds(s.Levels)
	out := make([]float32, 0, s.Thresholds())
	for len(out) < s.Thresholds() {
		out = append(out, t...)
	}
	return out
}

// DefaultThresholds returns the L − 1 initial thresholds t_i = (i − ½)/(L − 1), i = 1..L−1: midway between the
// levels 0, 1/(L−1), …, 1 of inputs in [0, 1]. It returns nil for L < 2.
func DefaultThresholds(levels int) []float32 {
	if levels < 2 {
		return nil
	}
	t := make([]float32, levels-1)
	for i := range t {
		t[i] = float32((float64(i+1) - 0.5) / float64(levels-1))
	}
	return t
}

// plane returns the layout the shaders see: C' channels with their own thresholds, HW' elements per plane, and
// the element count per channel M = N·HW'. Shared thresholds are one channel of C·H·W elements per image.
func (s QuantShape) plane() (c, hw, m int) {
	if s.PerChannel {
		return s.C, s.H * s.W, s.N * s.H * s.W
	}
	return 1, s.C * s.H * s.W, s.N * s.C * s.H * s.W
}

// squantPush mirrors squant.comp's (and hquant.comp's) push constants.
type squantPush struct {
	N, C, HW, K uint32
	Alpha, InvK float32
	AlphaOverK  float32
	Chunks      uint32
	PartScale   float32
}

// squantReducePush mirrors squant_reduce.comp's push constants.
type squantReducePush struct {
	G, B  uint32
	Scale float32
}

// squantChunkE mirrors CHUNK_E in squant.comp: elements per invocation in the threshold-gradient pass.
const squantChunkE = 4

func (s QuantShape) push(alpha float32) squantPush {
	c, hw, _ := s.plane()
	k := s.Levels - 1
	return squantPush{N: uint32(s.Elems()), C: uint32(c), HW: uint32(hw), K: uint32(k), Alpha: alpha,
		InvK: float32(1 / float64(k)), AlphaOverK: float32(float64(alpha) / float64(k)), PartScale: 1}
}

// check validates the shape and, when alpha is used, the steepness.
func (s QuantShape) check(op string, alpha float32, useAlpha bool) error {
	if err := positive(op, Dim{"N", s.N}, Dim{"C", s.C}, Dim{"H", s.H}, Dim{"W", s.W}); err != nil {
		return err
	}
	if s.Levels < 2 {
		return fmt.Errorf("%s: L = %d levels; a quantizer needs L ≥ 2", op, s.Levels)
	}
	if s.Thresholds() > 1<<24 {
		return fmt.Errorf("%s: %d thresholds is too many", op, s.Thresholds())
	}
	if useAlpha && (!(alpha > 0) || math.IsInf(float64(alpha), 1)) {
		return fmt.Errorf("%s: α = %v; the steepness must be finite and > 0", op, alpha)
	}
	return nil
}

// reduceWG is the workgroup size of the reductions: the largest power of two ≤ the elementwise size, as the
// shaders' halving trees need.
func (l *Lib) reduceWG() uint32 { return 1 << (bits.Len32(l.wg) - 1) }

// squantChunks is the number of chunks B each channel's elements split into in the threshold-gradient pass, for
// the scalar variant or (w = 4) the vec4 one, whose chunks hold four times the elements.
func (l *Lib) squantChunks(s QuantShape, w int) int {
	_, _, m := s.plane()
	ch := int(l.reduceWG()) * squantChunkE * w
	return (m + ch - 1) / ch
}

// squantVariant returns shader's vec4 variant and the elements per invocation (4) when every plane of s holds a
// multiple of four elements (a vec4 never straddles two channels' thresholds) and vec4Variant allows it; else
// shader and 1.
func squantVariant(shader string, s QuantShape, rs ...vk.Range) (string, int) {
	if _, hw, _ := s.plane(); hw%4 != 0 {
		return shader, 1
	}
	return vec4Variant(shader, s.Elems(), rs...)
}

// SoftQuantScratch returns how many floats of scratch SoftQuantBackward needs for shape s on this device (the
// per-chunk partial sums of the threshold gradient), 0 when one pass suffices.
func (l *Lib) SoftQuantScratch(s QuantShape) int {
	b := l.squantChunks(s, 1) // the vec4 variant needs at most as many
	if b <= 1 {
		return 0
	}
	return s.Thresholds() * b
}

// SoftQuant records y = q(x) = 1/(L−1)·Σ_i σ(α(x − t_i)) over the NCHW input x, thresholds thr (shape
// s.Thresholds()), α > 0. y may be x.
func (l *Lib) SoftQuant(r *vk.Recorder, x, thr, y vk.Range, s QuantShape, alpha float32) error {
	const op = "soft quant"
	if err := s.check(op, alpha, true); err != nil {
		return err
	}
	if err := needQuant(op, s, named{"x", x}, named{"y", y}, named{"thresholds", thr}); err != nil {
		return err
	}
	shader, w := squantVariant("squant_fwd", s, x, y)
	return l.dispatch1D(r, shader, s.Elems()/w, s.push(alpha), []vk.Access{vk.Read, vk.Read, vk.Write}, x, thr, y)
}

// HardQuant records y = H(x) = 1/(L−1)·Σ_i [x > t_i] over the NCHW input x, thresholds thr. y may be x. It equals
// HardQuantRef bit for bit.
func (l *Lib) HardQuant(r *vk.Recorder, x, thr, y vk.Range, s QuantShape) error {
	const op = "hard quant"
	if err := s.check(op, 0, false); err != nil {
		return err
	}
	if err := needQuant(op, s, named{"x", x}, named{"y", y}, named{"thresholds", thr}); err != nil {
		return err
	}
	return l.dispatch1D(r, "hquant", s.Elems(), s.push(1), []vk.Access{vk.Read, vk.Read, vk.Write}, x, thr, y)
}

// needQuant checks each operand's size: thresholds hold s.Thresholds() floats, every other s.Elems().
func needQuant(op string, s QuantShape, bufs ...named) error {
	for _, b := range bufs {
		n := s.Elems()
		if b.name == "thresholds" || b.name == "dthr" {
			n = s.Thresholds()
		}
		if err := need(op, b.name, b.r, n); err != nil {
			return err
		}
	}
	return nil
}

// SoftQuantBackward records the soft quantizer's gradients given the forward input x, thresholds thr and the
// output gradient dy:
//
//	dx   = dy · α/(L−1) · Σ_i σ_i (1 − σ_i)
//	dthr = −α/(L−1) · Σ over images and pixels (and channels, when shared) of dy · σ_i (1 − σ_i)
//
// dthr is overwritten, not accumulated. Pass an empty dthr (vk.Range{}) to compute dx alone, one elementwise
// dispatch (what attacks need). Otherwise the threshold gradient is a deterministic two-pass reduction (partial
// sums per fixed chunk into scratch, then a fixed-order sum), fused with dx in the first pass; scratch must hold
// SoftQuantScratch(s) floats and may be empty when that is 0. dx must not alias x, dy, thr or scratch.
func (l *Lib) SoftQuantBackward(r *vk.Recorder, x, thr, dy, dx, dthr, scratch vk.Range, s QuantShape, alpha float32) error {
	const op = "soft quant backward"
	if err := s.check(op, alpha, true); err != nil {
		return err
	}
	if err := needQuant(op, s, named{"x", x}, named{"thresholds", thr}, named{"dy", dy},
		named{"dx", dx}); err != nil {
		return err
	}
	p := s.push(alpha)
	if dthr.Buf == nil {
		shader, w := squantVariant("squant_bwdx", s, x, dy, dx)
		return l.dispatch1D(r, shader, s.Elems()/w, p, []vk.Access{vk.Read, vk.Read, vk.Read, vk.Write},
			x, thr, dy, dx)
	}
	if err := needQuant(op, s, named{"dthr", dthr}); err != nil {
		return err
	}
	lim := l.dev.Info().Limits
	c, _, _ := s.plane()
	if uint32(c) > lim.MaxWorkgroupCount[2] {
		return fmt.Errorf("%s: %d channels with their own thresholds; the device dispatches at most %d", op, c,
			lim.MaxWorkgroupCount[2])
	}
	shader, w := squantVariant("squant_bwd", s, x, dy, dx)
	b := l.squantChunks(s, w)
	p.Chunks = uint32(b)
	scale := float32(-float64(alpha) / float64(s.Levels-1))
	part := dthr
	if b > 1 {
		if err := need(op, "scratch", scratch, s.Thresholds()*b); err != nil {
			return err
		}
		part = scratch
	} else {
		p.PartScale = scale // one chunk: its sum is the gradient
	}
	wg := l.reduceWG()
	bwd, err := l.pipeline(vk.PipelineSpec{Shader: shader, PushSize: pushSize(p), Local: [3]uint32{wg, 1, 1},
		Bindings: []vk.Access{vk.Read, vk.Read, vk.Read, vk.Write, vk.Write}})
	if err != nil {
		return err
	}
	gx, gy := fold(b, lim.MaxWorkgroupCount[0])
	if err := r.Dispatch(bwd, [3]uint32{gx, gy, uint32(c)}, p, x, thr, dy, dx, part); err != nil {
		return err
	}
	if b == 1 {
		return nil
	}
	rp := squantReducePush{G: uint32(s.Thresholds()), B: uint32(b), Scale: scale}
	red, err := l.pipeline(vk.PipelineSpec{Shader: "squant_reduce", PushSize: pushSize(rp), Local: [3]uint32{wg, 1, 1},
		Bindings: []vk.Access{vk.Read, vk.Write}})
	if err != nil {
		return err
	}
	gx, gy = fold(s.Thresholds(), lim.MaxWorkgroupCount[0])
	return r.Dispatch(red, [3]uint32{gx, gy, 1}, rp, scratch, dthr)
}

// fold spreads n workgroups over a 2-D grid whose first dimension holds at most maxX; shaders index
// gid.x + gid.y·numX and skip indices ≥ n.
func fold(n int, maxX uint32) (x, y uint32) {
	if uint64(n) <= uint64(maxX) {
		return uint32(max(n, 1)), 1
	}
	return maxX, uint32((uint64(n) + uint64(maxX) - 1) / uint64(maxX))
}

// sigmoid64 returns σ(z) and σ(z)(1 − σ(z)) in float64, by the shader's stable formula.
func sigmoid64(z float64) (s, ds float64) {
	e := math.Exp(-math.Abs(z))
	r := 1 / (1 + e)
	s = r
	if z < 0 {
		s = e * r
	}
	return s, e * r * r
}

// quantChannel returns the threshold row of element i.
func (s QuantShape) quantChannel(i int) int {
	if !s.PerChannel {
		return 0
	}
	return (i / (s.H * s.W)) % s.C
}

// SoftQuantRef64 is the soft quantizer in float64 on float64 data: the reference the finite-difference checks
// differentiate.
func SoftQuantRef64(x, thr []float64, s QuantShape, alpha float64) []float64 {
	k := s.Levels - 1
	y := make([]float64, len(x))
	for i, v := range x {
		row := thr[s.quantChannel(i)*k:][:k]
		sum := 0.0
		for _, t := range row {
			sg, _ := sigmoid64(alpha * (v - t))
			sum += sg
		}
		y[i] = sum / float64(k)
	}
	return y
}

// SoftQuantRef is the CPU reference of SoftQuant, computed in float64 and rounded once.
func SoftQuantRef(x, thr []float32, s QuantShape, alpha float32) []float32 {
	y := SoftQuantRef64(to64s(x), to64s(thr), s, float64(alpha))
	out := make([]float32, len(y))
	for i, v := range y {
		out[i] = float32(v)
	}
	return out
}

// SoftQuantBackwardRef is the CPU reference of SoftQuantBackward, in float64 rounded once: dx per element and
// dthr per threshold.
func SoftQuantBackwardRef(x, thr, dy []float32, s QuantShape, alpha float32) (dx, dthr []float32) {
	k := s.Levels - 1
	a := float64(alpha)
	dx = make([]float32, len(x))
	acc := make([]float64, s.Thresholds())
	for i, v := range x {
		ch := s.quantChannel(i)
		sum := 0.0
		for j := range k {
			_, ds := sigmoid64(a * (float64(v) - float64(thr[ch*k+j])))
			sum += ds
			acc[ch*k+j] += float64(dy[i]) * ds
		}
		dx[i] = float32(float64(dy[i]) * a / float64(k) * sum)
	}
	dthr = make([]float32, len(acc))
	for i, v := range acc {
		dthr[i] = float32(-a / float64(k) * v)
	}
	return dx, dthr
}

// HardQuantRef is the CPU reference of HardQuant.
func HardQuantRef(x, thr []float32, s QuantShape) []float32 {
	k := s.Levels - 1
	invK := float32(1 / float64(k))
	y := make([]float32, len(x))
	for i, v := range x {
		row := thr[s.quantChannel(i)*k:][:k]
		n := 0
		for _, t := range row {
			if v > t {
				n++
			}
		}
		y[i] = float32(n) * invK
	}
	return y
}
