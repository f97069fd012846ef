package data

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCropFlip checks the augmentation against its definition — pad, crop at the drawn offset, mirror — pixel by
// pixel, with the offsets and flips drawn from a copy of the same generator; and that pad 0 without flips is the
// identity, every offset in [−pad, pad] and both flips occur, and the same seed gives the same batch.
func TestCropFlip(t *testing.T) {
	const n, c, h, w, pad = 200, 3, 5, 7, 2
	orig := make([]float32, n*c*h*w)
	for i := range orig {
		orig[i] = float32(i%97) + 1 // never 0, so padding shows
	}
	got := slices.Clone(orig)
	CropFlip(got, n, c, h, w, pad, rand.New(rand.NewPCG(1, 2)))
	r := rand.New(rand.NewPCG(1, 2))
	offsets, flips := map[int]bool{}, map[bool]bool{}
	for i := 0; i < n; i++ {
		dy, dx, flip := r.IntN(2*pad+1)-pad, r.IntN(2*pad+1)-pad, r.IntN(2) == 1
		offsets[dy], offsets[dx], flips[flip] = true, true, true
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					// Padded image P is orig shifted by pad; the crop starts at (pad+dy, pad+dx) in P.
					px, py := x, y
					if flip {
						px = w - 1 - x
					}
					sy, sx := py+dy, px+dx
					want := float32(0)
					if sy >= 0 && sy < h && sx >= 0 && sx < w {
						want = orig[((i*c+ch)*h+sy)*w+sx]
					}
					if g := got[((i*c+ch)*h+y)*w+x]; g != want {
						t.Fatalf("image %d (offset %d,%d flip %v) channel %d pixel (%d,%d): %v, want %v", i, dy, dx, flip,
							ch, y, x, g, want)
					}
				}
			}
		}
	}
	if len(offsets) != 2*pad+1 || len(flips) != 2 {
		t.Fatalf("offsets drawn %v, flips %v: want every offset in [−%d, %d] and both flips", offsets, flips, pad, pad)
	}
	again := slices.Clone(orig)
	CropFlip(again, n, c, h, w, pad, rand.New(rand.NewPCG(1, 2)))
	if !slices.Equal(again, got) {
		t.Fatal("the same seed gave another batch")
	}
	id := slices.Clone(orig)
	CropFlip(id, n, c, h, w, 0, rand.New(rand.NewPCG(3, 4)))
	for i := 0; i < n; i++ { // pad 0: only flips change an image, and a flip twice is the identity
		img, o := id[i*c*h*w:(i+1)*c*h*w], orig[i*c*h*w:(i+1)*c*h*w]
		if !slices.Equal(img, o) {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					if img[y*w+x] != o[y*w+w-1-x] {
						t.Fatalf("pad 0, image %d: neither itself nor its mirror image", i)
					}
				}
			}
		}
	}
	if DefaultAugmentation("cifar10") != "crop-flip" || DefaultAugmentation("mnist") != "none" {
		t.Fatal("default augmentations")
	}
}

// TestCropFlipRows: augmenting rows [lo, hi) of a batch on their own, after SkipCropFlip(lo), gives those rows what
// augmenting the whole batch gives them — a data-parallel process's share of a CIFAR batch.
func TestCropFlipRows(t *testing.T) {
	const n, c, h, w, pad, lo, hi = 12, 3, 6, 6, 4, 5, 9
	orig := make([]float32, n*c*h*w)
	for i := range orig {
		orig[i] = float32(i%89) + 1
	}
	whole := slices.Clone(orig)
	CropFlip(whole, n, c, h, w, pad, rand.New(rand.NewPCG(3, 4)))
	sz := c * h * w
	part := slices.Clone(orig[lo*sz : hi*sz])
	r := rand.New(rand.NewPCG(3, 4))
	SkipCropFlip(lo, pad, r)
	CropFlip(part, hi-lo, c, h, w, pad, r)
	if !slices.Equal(part, whole[lo*sz:hi*sz]) {
		t.Fatal("rows augmented on their own differ from the same rows augmented in the whole batch")
	}
	unskipped := slices.Clone(orig[lo*sz : hi*sz])
	CropFlip(unskipped, hi-lo, c, h, w, pad, rand.New(rand.NewPCG(3, 4)))
	if slices.Equal(unskipped, part) {
		t.Fatal("skipping changed nothing: the test cannot tell")
	}
}
