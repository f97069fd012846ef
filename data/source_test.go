package data

import (
	"context"
	"slices"
	"testing"
)

// TestSetEpochRows: a set's batches cut to rows [From, From+N) are those rows of the whole batches; rows outside
// the batch are an error.
func TestSetEpochRows(t *testing.T) {
	s := &Set{Name: "t", N: 12, C: 1, H: 1, W: 2, Classes: 10, Images: make([]float32, 24), Labels: make([]uint8, 12)}
	for i := range s.Images {
		s.Images[i] = float32(i)
	}
	for i := range s.Labels {
		s.Labels[i] = uint8(i % 10)
	}
	whole, err := s.Epoch(context.Background(), 7, 1, 0, 4, Rows{})
	if err != nil {
		t.Fatal(err)
	}
	part, err := s.Epoch(context.Background(), 7, 1, 0, 4, Rows{From: 1, N: 2})
	if err != nil {
		t.Fatal(err)
	}
	wx, wy := make([]float32, 8), make([]uint32, 4)
	px, py := make([]float32, 4), make([]uint32, 2)
	for b := 0; b < 3; b++ {
		if err := whole.Next(wx, wy); err != nil {
			t.Fatal(err)
		}
		if err := part.Next(px, py); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(px, wx[2:6]) || !slices.Equal(py, wy[1:3]) {
			t.Fatalf("batch %d: rows [1, 3) %v %v, whole batch %v %v", b, px, py, wx, wy)
		}
	}
	if _, err := s.Epoch(context.Background(), 7, 1, 0, 4, Rows{From: 3, N: 2}); err == nil {
		t.Fatal("rows beyond the batch were accepted")
	}
}
