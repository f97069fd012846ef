package data

import (
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // ImageNet's files are JPEG
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/image/draw"
)

// FolderExts are the file extensions an image folder may hold (compared case-insensitively: ImageNet's are .JPEG).
var FolderExts = []string{".jpeg", ".jpg", ".png"}

// Folder is an ImageNet-style image folder, root/<split>/<class>/<image>, as torchvision's ImageFolder reads it:
// classes are the split's sub-folders in sorted order, labels their indexes. Only the file list is held in memory;
// images are decoded as they are streamed (ImageNet's training split is ~140 GB).
type Folder struct {
	Root    string
	Split   Split
	Classes []string
	Files   []FolderFile
}

// FolderFile is one image of a Folder and its label.
type FolderFile struct {
	Path  string
	Label int
}

// OpenFolder lists root/<split>/<class>/* . A missing split folder, a split without class folders, an empty class
// folder and a file that is not a JPEG or PNG image (by extension) are errors naming the path; a file whose
// contents do not decode is an error when it is streamed.
func OpenFolder(root string, split Split) (*Folder, error) {
	dir := filepath.Join(root, string(split))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder %s: no %s split (%s): %w", root, split, dir, errors.Unwrap(err))
	}
	f := &Folder{Root: root, Split: split}
	for _, e := range ents {
		if e.IsDir() {
			f.Classes = append(f.Classes, e.Name())
		}
	}
	if len(f.Classes) == 0 {
		return nil, fmt.Errorf("image folder %s: no class folders (want %s/<class>/<image>)", dir, dir)
	}
	sort.Strings(f.Classes)
	for label, c := range f.Classes {
		files, err := os.ReadDir(filepath.Join(dir, c))
		if err != nil {
			return nil, fmt.Errorf("image folder %s: %w", filepath.Join(dir, c), err)
		}
		n := 0
		for _, e := range files {
			if e.IsDir() {
				continue
			}
			p := filepath.Join(dir, c, e.Name())
			if !isImageName(e.Name()) {
				return nil, fmt.Errorf("image folder: %s is not an image (want %s)", p, strings.Join(FolderExts, ", "))
			}
			f.Files = append(f.Files, FolderFile{p, label})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("image folder: class folder %s holds no images", filepath.Join(dir, c))
		}
	}
	return f, nil
}

func isImageName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range FolderExts {
		if ext == e {
			return true
		}
	}
	return false
}

// StreamOptions say how a Folder is streamed.
type StreamOptions struct {
	Size  int  // output images are Size×Size, RGB, CHW, values in [0, 1]
	Train bool // random-resized crop + horizontal flip; otherwise resize + centre crop
	Batch int
	// Seed and Epoch fix the order (a permutation per epoch when Train, file order otherwise) and every random
	// crop and flip: an image's randomness depends on (Seed, Epoch, its index) only, never on which goroutine
	// decoded it, so a stream is the same for any Workers.
	Seed    uint64
	Epoch   int
	Workers int // decoding goroutines (0: one per CPU)
	// Prefetch is how many batches may wait decoded or decoding ahead of the consumer (0: 2); memory is bounded
	// by Prefetch + 2 batches (those, the one being dispatched and the one last returned) whatever the folder's size.
	Prefetch int
	// DropLast drops a last incomplete batch (static shapes, as training does); otherwise it is returned short.
	DropLast bool
	// Start is the position in the epoch's order the stream begins at (a multiple of Batch: a resumed run starts
	// mid-epoch); images keep their randomness, which depends on their position, not on where the stream began.
	Start int
	// Rows, when Rows.N > 0, keeps only those rows of every batch (a data-parallel process's share): the others are
	// not decoded, and the kept ones are the images, with the randomness, they are in the whole batch.
	Rows Rows
}

// EvalResize is the ratio of the crop to the resized shorter side in evaluation (torchvision's Resize(256) then
// CenterCrop(224)).
const EvalResize = 224.0 / 256.0

// FolderBatch is one streamed batch: Images holds len(Labels) images of 3×Size×Size floats.
type FolderBatch struct {
	Images []float32
	Labels []uint32
}

// Stream decodes a Folder's images in parallel goroutines into batches delivered in order. Call Next until it
// returns (nil, nil) at the end; Close stops the goroutines early (and is harmless after the end).
type Stream struct {
	out    chan *pending
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
}

type pending struct {
	b    FolderBatch
	done sync.WaitGroup
	mu   sync.Mutex
	err  error
}

type job struct {
	p   *pending
	pos int // place in the batch
	idx int // position in the epoch's order: the image's randomness
	f   FolderFile
}

// Stream starts streaming the folder with o.
func (f *Folder) Stream(ctx context.Context, o StreamOptions) (*Stream, error) {
	if o.Size <= 0 || o.Batch <= 0 || o.Workers < 0 || o.Prefetch < 0 || o.Start < 0 {
		return nil, fmt.Errorf("image folder stream: size %d, batch %d, workers %d, prefetch %d: sizes must be ≥ 1",
			o.Size, o.Batch, o.Workers, o.Prefetch)
	}
	if _, _, err := o.Rows.span(o.Batch); err != nil {
		return nil, fmt.Errorf("image folder stream: %w", err)
	}
	if o.Workers == 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Prefetch == 0 {
		o.Prefetch = 2
	}
	order := make([]int, len(f.Files))
	if o.Train {
		order = Order(len(f.Files), o.Seed, o.Epoch)
	} else {
		for i := range order {
			order[i] = i
		}
	}
	n := len(order)
	if o.DropLast {
		n -= n % o.Batch
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Stream{out: make(chan *pending, o.Prefetch), cancel: cancel}
	jobs := make(chan job, o.Batch)
	for w := 0; w < o.Workers; w++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for j := range jobs {
				err := decodeInto(j.p.b.Images[j.pos*3*o.Size*o.Size:(j.pos+1)*3*o.Size*o.Size], j.f.Path, o, j.idx)
				if err != nil {
					j.p.mu.Lock()
					if j.p.err == nil {
						j.p.err = err
					}
					j.p.mu.Unlock()
				}
				j.p.done.Done()
			}
		}()
	}
	s.wg.Add(1)
	go func() { // the producer: one pending batch at a time, at most Prefetch of them ahead of Next
		defer s.wg.Done()
		defer close(jobs)
		defer close(s.out)
		for start := o.Start; start < n; start += o.Batch {
			lo, hi := start, min(start+o.Batch, n)
			if o.Rows.N > 0 {
				lo, hi = start+o.Rows.From, min(start+o.Rows.From+o.Rows.N, hi)
			}
			p := &pending{b: FolderBatch{Images: make([]float32, (hi-lo)*3*o.Size*o.Size), Labels: make([]uint32, hi-lo)}}
			p.done.Add(hi - lo)
			select {
			case s.out <- p:
			case <-ctx.Done():
				return
			}
			for i := lo; i < hi; i++ {
				ff := f.Files[order[i]]
				p.b.Labels[i-lo] = uint32(ff.Label)
				select {
				case jobs <- job{p, i - lo, i, ff}:
				case <-ctx.Done():
					for ; i < hi; i++ {
						p.done.Done()
					}
					return
				}
			}
		}
	}()
	return s, nil
}

// Next returns the next batch in order, (nil, nil) after the last, or the first decoding error (naming the file).
func (s *Stream) Next() (*FolderBatch, error) {
	if s.err != nil {
		return nil, s.err
	}
	p, ok := <-s.out
	if !ok {
		return nil, nil
	}
	p.done.Wait()
	if p.err != nil {
		s.err = p.err
		s.Close()
		return nil, p.err
	}
	return &p.b, nil
}

// Close stops the stream's goroutines and waits for them.
func (s *Stream) Close() {
	s.cancel()
	go func() { // unblock a producer waiting to hand over a batch nobody will take
		for p := range s.out {
			p.done.Wait()
		}
	}()
	s.wg.Wait()
}

// decodeInto decodes one image file and writes its transformed 3×Size×Size CHW floats into dst.
func decodeInto(dst []float32, path string, o StreamOptions, idx int) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("image folder: %w", err)
	}
	img, _, err := image.Decode(fh)
	fh.Close()
	if err != nil {
		return fmt.Errorf("image folder: %s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 1 || b.Dy() < 1 {
		return fmt.Errorf("image folder: %s: empty image", path)
	}
	var crop image.Rectangle
	flip := false
	if o.Train {
		r := rand.New(rand.NewPCG(o.Seed, uint64(o.Epoch)<<32|uint64(idx)))
		crop = randomResizedCrop(b, r)
		flip = r.IntN(2) == 1
	} else {
		crop = centreCrop(b, EvalResize)
	}
	TransformCrop(dst, img, crop, o.Size, flip)
	return nil
}

// TransformCrop scales the crop of img to size×size with x/image/draw's bilinear kernel (which widens its support
// when it shrinks, so downscaling does not alias), mirrors it when flip, and writes RGB CHW floats in [0, 1] to
// dst (grey images give three equal channels).
func TransformCrop(dst []float32, img image.Image, crop image.Rectangle, size int, flip bool) {
	rgba := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.BiLinear.Scale(rgba, rgba.Bounds(), img, crop, draw.Src, nil)
	plane := size * size
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			sx := x
			if flip {
				sx = size - 1 - x
			}
			c := rgba.RGBAAt(sx, y)
			i := y*size + x
			dst[i], dst[plane+i], dst[2*plane+i] = float32(c.R)/255, float32(c.G)/255, float32(c.B)/255
		}
	}
}

// centreCrop is Resize(shorter side → size/ratio) then CenterCrop(size) expressed in the source image: the
// centred square whose side is ratio × the shorter side.
func centreCrop(b image.Rectangle, ratio float64) image.Rectangle {
	side := max(1, int(math.Round(ratio*float64(min(b.Dx(), b.Dy())))))
	x0 := b.Min.X + (b.Dx()-side)/2
	y0 := b.Min.Y + (b.Dy()-side)/2
	return image.Rect(x0, y0, x0+side, y0+side)
}

// randomResizedCrop is torchvision's RandomResizedCrop window (scale 0.08–1 of the area, aspect ratio 3/4–4/3
// drawn log-uniformly, ten tries, then the whole image's centre clamped to that ratio range).
func randomResizedCrop(b image.Rectangle, r *rand.Rand) image.Rectangle {
	w, h := b.Dx(), b.Dy()
	area := float64(w * h)
	lo, hi := math.Log(3.0/4), math.Log(4.0/3)
	for range 10 {
		target := area * (0.08 + 0.92*r.Float64())
		aspect := math.Exp(lo + (hi-lo)*r.Float64())
		cw := int(math.Round(math.Sqrt(target * aspect)))
		ch := int(math.Round(math.Sqrt(target / aspect)))
		if cw > 0 && ch > 0 && cw <= w && ch <= h {
			x0 := b.Min.X + r.IntN(w-cw+1)
			y0 := b.Min.Y + r.IntN(h-ch+1)
			return image.Rect(x0, y0, x0+cw, y0+ch)
		}
	}
	cw, ch := w, h
	if ratio := float64(w) / float64(h); ratio < 3.0/4 {
		ch = int(math.Round(float64(w) / (3.0 / 4)))
	} else if ratio > 4.0/3 {
		cw = int(math.Round(float64(h) * (4.0 / 3)))
	}
	x0, y0 := b.Min.X+(w-cw)/2, b.Min.Y+(h-ch)/2
	return image.Rect(x0, y0, x0+cw, y0+ch)
}
