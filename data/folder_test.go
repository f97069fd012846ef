package data

import (
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeImage writes img as PNG or JPEG (by path's extension), creating folders.
func writeImage(t testing.TB, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(strings.ToLower(path), ".png") {
		err = png.Encode(f, img)
	} else {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func uniform(w, h int, c color.Color) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	return img
}

// classColour is the colour of every image of a class in the generated folders.
var classColour = []color.RGBA{{200, 10, 50, 255}, {30, 30, 30, 255}}

// makeFolder writes root/<split>/{b_cls,a_cls}/ with three lossless PNGs per class of odd sizes (a class's images
// are one uniform colour) — folder names out of order, so labels must come from the sorted names.
func makeFolder(t testing.TB, root string, split Split) {
	for i, class := range []string{"a_cls", "b_cls"} {
		for j, wh := range [][2]int{{40, 30}, {30, 50}, {17, 17}} {
			writeImage(t, filepath.Join(root, string(split), class, []string{"x.png", "y.PNG", "z.png"}[j]),
				uniform(wh[0], wh[1], classColour[i]))
		}
	}
}

func TestFolderEvalStream(t *testing.T) {
	root := t.TempDir()
	makeFolder(t, root, "val")
	f, err := OpenFolder(root, "val")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.Classes, ",") != "a_cls,b_cls" || len(f.Files) != 6 {
		t.Fatalf("classes %v, %d files", f.Classes, len(f.Files))
	}
	for _, drop := range []bool{false, true} {
		s, err := f.Stream(context.Background(), StreamOptions{Size: 8, Batch: 4, Workers: 3, DropLast: drop})
		if err != nil {
			t.Fatal(err)
		}
		images, labels, sizes := drain(t, s)
		if len(images) != len(labels)*3*64 {
			t.Fatalf("%d floats for %d images of 3×8×8", len(images), len(labels))
		}
		for _, n := range sizes {
			if n > 4 {
				t.Fatalf("a batch of %d, batch size 4", n)
			}
		}
		for i, l := range labels {
			want := classColour[l]
			for c, v := range []uint8{want.R, want.G, want.B} {
				for p := 0; p < 64; p++ {
					if got := images[(i*3+c)*64+p]; got != float32(v)/255 {
						t.Fatalf("image %d (label %d) channel %d pixel %d: %v, want %v", i, l, c, p, got, float32(v)/255)
					}
				}
			}
		}
		want := "[0 0 0 1 1 1]" // evaluation streams in file order
		if drop {
			want = "[0 0 0 1]"
		}
		if fmtU32(labels) != want {
			t.Errorf("DropLast %v: labels %s, want %s", drop, fmtU32(labels), want)
		}
	}
}

// drain reads a stream to its end and closes it: every image and label, and each batch's size.
func drain(t testing.TB, s *Stream) (images []float32, labels []uint32, sizes []int) {
	t.Helper()
	defer s.Close()
	for {
		b, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			return
		}
		if len(b.Labels) == 0 || len(b.Images)%len(b.Labels) != 0 {
			t.Fatalf("a batch of %d floats and %d labels", len(b.Images), len(b.Labels))
		}
		images, labels, sizes = append(images, b.Images...), append(labels, b.Labels...), append(sizes, len(b.Labels))
	}
}

func fmtU32(v []uint32) string {
	var b strings.Builder
	b.WriteString("[")
	for i, x := range v {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(string(rune('0' + x)))
	}
	b.WriteString("]")
	return b.String()
}

// TestTransformGeometry: the centre crop, the scale and the flip put a half-black, half-white image where they
// should.
func TestTransformGeometry(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 64, 32)) // left half black, right half white
	for y := 0; y < 32; y++ {
		for x := 32; x < 64; x++ {
			img.SetGray(x, y, color.Gray{255})
		}
	}
	crop := centreCrop(img.Bounds(), EvalResize)
	if crop != image.Rect(18, 2, 46, 30) {
		t.Fatalf("centre crop %v, want (18,2)-(46,30): a 28-pixel square (0.875 × 32) in the middle", crop)
	}
	for _, flip := range []bool{false, true} {
		dst := make([]float32, 3*16*16)
		TransformCrop(dst, img, crop, 16, flip)
		left, right := dst[5*16], dst[5*16+15] // row 5, first and last column, red channel
		if flip {
			left, right = right, left
		}
		if left != 0 || right != 1 {
			t.Errorf("flip %v: row 5 runs %v … %v, want black on the image's left and white on its right", flip,
				dst[5*16], dst[5*16+15])
		}
		for c := 1; c < 3; c++ { // a grey image gives three equal channels
			if dst[c*256+5*16] != dst[5*16] {
				t.Errorf("channel %d differs from channel 0 on a grey image", c)
			}
		}
	}
	// torchvision's window: inside the image, area 8–100%, aspect ratio 3/4–4/3 (the fallback keeps the ratio).
	for _, b := range []image.Rectangle{image.Rect(0, 0, 500, 375), image.Rect(0, 0, 30, 200), image.Rect(3, 4, 20, 21)} {
		for seed := uint64(0); seed < 200; seed++ {
			r := randomResizedCrop(b, newTestRand(seed))
			// The window's sides are rounded to whole pixels: the ratio holds up to half a pixel on each.
			w, h := float64(r.Dx()), float64(r.Dy())
			ratio := w / h
			area := w * h / float64(b.Dx()*b.Dy())
			if !r.In(b) || r.Empty() || (w+0.5)/(h-0.5) < 0.75 || (w-0.5)/(h+0.5) > 4.0/3 || area > 1 {
				t.Fatalf("image %v, seed %d: window %v (ratio %.3f, area %.3f)", b, seed, r, ratio, area)
			}
		}
	}
}

