package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// Square's per-example state: SquareState floats a row (square.comp names the columns).
const (
	SquareState  = 8
	SquareBest   = 0 // the best margin max_{j≠y} z_j − z_y so far (ascended)
	SquareIt     = 1 // queries made: 1 after the start, then one per iteration
	SquareDone   = 2 // misclassified, or out of iterations (0/1)
	SquareAccept = 3 // the last proposal was accepted (0/1): commit it
	// SquareMaxChannels is the most channels a proposal's signs cover (one bit each, held exactly in a float).
	SquareMaxChannels = 16
)

// squarePush mirrors square.comp's push constants.
type squarePush struct {
	N, C, H, W, K, Iters uint32
	Eps                  float32
	SeedLo, SeedHi       uint32
	Stream, S            uint32
}

// SquareShape is a batch of images for the Square kernels.
type SquareShape struct {
	B, C, H, W int
}

func (s SquareShape) check(op string) error {
	if err := positive(op, Dim{"B", s.B}, Dim{"C", s.C}, Dim{"H", s.H}, Dim{"W", s.W}); err != nil {
		return err
	}
	if s.C > SquareMaxChannels {
		return fmt.Errorf("%s: %d channels; at most %d", op, s.C, SquareMaxChannels)
	}
	return nil
}

func (s SquareShape) push(g ExampleRNG) squarePush {
	k := PhiloxKey(g.Seed)
	return squarePush{C: uint32(s.C), H: uint32(s.H), W: uint32(s.W), SeedLo: k[0], SeedHi: k[1], Stream: g.Stream,
		S: SquareState}
}

// SquareSizes returns AutoAttack's square side for each of iters iterations on C×H×W images: p = pInit halved at
// iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 (its schedule, not rescaled to the query budget),
// s = max(round(√(p·H·W)), 1) (round half to even, as Python) and at most min(H, W).
func SquareSizes(pInit float64, iters, h, w int) []float32 {
	out := make([]float32, iters)
	for i := range out {
		p := pInit
		for _, at := range []int{10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000} {
			if i > at {
				p /= 2
			}
		}
		s := max(int(math.RoundToEven(math.Sqrt(p*float64(h*w)))), 1)
		out[i] = float32(min(s, min(h, w)))
	}
	return out
}

// SquarePropose records the proposal step of the Square Attack on a batch (square.comp): commit the last accepted
// proposal into xBest, then write the next one into xNew. ids (uint32 [B]) name each row's Philox stream.
func (l *Lib) SquarePropose(r *vk.Recorder, x0, ids, state, xBest, xNew vk.Range, s SquareShape, eps float32,
	g ExampleRNG) error {
	const op = "square propose"
	if err := s.check(op); err != nil {
		return err
	}
	n := s.B * s.C * s.H * s.W
	if err := needEach(op, sized{"x0", x0, n}, sized{"state", state, s.B * SquareState}, sized{"xBest", xBest, n},
		sized{"xNew", xNew, n}); err != nil {
		return err
	}
	if err := needU32(op, "ids", ids, s.B); err != nil {
		return err
	}
	if err := checkScale(op, "eps", eps); err != nil {
		return err
	}
	if err := disjoint(op, named{"x0", x0}, named{"ids", ids}, named{"state", state}, named{"xBest", xBest},
		named{"xNew", xNew}); err != nil {
		return err
	}
	// Rows of a multiple of four pixels: four adjacent pixels per invocation (square.comp's VEC4).
	shader, per := vec4Variant("square_propose", s.W, x0, xBest, xNew)
	p := s.push(g)
	p.N, p.Eps = uint32(n/per), eps
	return l.dispatch1D(r, shader, n/per, p,
		[]vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite, vk.ReadWrite}, x0, ids, state, xBest, xNew)
}

// SquareAccept records the acceptance step on the logits [B, k] of the proposals (square.comp), with sizes the
// table of SquareSizes for iters iterations.
func (l *Lib) SquareAccept(r *vk.Recorder, logits, labels, ids, sizes, state vk.Range, s SquareShape, k, iters int,
	g ExampleRNG) error {
	const op = "square accept"
	if err := s.check(op); err != nil {
		return err
	}
	if err := checkLoss(op, logits, labels, s.B, k, 2); err != nil {
		return err
	}
	if err := l.checkSquareRows(op, ids, sizes, state, s, iters); err != nil {
		return err
	}
	if err := disjoint(op, named{"logits", logits}, named{"labels", labels}, named{"ids", ids},
		named{"sizes", sizes}, named{"state", state}); err != nil {
		return err
	}
	p := s.push(g)
	p.N, p.K, p.Iters = uint32(s.B), uint32(k), uint32(iters)
	return l.dispatch1D(r, "square_accept", s.B, p,
		[]vk.Access{vk.Read, vk.Read, vk.Read, vk.Read, vk.ReadWrite}, logits, labels, ids, sizes, state)
}

