package data

import (
	"fmt"
	"math/rand/v2"
)

// Set is a labelled image dataset held in memory: Images holds N×C×H×W float32 pixels in [0, 1] (NCHW), Labels
// one class index per image.
type Set struct {
	Name    string // e.g. "mnist/train"
	N       int
	C, H, W int
	Classes int
	Images  []float32
	Labels  []uint8
}

// ImageSize is the number of floats in one image.
func (s *Set) ImageSize() int { return s.C * s.H * s.W }

// Subset returns the first n examples (or all, if n ≤ 0 or n ≥ N), sharing memory with s.
func (s *Set) Subset(n int) *Set {
	if n <= 0 || n >= s.N {
		return s
	}
	out := *s
	out.N = n
	out.Images = s.Images[:n*s.ImageSize()]
	out.Labels = s.Labels[:n]
	out.Name = fmt.Sprintf("%s[:%d]", s.Name, n)
	return &out
}

// validate checks the set's internal consistency.
func (s *Set) validate() error {
	switch {
	case s.N <= 0:
		return fmt.Errorf("%s: no examples", s.Name)
	case len(s.Images) != s.N*s.ImageSize():
		return fmt.Errorf("%s: %d pixels for %d images of %d×%d×%d", s.Name, len(s.Images), s.N, s.C, s.H, s.W)
	case len(s.Labels) != s.N:
		return fmt.Errorf("%s: %d labels for %d images", s.Name, len(s.Labels), s.N)
	}
	for i, l := range s.Labels {
		if int(l) >= s.Classes {
			return fmt.Errorf("%s: label %d of example %d is not below the %d classes", s.Name, l, i, s.Classes)
		}
	}
	return nil
}

// Order returns the example order of one epoch: a permutation of 0..n−1 drawn from (seed, epoch) alone, so a run
// resumed at any epoch sees exactly the order an uninterrupted run would.
func Order(n int, seed uint64, epoch int) []int {
	r := rand.New(rand.NewPCG(seed, uint64(epoch)))
	return r.Perm(n)
}

// Batch copies the examples order[lo:hi] of s into images (len ≥ (hi−lo)·ImageSize) and labels (len ≥ hi−lo).
func (s *Set) Batch(order []int, lo, hi int, images []float32, labels []uint32) error {
	if lo < 0 || hi > len(order) || lo >= hi {
		return fmt.Errorf("batch [%d, %d) of an order of %d examples", lo, hi, len(order))
	}
	sz := s.ImageSize()
	if len(images) < (hi-lo)*sz || len(labels) < hi-lo {
		return fmt.Errorf("batch of %d examples needs %d pixels and %d labels, got %d and %d", hi-lo, (hi-lo)*sz,
			hi-lo, len(images), len(labels))
	}
	for i, idx := range order[lo:hi] {
		if idx < 0 || idx >= s.N {
			return fmt.Errorf("batch: example index %d outside %s's %d examples", idx, s.Name, s.N)
		}
		copy(images[i*sz:(i+1)*sz], s.Images[idx*sz:(idx+1)*sz])
		labels[i] = uint32(s.Labels[idx])
	}
	return nil
}
