package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// APGD's per-example state: APGDState floats a row (apgd.comp names the columns).
const (
	APGDState    = 8
	APGDEta      = 0 // step size η
	APGDBest     = 1 // best loss so far
	APGDImproved = 6 // the loss improved on the best at this step (0/1): keep the point
	APGDHalve    = 7 // η was halved at this checkpoint (0/1): restore the best point
)

// APGDTraceWidth is the floats per example and call of APGDTrack's trace: the loss, η and the best loss after it.
const APGDTraceWidth = 3

// apgdPush mirrors apgd.comp's push constants.
type apgdPush struct {
	N, D           uint32
	Eps, A         float32
	SeedLo, SeedHi uint32
	Stream         uint32
	Attempt        uint32
	Eta0           float32
	Iter, S        uint32
}

// ExampleRNG names the per-example Philox streams of the AutoAttack kernels: key = Seed, and element j of the
// example with id takes word j % 4 of Philox(counter = (j/4, Stream, id, Attempt)), so an example draws the same
// numbers whichever batch, shard or slot it is evaluated in.
type ExampleRNG struct {
	Seed    uint64
	Stream  uint32
	Attempt uint32
}

// APGDInit records APGD's random start for b examples of d values: x = clip(x0 + eps·t/(max|t| + 1e-12), 0, 1)
// with t ~ U[−1, 1) from g per example id (ids: uint32 [b]). It equals APGDInitRef bit for bit.
func (l *Lib) APGDInit(r *vk.Recorder, x0, ids, x vk.Range, b, d int, eps float32, g ExampleRNG) error {
	const op = "apgd init"
	if err := positive(op, Dim{"B", b}, Dim{"D", d}); err != nil {
		return err
	}
	if err := needEach(op, sized{"x0", x0, b * d}, sized{"x", x, b * d}); err != nil {
		return err
	}
	if err := needU32(op, "ids", ids, b); err != nil {
		return err
	}
	if err := checkScale(op, "eps", eps); err != nil {
		return err
	}
	if err := disjoint(op, named{"x0", x0}, named{"ids", ids}, named{"x", x}); err != nil {
		return err
	}
	k := PhiloxKey(g.Seed)
	p := apgdPush{N: uint32(b), D: uint32(d), Eps: eps, SeedLo: k[0], SeedHi: k[1], Stream: g.Stream, Attempt: g.Attempt}
	return l.dispatch1D(r, "apgd_init", b, p, []vk.Access{vk.Read, vk.Read, vk.Write}, x0, ids, x)
}

// APGDStep records one APGD step in place on x and xOld (b examples of d values): with η = state[row·APGDState +
// APGDEta], z = P(x + η·sign(g)) and x ← P(x + a·(z − x) + (1 − a)·(x − xOld)), xOld ← the old x, where P projects
// onto the ε-ball around x0 and then onto [0, 1]. It equals APGDStepRef bit for bit.
func (l *Lib) APGDStep(r *vk.Recorder, x0, g, state, x, xOld vk.Range, b, d int, eps, a float32) error {
	const op = "apgd step"
	if err := positive(op, Dim{"B", b}, Dim{"D", d}); err != nil {
		return err
	}
	n := b * d
	if err := needEach(op, sized{"x0", x0, n}, sized{"g", g, n}, sized{"state", state, b * APGDState},
		sized{"x", x, n}, sized{"xOld", xOld, n}); err != nil {
		return err
	}
	if err := checkScale(op, "eps", eps); err != nil {
		return err
	}
	if !(a >= 0 && a <= 1) {
		return fmt.Errorf("%s: momentum factor a = %v, want 0 ≤ a ≤ 1", op, a)
	}
	if err := disjoint(op, named{"x0", x0}, named{"g", g}, named{"state", state}, named{"x", x},
		named{"xOld", xOld}); err != nil {
		return err
	}
	shader, per := vec4Variant("apgd_step", d, x0, g, x, xOld) // a row's elements four at a time (apgd.comp)
	p := apgdPush{N: uint32(n / per), D: uint32(d / per), Eps: eps, A: a, S: APGDState}
	return l.dispatch1D(r, shader, n/per, p, []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite, vk.ReadWrite},
		x0, g, state, x, xOld)
}

// APGDCheck is what APGDTrack does after a step: Interval > 0 makes it a checkpoint closing an interval of that
// many steps, where η is halved for rows with fewer than Rho·Interval loss increases (or no progress after a step
// that was not halved).
type APGDCheck struct {
	Init     bool    // initialise the state from the start point's loss (η = Eta0)
	Interval int     // > 0: a checkpoint after this many steps
	Rho      float32 // AutoAttack: 0.75
	Eta0     float32 // the initial step size (AutoAttack: 2ε)
	Iter     int     // the trace row to write
}