// SquareDraw records the draw of each unfinished row's square for its current iteration (it ≥ 1), as
// SquareAccept draws the next one: a chunk of iterations starts with it.
func (l *Lib) SquareDraw(r *vk.Recorder, ids, sizes, state vk.Range, s SquareShape, iters int, g ExampleRNG) error {
	const op = "square draw"
	if err := s.check(op); err != nil {
		return err
	}
	if err := l.checkSquareRows(op, ids, sizes, state, s, iters); err != nil {
		return err
	}
	if err := disjoint(op, named{"ids", ids}, named{"sizes", sizes}, named{"state", state}); err != nil {
		return err
	}
	p := s.push(g)
	p.N = uint32(s.B)
	return l.dispatch1D(r, "square_draw", s.B, p, []vk.Access{vk.Read, vk.Read, vk.ReadWrite}, ids, sizes, state)
}

func (l *Lib) checkSquareRows(op string, ids, sizes, state vk.Range, s SquareShape, iters int) error {
	if err := positive(op, Dim{"iterations", iters}); err != nil {
		return err
	}
	if err := needU32(op, "ids", ids, s.B); err != nil {
		return err
	}
	return needEach(op, sized{"sizes", sizes, iters}, sized{"state", state, s.B * SquareState})
}

// squareDrawRef writes the square of iteration it into one row's state, as square.comp's draw.
func squareDrawRef(st []float32, id uint32, it uint32, sizes []float32, s SquareShape, g ExampleRNG) {
	side := uint32(sizes[it-1])
	w := Philox4x32([4]uint32{0, g.Stream + 1, id, it}, PhiloxKey(g.Seed))
	st[4] = float32(uint32((uint64(w[0]) * uint64(uint32(s.H)-side+1)) >> 32))
	st[5] = float32(uint32((uint64(w[1]) * uint64(uint32(s.W)-side+1)) >> 32))
	st[6] = float32(side)
	st[7] = float32(w[2] & (1<<uint(s.C) - 1))
}

// SquareProposeRef is the CPU reference of SquarePropose: the new xBest and xNew.
func SquareProposeRef(x0 []float32, ids []uint32, state, xBest, xNew []float32, s SquareShape, eps float32,
	g ExampleRNG) ([]float32, []float32) {
	nb, nn := append([]float32(nil), xBest...), append([]float32(nil), xNew...)
	plane, per := s.H*s.W, s.C*s.H*s.W
	key := PhiloxKey(g.Seed)
	for b := range s.B {
		st := state[b*SquareState : (b+1)*SquareState]
		for j := b * per; j < (b+1)*per; j++ {
			if st[SquareAccept] != 0 {
				nb[j] = nn[j]
			}
		}
		if st[SquareDone] != 0 {
			continue
		}
		it := uint32(st[SquareIt])
		for q := range per {
			j := b*per + q
			ch, py, px := q/plane, (q%plane)/s.W, q%s.W
			o := x0[j]
			switch {
			case it == 0:
				k := uint32(ch*s.W + px)
				w := Philox4x32([4]uint32{k / 4, g.Stream, ids[b], 0}, key)
				sg := float32(-1)
				if w[k%4]>>31 != 0 {
					sg = 1
				}
				nn[j] = clip01(float32(o + float32(eps*sg)))
			case py >= int(st[4]) && py < int(st[4]+st[6]) && px >= int(st[5]) && px < int(st[5]+st[6]):
				sg := float32(-1)
				if (uint32(st[7])>>uint(ch))&1 != 0 {
					sg = 1
				}
				v := float32(nb[j] + float32(float32(2*eps)*sg))
				nn[j] = clip01(min(max(v, float32(o-eps)), float32(o+eps)))
			default:
				nn[j] = nb[j]
			}
		}
	}
	return nb, nn
}

// SquareAcceptRef is the CPU reference of SquareAccept: the new state.
func SquareAcceptRef(logits []float32, labels, ids []uint32, sizes, state []float32, s SquareShape, k, iters int,
	g ExampleRNG) []float32 {
	out := append([]float32(nil), state...)
	pred := ArgmaxRef(logits, s.B, k)
	for b := range s.B {
		st := out[b*SquareState : (b+1)*SquareState]
		if st[SquareDone] != 0 {
			st[SquareAccept] = 0
			continue
		}
		y := int(labels[b])
		_, m := cwRow(logits[b*k:(b+1)*k], y)
		fooled := pred[b] != labels[b]
		it := uint32(st[SquareIt])
		accept := it == 0 || m > st[SquareBest] || fooled
		if accept {
			st[SquareBest] = m
		}
		st[SquareAccept] = b2f(accept)
		it++
		st[SquareIt] = float32(it)
		if fooled || int(it) > iters {
			st[SquareDone] = 1
		} else {
			squareDrawRef(st, ids[b], it, sizes, s, g)
		}
	}
	return out
}

// SquareDrawRef is the CPU reference of SquareDraw: the new state.
func SquareDrawRef(ids []uint32, sizes, state []float32, s SquareShape, g ExampleRNG) []float32 {
	out := append([]float32(nil), state...)
	for b := range s.B {
		st := out[b*SquareState : (b+1)*SquareState]
		if it := uint32(st[SquareIt]); it > 0 && st[SquareDone] == 0 {
			squareDrawRef(st, ids[b], it, sizes, s, g)
		}
	}
	return out
}