// TestFolderTrainStream: training streams are shuffled per epoch, with random crops and flips that depend on the
// seed, epoch and image only — the same for one decoding goroutine or eight.
func TestFolderTrainStream(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 10; i++ { // JPEGs with structure, so crops and flips show
		img := image.NewRGBA(image.Rect(0, 0, 48+i, 40))
		for y := 0; y < 40; y++ {
			for x := 0; x < 48+i; x++ {
				img.Set(x, y, color.RGBA{uint8(5 * x), uint8(6 * y), uint8(20 * i), 255})
			}
		}
		writeImage(t, filepath.Join(root, "train", []string{"cat", "dog"}[i%2], string(rune('a'+i))+".JPEG"), img)
	}
	f, err := OpenFolder(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	read := func(workers, epoch int) ([]float32, []uint32) {
		s, err := f.Stream(context.Background(), StreamOptions{Size: 24, Batch: 3, Train: true, Seed: 5, Epoch: epoch,
			Workers: workers, Prefetch: 1})
		if err != nil {
			t.Fatal(err)
		}
		xs, ys, _ := drain(t, s)
		return xs, ys
	}
	x1, y1 := read(1, 0)
	x8, y8 := read(8, 0)
	if len(y1) != 10 || fmtU32(y1) != fmtU32(y8) {
		t.Fatalf("labels %v with one goroutine, %v with eight", y1, y8)
	}
	for i := range x1 {
		if x1[i] != x8[i] {
			t.Fatalf("float %d: %v with one goroutine, %v with eight", i, x1[i], x8[i])
		}
	}
	// A data-parallel process's share: rows [1, 3) of every batch of 3 are those rows of the whole stream — the
	// same images with the same crops — and the other rows are never decoded.
	s, err := f.Stream(context.Background(), StreamOptions{Size: 24, Batch: 3, Train: true, Seed: 5, Workers: 2,
		DropLast: true, Rows: Rows{From: 1, N: 2}})
	if err != nil {
		t.Fatal(err)
	}
	xr, yr, _ := drain(t, s)
	px := 3 * 24 * 24
	var wantX []float32
	var wantY []uint32
	for b := 0; b < 3; b++ { // 10 images, DropLast: 3 batches of 3
		wantX = append(wantX, x1[(3*b+1)*px:(3*b+3)*px]...)
		wantY = append(wantY, y1[3*b+1:3*b+3]...)
	}
	if fmtU32(yr) != fmtU32(wantY) || !slices.Equal(xr, wantX) {
		t.Fatalf("rows [1, 3) of each batch: labels %v, want %v (images equal: %v)", yr, wantY, slices.Equal(xr, wantX))
	}
	if _, err := f.Stream(context.Background(), StreamOptions{Size: 24, Batch: 3, Rows: Rows{From: 2, N: 2}}); err == nil {
		t.Error("rows beyond the batch were accepted")
	}
	x2, _ := read(2, 1)
	same := 0
	for i := range x1 {
		if x1[i] == x2[i] {
			same++
		}
	}
	if same == len(x1) {
		t.Error("epoch 1 streams exactly what epoch 0 did")
	}
}

// TestFolderBadInput: a missing split, no class folders, an empty class folder and a stray file are errors naming
// the path when the folder is opened; a truncated JPEG and a corrupt PNG are errors naming the file when streamed;
// a stream closed early stops its goroutines.
func TestFolderBadInput(t *testing.T) {
	root := t.TempDir()
	if _, err := OpenFolder(root, "train"); err == nil || !strings.Contains(err.Error(), "no train split") {
		t.Errorf("missing split: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "train"), 0o755)
	if _, err := OpenFolder(root, "train"); err == nil || !strings.Contains(err.Error(), "no class folders") {
		t.Errorf("no classes: %v", err)
	}
	makeFolder(t, root, "train")
	empty := filepath.Join(root, "train", "c_empty")
	os.MkdirAll(empty, 0o755)
	if _, err := OpenFolder(root, "train"); err == nil || !strings.Contains(err.Error(), empty+" holds no images") {
		t.Errorf("empty class: %v", err)
	}
	stray := filepath.Join(empty, "notes.txt")
	os.WriteFile(stray, []byte("hello"), 0o644)
	if _, err := OpenFolder(root, "train"); err == nil || !strings.Contains(err.Error(), stray+" is not an image") {
		t.Errorf("stray file: %v", err)
	}
	os.Remove(stray)
	for _, c := range []struct{ name, ext string }{{"truncated", ".jpg"}, {"corrupt", ".png"}} {
		p := filepath.Join(empty, c.name+c.ext)
		writeImage(t, p, uniform(64, 64, color.White))
		b, _ := os.ReadFile(p)
		if c.ext == ".jpg" {
			b = b[:len(b)/2]
		} else {
			b[40] ^= 0xff // inside IHDR/IDAT: the checksum no longer matches
		}
		os.WriteFile(p, b, 0o644)
		f, err := OpenFolder(root, "train")
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.Stream(context.Background(), StreamOptions{Size: 8, Batch: 2, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		for serr == nil {
			var b *FolderBatch
			b, serr = s.Next()
			if b == nil && serr == nil {
				break
			}
		}
		s.Close()
		if serr == nil || !strings.Contains(serr.Error(), p) {
			t.Errorf("%s file: error %v, want one naming %s", c.name, serr, p)
		}
		os.Remove(p)
	}
	os.Remove(empty)
	if _, err := (&Folder{}).Stream(context.Background(), StreamOptions{Size: 0, Batch: 1}); err == nil {
		t.Error("size 0 accepted")
	}
	// Closing after one batch of many must not hang or leak goroutines.
	f, err := OpenFolder(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	s, _ := f.Stream(context.Background(), StreamOptions{Size: 8, Batch: 1, Workers: 4, Prefetch: 1})
	if b, err := s.Next(); b == nil || err != nil {
		t.Fatalf("first batch: %v %v", b, err)
	}
	s.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before the stream", n, before)
	}
}

// BenchmarkFolderDecode streams ImageNet-shaped JPEGs (500×375) at 224×224 (evaluation transform) and 64×64 (a
// training transform, Tiny-ImageNet-sized) and reports decoded images/s, per core.
func BenchmarkFolderDecode(b *testing.B) {
	root := b.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 500, 375))
	for y := 0; y < 375; y++ {
		for x := 0; x < 500; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	for i := 0; i < 32; i++ {
		writeImage(b, filepath.Join(root, "train", string(rune('a'+i%4)), string(rune('a'+i))+".JPEG"), img)
	}
	f, err := OpenFolder(root, "train")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		size  int
		train bool
	}{{"eval224", 224, false}, {"train64", 64, true}} {
		b.Run(c.name, func(b *testing.B) {
			workers := runtime.NumCPU()
			start, images := time.Now(), 0
			for i := 0; i < b.N; i++ {
				s, err := f.Stream(context.Background(), StreamOptions{Size: c.size, Batch: 8, Train: c.train,
					Epoch: i, Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				_, labels, _ := drain(b, s)
				images += len(labels)
			}
			rate := float64(images) / time.Since(start).Seconds()
			b.ReportMetric(rate, "images/s")
			b.ReportMetric(rate/float64(workers), "images/s/core")
		})
	}
}

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }
