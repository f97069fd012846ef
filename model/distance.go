package model

import (
	"fmt"
	"math"
	"slices"
)

// RelativeDistance is ‖b − a‖₂ / ‖a − init‖₂ over every tensor of a: how far weights b end from weights a, relative
// to how far training moved a from its initial weights init. It is the measure in which data-parallel training's
// agreement with one device is stated (docs/scaling.md); 0 means b equals a bit for bit (or differs only in the
// sign of zeros). A tensor of a missing from b or init, or of another size, is an error.
func RelativeDistance(a, b, init Weights) (float64, error) {
	var diff, moved float64
	names := make([]string, 0, len(a))
	for name := range a {
		names = append(names, name)
	}
	slices.Sort(names) // a fixed order of summation: the same inputs give the same bits
	for _, name := range names {
		va, vb, v0 := a[name], b[name], init[name]
		if len(vb) != len(va) || len(v0) != len(va) {
			return 0, fmt.Errorf("%s: %d values, %d in the other weights and %d initially", name, len(va), len(vb),
				len(v0))
		}
		for i := range va {
			d, m := float64(vb[i]-va[i]), float64(va[i]-v0[i])
			diff, moved = diff+d*d, moved+m*m
		}
	}
	if diff == 0 {
		return 0, nil
	}
	return math.Sqrt(diff / moved), nil
}

// FileDistance is RelativeDistance between the weights of two checkpoint files, measured from a's initial weights
// (its architecture, quantizer and seed).
func FileDistance(a, b string) (float64, error) {
	ca, err := Load(a)
	if err != nil {
		return 0, err
	}
	cb, err := Load(b)
	if err != nil {
		return 0, err
	}
	return RelativeDistance(ca.Weights, cb.Weights, ca.Arch.Init(ca.Quant, ca.Seed))
}
