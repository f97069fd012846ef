package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// Argmax and the correct count only compare and count, so they must match the reference exactly.
func TestArgmaxCorrect(t *testing.T) {
	l := openLib(t)
	for _, k := range edgeSizes {
		for _, b := range []int{1, 131, 1000} {
			for _, ties := range []bool{false, true} {
				t.Run(fmt.Sprintf("B%d_K%d_ties=%v", b, k, ties), func(t *testing.T) {
					r := rng(uint64(10*k + b))
					x := uniform(r, b*k, -2, 2)
					if ties {
						for i := range x {
							x[i] = float32(math.Round(float64(x[i])))
						}
					}
					want := ArgmaxRef(x, b, k)
					// About half the labels agree with the prediction, so the count is neither 0 nor b.
					labels := make([]uint32, b)
					for i := range labels {
						labels[i] = uint32(r.IntN(k))
						if r.IntN(2) == 0 {
							labels[i] = want[i]
						}
					}
					bx, bl := upload(t, l, x), uploadU32(t, l, labels)
					bp, bp2, bc := uploadU32(t, l, make([]uint32, b)), uploadU32(t, l, make([]uint32, b)), uploadU32(t, l, []uint32{7})
					run(t, l, func(r *vk.Recorder) error {
						if err := l.Argmax(r, bx.All(), bp.All(), b, k); err != nil {
							return err
						}
						return l.Correct(r, bx.All(), bl.All(), bp2.All(), bc.All(), b, k)
					})
					compareU32(t, "argmax", downloadU32(t, bp, b), want)
					pred, n := CorrectRef(x, labels, b, k)
					compareU32(t, "correct predictions", downloadU32(t, bp2, b), pred)
					compareU32(t, "correct count", downloadU32(t, bc, 1), []uint32{n})
				})
			}
		}
	}
}

// TestArgmaxNaN pins the NaN rule (a NaN is the largest value, the first NaN wins) and that an out-of-range label
// never counts as correct.
func TestArgmaxNaN(t *testing.T) {
	l := openLib(t)
	nan := float32(math.NaN())
	x := []float32{
		1, nan, 3, nan, // → 1
		nan, 2, 1, 0, // → 0
		0, 5, 5, 1, // → 1 (tie)
		4, 3, 2, 1, // → 0, label 4 is out of range
	}
	labels := []uint32{1, 0, 2, 4}
	bx, bl, bc := upload(t, l, x), uploadU32(t, l, labels), uploadU32(t, l, []uint32{0})
	bp, bp2 := uploadU32(t, l, make([]uint32, 4)), uploadU32(t, l, make([]uint32, 4))
	run(t, l, func(r *vk.Recorder) error {
		if err := l.Argmax(r, bx.All(), bp.All(), 4, 4); err != nil {
			return err
		}
		return l.Correct(r, bx.All(), bl.All(), bp2.All(), bc.All(), 4, 4)
	})
	want := []uint32{1, 0, 1, 0}
	compareU32(t, "reference", ArgmaxRef(x, 4, 4), want)
	compareU32(t, "argmax", downloadU32(t, bp, 4), want)
	compareU32(t, "correct predictions", downloadU32(t, bp2, 4), want)
	compareU32(t, "correct count", downloadU32(t, bc, 1), []uint32{2})
}

func TestArgmaxBadInput(t *testing.T) {
	l := openLib(t)
	small, x, lab, p, c := zeros(t, l, 4), zeros(t, l, 64), uploadU32(t, l, make([]uint32, 8)),
		uploadU32(t, l, make([]uint32, 8)), uploadU32(t, l, []uint32{0})
	rec := newRecorder(t, l)
	X, L, P, C := x.All(), lab.All(), p.All(), c.All()
	for _, tc := range []struct {
		what string
		err  error
	}{
		{"argmax zero rows", l.Argmax(rec, X, P, 0, 8)},
		{"argmax zero columns", l.Argmax(rec, X, P, 8, 0)},
		{"argmax x too small", l.Argmax(rec, small.All(), P, 8, 8)},
		{"argmax pred too small", l.Argmax(rec, X, small.Range(0, 4), 8, 8)},
		{"argmax nil pred", l.Argmax(rec, X, vk.Range{}, 8, 8)},
		{"argmax pred aliases x", l.Argmax(rec, X, x.Range(0, 32), 8, 8)},
		{"correct negative rows", l.Correct(rec, X, L, P, C, -1, 8)},
		{"correct labels too small", l.Correct(rec, X, small.Range(0, 4), P, C, 8, 8)},
		{"correct pred too small", l.Correct(rec, X, L, small.Range(0, 4), C, 8, 8)},
		{"correct nil count", l.Correct(rec, X, L, P, vk.Range{}, 8, 8)},
		{"correct count aliases labels", l.Correct(rec, X, L, P, lab.Range(0, 4), 8, 8)},
		{"correct overflow", l.Correct(rec, X, L, P, C, 1<<20, 1<<20)},
	} {
		expectErr(t, tc.what, tc.err)
	}
	if rec.Dispatches() != 0 {
		t.Errorf("bad inputs recorded %d dispatches", rec.Dispatches())
	}
}
