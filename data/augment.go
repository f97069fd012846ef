package data

import "math/rand/v2"

// Augmentations lists what --augment accepts: none, or crop-flip, the standard CIFAR augmentation.
var Augmentations = []string{"none", "crop-flip"}

// DefaultAugmentation is a dataset's usual training augmentation: crop-flip for CIFAR-10 (every CIFAR result the
// field reports trains with it), none for the MNIST-like sets (digits and clothes are not mirror-symmetric).
func DefaultAugmentation(dataset string) string {
	if dataset == "cifar10" {
		return "crop-flip"
	}
	return "none"
}

// CropFlip applies the standard CIFAR augmentation in place to n images of c×h×w (NCHW): each image is padded
// with pad zero pixels on every side, an h×w window is cut at a uniformly drawn offset (torchvision's
// RandomCrop(h, padding=pad)), and it is mirrored left-right with probability ½ (RandomHorizontalFlip). The draws
// come from r, three per image, so a seeded r gives the same batch every time (a resumed run sees what the straight
// one saw).
func CropFlip(images []float32, n, c, h, w, pad int, r *rand.Rand) {
	plane := h * w
	tmp := make([]float32, c*plane)
	for i := 0; i < n; i++ {
		dy, dx, flip := cropFlipDraw(pad, r)
		img := images[i*c*plane : (i+1)*c*plane]
		copy(tmp, img)
		for ch := 0; ch < c; ch++ {
			src, dst := tmp[ch*plane:(ch+1)*plane], img[ch*plane:(ch+1)*plane]
			for y := 0; y < h; y++ {
				sy := y + dy
				for x := 0; x < w; x++ {
					// Output pixel x of the (possibly mirrored) crop reads the padded image at (sy, sx).
					ox := x
					if flip {
						ox = w - 1 - x
					}
					sx := ox + dx
					v := float32(0)
					if sy >= 0 && sy < h && sx >= 0 && sx < w {
						v = src[sy*w+sx]
					}
					dst[y*w+x] = v
				}
			}
		}
	}
}

// cropFlipDraw draws one image's crop offsets and flip.
func cropFlipDraw(pad int, r *rand.Rand) (dy, dx int, flip bool) {
	dy, dx = r.IntN(2*pad+1)-pad, r.IntN(2*pad+1)-pad
	return dy, dx, r.IntN(2) == 1
}

// SkipCropFlip draws from r what CropFlip draws for n images, without images: a data-parallel process augmenting
// only its rows of a batch skips the rows before them, so every row gets what it gets in the whole batch.
func SkipCropFlip(n, pad int, r *rand.Rand) {
	for range n {
		cropFlipDraw(pad, r)
	}
}
