package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// noisePush mirrors noise.comp's push constants.
type noisePush struct {
	N              uint32
	SeedLo, SeedHi uint32
	C0, C1, C2, C3 uint32
	Scale          float32
}

// RNG names one Philox stream: element i of a tensor draws word i%4 of Philox4x32-10(counter = (i/4, Stream,
// Step, 0), key = Seed). Distinct (Seed, Stream, Step) give independent numbers; the same triple gives the same
// numbers on every device and in the CPU references.
type RNG struct {
	Seed   uint64
	Stream uint32
	Step   uint32
	// Offset starts the tensor at element Offset of the stream (a multiple of 4): element i draws what element
	// Offset + i of a larger tensor would, so a data-parallel replica's slice of a batch gets the noise the whole
	// batch gets there on one device.
	Offset uint32
}

func (g RNG) push(n int, scale float32) noisePush {
	k := PhiloxKey(g.Seed)
	return noisePush{N: uint32(n), SeedLo: k[0], SeedHi: k[1], C0: g.Offset / 4, C1: g.Stream, C2: g.Step,
		Scale: scale}
}

// block returns the Philox words of block b of the stream (counted from Offset).
func (g RNG) block(b int) [4]uint32 {
	return Philox4x32([4]uint32{g.Offset/4 + uint32(b), g.Stream, g.Step, 0}, PhiloxKey(g.Seed))
}

// check refuses an offset that is not a whole block or that would wrap the counter.
func (g RNG) check(op string, n int) error {
	if g.Offset%4 != 0 {
		return fmt.Errorf("%s: RNG offset %d is not a multiple of 4", op, g.Offset)
	}
	if int(g.Offset)+n > maxRNGElems {
		return fmt.Errorf("%s: RNG offset %d + %d elements passes %d", op, g.Offset, n, maxRNGElems)
	}
	return nil
}

// dispatchBlocks records a shader whose invocations each handle one Philox block of four elements.
func (l *Lib) dispatchBlocks(r *vk.Recorder, shader string, n int, push any, access []vk.Access, bufs ...vk.Range) error {
	return l.dispatch1D(r, shader, (n+3)/4, push, access, bufs...)
}

// checkScale rejects a negative, infinite or NaN noise scale.
func checkScale(op, name string, v float32) error {
	if !(v >= 0) || math.IsInf(float64(v), 0) {
		return fmt.Errorf("%s: %s = %v; it must be finite and ≥ 0", op, name, v)
	}
	return nil
}

// maxRNGElems is the most elements one RNG call covers before the first counter word would wrap.
const maxRNGElems = 1 << 31

// UniformNoise records y = clip(x + u, 0, 1) with u ~ U(−eps, eps) i.i.d. per element, drawn from g (u =
// eps·PhiloxSymmetric(word), so |u| ≤ eps). y may be x (in place). The result equals UniformNoiseRef bit for bit.
func (l *Lib) UniformNoise(r *vk.Recorder, x, y vk.Range, n int, eps float32, g RNG) error {
	return l.noise(r, "uniform noise", "noise_uniform", x, y, n, "eps", eps, g)
}

// GaussianNoise records y = clip(x + sigma·z, 0, 1) with z ~ N(0, 1) i.i.d. per element from g by Box–Muller
// (PhiloxNormal). y may be x. It matches GaussianNoiseRef to within the GPU's transcendental error (a few ulps of
// log, sqrt, cos, sin; Vulkan only bounds cos/sin absolutely, by 2^-11).
func (l *Lib) GaussianNoise(r *vk.Recorder, x, y vk.Range, n int, sigma float32, g RNG) error {
	return l.noise(r, "gaussian noise", "noise_gauss", x, y, n, "sigma", sigma, g)
}

func (l *Lib) noise(r *vk.Recorder, op, shader string, x, y vk.Range, n int, pname string, scale float32, g RNG) error {
	if err := l.checkNoise(op, x, y, n, pname, scale); err != nil {
		return err
	}
	if err := g.check(op, n); err != nil {
		return err
	}
	shader, _ = vec4Variant(shader, n, x, y) // see noise.comp's VEC4
	return l.dispatchBlocks(r, shader, n, g.push(n, scale), []vk.Access{vk.Read, vk.Write}, x, y)
}

// checkNoise validates a noise kernel's operands and scale.
func (l *Lib) checkNoise(op string, x, y vk.Range, n int, pname string, scale float32) error {
	if err := need(op, "x", x, n); err != nil {
		return err
	}
	if err := need(op, "y", y, n); err != nil {
		return err
	}
	if n > maxRNGElems {
		return fmt.Errorf("%s: %d elements; at most %d per call", op, n, maxRNGElems)
	}
	return checkScale(op, pname, scale)
}