// APGDTrack records APGD's bookkeeping for b rows after the loss [b] at the new point (apgd.comp), and writes
// (loss, η, best loss) per row into trace row c.Iter (trace: [iters, b, APGDTraceWidth]). It equals APGDTrackRef.
func (l *Lib) APGDTrack(r *vk.Recorder, loss, state, trace vk.Range, b int, c APGDCheck) error {
	const op = "apgd track"
	if err := positive(op, Dim{"B", b}); err != nil {
		return err
	}
	if c.Iter < 0 || c.Interval < 0 || !(c.Rho >= 0 && c.Rho <= 1) || !(c.Eta0 >= 0) {
		return fmt.Errorf("%s: iteration %d, interval %d, ρ %v, η₀ %v", op, c.Iter, c.Interval, c.Rho, c.Eta0)
	}
	if err := needEach(op, sized{"loss", loss, b}, sized{"state", state, b * APGDState},
		sized{"trace", trace, (c.Iter + 1) * b * APGDTraceWidth}); err != nil {
		return err
	}
	if err := disjoint(op, named{"loss", loss}, named{"state", state}, named{"trace", trace}); err != nil {
		return err
	}
	mode := uint32(1)
	if c.Init {
		mode = 0
	}
	p := apgdPush{N: uint32(b), A: c.Rho, Stream: mode, Attempt: uint32(c.Interval), Eta0: c.Eta0,
		Iter: uint32(c.Iter), S: APGDState}
	return l.dispatch1D(r, "apgd_track", b, p, []vk.Access{vk.Read, vk.ReadWrite, vk.Write}, loss, state, trace)
}

// APGDInitRef is the CPU reference of APGDInit.
func APGDInitRef(x0 []float32, ids []uint32, b, d int, eps float32, g ExampleRNG) []float32 {
	key := PhiloxKey(g.Seed)
	x := make([]float32, b*d)
	for i := range b {
		t := make([]float32, d)
		m := float32(0)
		for j := 0; j < d; j += 4 {
			w := Philox4x32([4]uint32{uint32(j / 4), g.Stream, ids[i], g.Attempt}, key)
			for q := 0; q < 4 && j+q < d; q++ {
				t[j+q] = PhiloxSymmetric(w[q])
				m = max(m, float32(math.Abs(float64(t[j+q]))))
			}
		}
		den := float32(m + 1e-12)
		for j := range d {
			u := float32(eps * float32(t[j]/den))
			x[i*d+j] = clip01(float32(x0[i*d+j] + u))
		}
	}
	return x
}

// APGDStepRef is the CPU reference of APGDStep: the new x and xOld.
func APGDStepRef(x0, g, state, x, xOld []float32, b, d int, eps, a float32) ([]float32, []float32) {
	nx, no := make([]float32, len(x)), append([]float32(nil), x...)
	for i := range x {
		eta := state[(i/d)*APGDState+APGDEta]
		o, v := x0[i], x[i]
		lo, hi := float32(o-eps), float32(o+eps)
		z := clip01(min(max(float32(v+float32(eta*sign32(g[i]))), lo), hi))
		s := float32(float32(v+float32((z-v)*a)) + float32((v-xOld[i])*float32(1-a)))
		nx[i] = clip01(min(max(s, lo), hi))
	}
	return nx, no
}

// APGDTrackRef is the CPU reference of APGDTrack: the new state and the trace row [b, APGDTraceWidth].
func APGDTrackRef(loss, state []float32, b int, c APGDCheck) ([]float32, []float32) {
	st := append([]float32(nil), state...)
	tr := make([]float32, b*APGDTraceWidth)
	for i := range b {
		s, l := st[i*APGDState:(i+1)*APGDState], loss[i]
		if c.Init {
			copy(s, []float32{c.Eta0, l, l, 0, l, 1, 0, 0})
		} else {
			cnt := s[3]
			if l > s[2] {
				cnt++
			}
			s[2] = l
			improved := l > s[1]
			if improved {
				s[1] = l
			}
			s[6] = b2f(improved)
			halve := false
			if c.Interval > 0 {
				osc := cnt < float32(c.Rho*float32(c.Interval))
				stuck := s[5] == 0 && s[4] >= s[1]
				halve = osc || stuck
				s[5], s[4], cnt = b2f(halve), s[1], 0
				if halve {
					s[0] *= 0.5
				}
			}
			s[3], s[7] = cnt, b2f(halve)
		}
		tr[i*3], tr[i*3+1], tr[i*3+2] = l, s[0], s[1]
	}
	return st, tr
}

// b2f is 1 for true, 0 for false.
func b2f(v bool) float32 {
	if v {
		return 1
	}
	return 0
}