// UniformNoiseExample records y = clip(x + u, 0, 1) for b examples of d elements with u ~ U(−eps, eps) drawn per
// example: element j of the example with id ids[row] takes word j % 4 of Philox(counter = (j/4, g.Stream, id,
// attempt), key = g.Seed), the attempt read at run time from the one-word buffer attempt (g.Attempt is unused). An
// example thus draws the same noise whatever batch, slot or shard it is attacked in, and a recorded attack replays
// with fresh noise when the host rewrites the attempt. y may be x. It equals UniformNoiseExampleRef bit for bit.
func (l *Lib) UniformNoiseExample(r *vk.Recorder, x, y, attempt, ids vk.Range, b, d int, eps float32, g ExampleRNG) error {
	const op = "uniform noise (per example)"
	if err := positive(op, Dim{"B", b}, Dim{"D", d}); err != nil {
		return err
	}
	if err := needU32(op, "attempt", attempt, 1); err != nil {
		return err
	}
	if err := needU32(op, "ids", ids, b); err != nil {
		return err
	}
	if err := l.checkNoise(op, x, y, b*d, "eps", eps); err != nil {
		return err
	}
	if err := disjoint(op, named{"y", y}, named{"attempt", attempt}, named{"ids", ids}); err != nil {
		return err
	}
	shader := "noise_uniform_ex"
	if d%4 == 0 {
		shader, _ = vec4Variant(shader, b*d, x, y) // blocks never straddle two examples (noise.comp's EXAMPLE)
	}
	k := PhiloxKey(g.Seed)
	p := noisePush{N: uint32(b * d), SeedLo: k[0], SeedHi: k[1], C0: uint32(d), C1: g.Stream, Scale: eps}
	return l.dispatch1D(r, shader, b*((d+3)/4), p, []vk.Access{vk.Read, vk.Write, vk.Read, vk.Read}, x, y, attempt,
		ids)
}

// PhiloxBits records the n raw words of PhiloxBitsRef(ctr, key, n) into out (uint32).
func (l *Lib) PhiloxBits(r *vk.Recorder, out vk.Range, n int, ctr [4]uint32, key [2]uint32) error {
	const op = "philox bits"
	if err := need(op, "out", out, n); err != nil {
		return err
	}
	if n > maxRNGElems {
		return fmt.Errorf("%s: %d words; at most %d per call", op, n, maxRNGElems)
	}
	p := noisePush{N: uint32(n), SeedLo: key[0], SeedHi: key[1], C0: ctr[0], C1: ctr[1], C2: ctr[2], C3: ctr[3]}
	return l.dispatchBlocks(r, "noise_bits", n, p, []vk.Access{vk.Write}, out)
}

// UniformNoiseRef is the CPU reference of UniformNoise.
func UniformNoiseRef(x []float32, eps float32, g RNG) []float32 {
	y := make([]float32, len(x))
	for b := 0; 4*b < len(x); b++ {
		w := g.block(b)
		for j := 0; j < 4 && 4*b+j < len(x); j++ {
			i := 4*b + j
			u := float32(eps * PhiloxSymmetric(w[j])) // explicit conversions: no fused multiply-add
			y[i] = clip01(float32(x[i] + u))
		}
	}
	return y
}

// UniformNoiseExampleRef is the CPU reference of UniformNoiseExample, the attempt being g.Attempt.
func UniformNoiseExampleRef(x []float32, ids []uint32, b, d int, eps float32, g ExampleRNG) []float32 {
	key := PhiloxKey(g.Seed)
	y := make([]float32, b*d)
	for row := range b {
		for j := 0; j < d; j += 4 {
			w := Philox4x32([4]uint32{uint32(j / 4), g.Stream, ids[row], g.Attempt}, key)
			for q := 0; q < 4 && j+q < d; q++ {
				i := row*d + j + q
				u := float32(eps * PhiloxSymmetric(w[q])) // explicit conversions: no fused multiply-add
				y[i] = clip01(float32(x[i] + u))
			}
		}
	}
	return y
}

// GaussianNoiseRef is the CPU reference of GaussianNoise.
func GaussianNoiseRef(x []float32, sigma float32, g RNG) []float32 {
	y := make([]float32, len(x))
	for b := 0; 4*b < len(x); b++ {
		z := PhiloxNormal(g.block(b))
		for j := 0; j < 4 && 4*b+j < len(x); j++ {
			i := 4*b + j
			u := float32(sigma * z[j])
			y[i] = clip01(float32(x[i] + u))
		}
	}
	return y
}

// clip01 clamps to [0, 1] as GLSL clamp does.
func clip01(v float32) float32 { return min(max(v, 0), 1) }

// UniformNoiseDynamic is UniformNoise with the RNG step (counter word 2) read at run time from step, one uint32
// the host rewrites before each submit, instead of g.Step: a recorded training step then draws fresh noise on every
// replay. For the same step value it equals UniformNoise bit for bit.
func (l *Lib) UniformNoiseDynamic(r *vk.Recorder, x, y, step vk.Range, n int, eps float32, g RNG) error {
	return l.noiseDynamic(r, "uniform noise (dynamic)", "noise_uniform_dyn", x, y, step, n, "eps", eps, g)
}

// GaussianNoiseDynamic is GaussianNoise with the step read from a buffer, as UniformNoiseDynamic.
func (l *Lib) GaussianNoiseDynamic(r *vk.Recorder, x, y, step vk.Range, n int, sigma float32, g RNG) error {
	return l.noiseDynamic(r, "gaussian noise (dynamic)", "noise_gauss_dyn", x, y, step, n, "sigma", sigma, g)
}

func (l *Lib) noiseDynamic(r *vk.Recorder, op, shader string, x, y, step vk.Range, n int, pname string, scale float32,
	g RNG) error {
	if err := needU32(op, "step", step, 1); err != nil {
		return err
	}
	if err := l.checkNoise(op, x, y, n, pname, scale); err != nil {
		return err
	}
	if err := g.check(op, n); err != nil {
		return err
	}
	shader, _ = vec4Variant(shader, n, x, y)
	return l.dispatchBlocks(r, shader, n, g.push(n, scale), []vk.Access{vk.Read, vk.Write, vk.Read}, x, y, step)
}
