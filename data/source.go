package data

import (
	"context"
	"fmt"
)

// Val is an image folder's evaluation split (ImageNet's val/); the in-memory datasets call theirs Test.
const Val Split = "val"

// Source is where a training run's batches come from: an in-memory Set, shuffled per epoch, or an image Folder
// streamed from disk (nothing held but the file list and a few batches).
type Source interface {
	Len() int                      // examples per epoch
	Shape() (c, h, w, classes int) // of every image
	// Epoch starts epoch e (from 0) at example first (a multiple of batch: a resumed run) with the order and
	// randomness that seed and e fix; each batch holds only its rows (all of them when rows.N is 0).
	Epoch(ctx context.Context, seed uint64, e, first, batch int, rows Rows) (Batches, error)
}

// Rows selects a share of every batch, its rows [From, From+N): a data-parallel process's share, whose other rows
// are neither copied nor decoded. N = 0 is the whole batch. A row keeps the example and the randomness of its
// position in the whole batch.
type Rows struct{ From, N int }

// span returns the rows' bounds in a batch of size batch.
func (r Rows) span(batch int) (lo, n int, err error) {
	if r.N == 0 {
		return 0, batch, nil
	}
	if r.From < 0 || r.N < 0 || r.From+r.N > batch {
		return 0, 0, fmt.Errorf("rows [%d, %d) of a batch of %d", r.From, r.From+r.N, batch)
	}
	return r.From, r.N, nil
}

// Batches hands out one epoch's batches in order.
type Batches interface {
	// Next fills images (batch × C×H×W floats) and labels with the next batch.
	Next(images []float32, labels []uint32) error
	Close()
}

// Len is the set's example count.
func (s *Set) Len() int { return s.N }

// Shape is the set's image shape and class count.
func (s *Set) Shape() (c, h, w, classes int) { return s.C, s.H, s.W, s.Classes }

// Epoch walks the set in the epoch's order (Order(N, seed, e)).
func (s *Set) Epoch(_ context.Context, seed uint64, e, first, batch int, rows Rows) (Batches, error) {
	lo, n, err := rows.span(batch)
	if err != nil {
		return nil, err
	}
	return &setBatches{s: s, order: Order(s.N, seed, e), pos: first, batch: batch, lo: lo, n: n}, nil
}

type setBatches struct {
	s          *Set
	order      []int
	pos, batch int
	lo, n      int // the rows of each batch handed out
}

func (b *setBatches) Next(images []float32, labels []uint32) error {
	if err := b.s.Batch(b.order, b.pos+b.lo, b.pos+b.lo+b.n, images, labels); err != nil {
		return err
	}
	b.pos += b.batch
	return nil
}

func (b *setBatches) Close() {}

// FolderSource trains on an image Folder: each epoch streams its files in a permutation drawn from (seed, epoch),
// decoded by parallel goroutines with a random-resized crop and a flip to Size×Size RGB (StreamOptions.Train).
type FolderSource struct {
	Folder *Folder
	Size   int
}

// Len is the folder's image count.
func (f FolderSource) Len() int { return len(f.Folder.Files) }

// Shape is 3×Size×Size and the folder's class count.
func (f FolderSource) Shape() (c, h, w, classes int) { return 3, f.Size, f.Size, len(f.Folder.Classes) }

// Epoch starts streaming epoch e from example first (Folder.Stream checks the rows).
func (f FolderSource) Epoch(ctx context.Context, seed uint64, e, first, batch int, rows Rows) (Batches, error) {
	st, err := f.Folder.Stream(ctx, StreamOptions{Size: f.Size, Train: true, Batch: batch, Seed: seed, Epoch: e,
		DropLast: true, Start: first, Rows: rows})
	if err != nil {
		return nil, err
	}
	return &folderBatches{st: st}, nil
}

type folderBatches struct{ st *Stream }

func (b *folderBatches) Next(images []float32, labels []uint32) error {
	fb, err := b.st.Next()
	if err != nil {
		return err
	}
	if fb == nil || len(fb.Labels) != len(labels) || len(fb.Images) > len(images) {
		return fmt.Errorf("image folder: the stream ended early")
	}
	copy(images, fb.Images)
	copy(labels, fb.Labels)
	return nil
}

func (b *folderBatches) Close() { b.st.Close() }

// Subset keeps n of the folder's files spread evenly over it (every (len/n)-th, from the first): a folder lists its
// files class by class, so its first n would all be one class. n ≤ 0 or ≥ the count keeps all.
func (f *Folder) Subset(n int) *Folder {
	if n <= 0 || n >= len(f.Files) {
		return f
	}
	out := *f
	out.Files = make([]FolderFile, n)
	for i := range out.Files {
		out.Files[i] = f.Files[i*len(f.Files)/n]
	}
	return &out
}

// LoadFolderSet decodes n images of a folder's split (spread evenly, see Subset; 0: all) for evaluation —
// resize and centre crop to size×size — into an in-memory Set. The set is n × 3×size×size floats: evaluations hold
// a few thousand images, never a whole ImageNet split.
func LoadFolderSet(root string, split Split, size, n int) (*Set, error) {
	f, err := OpenFolder(root, split)
	if err != nil {
		return nil, err
	}
	if len(f.Classes) > 256 {
		return nil, fmt.Errorf("image folder %s: %d classes; sqnet's in-memory evaluation sets hold labels below 256 "+
			"for now (Tiny-ImageNet's 200 fit, ImageNet-1k's 1000 do not)", root, len(f.Classes))
	}
	f = f.Subset(n)
	st, err := f.Stream(context.Background(), StreamOptions{Size: size, Batch: 256})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	s := &Set{Name: fmt.Sprintf("%s/%s", root, split), N: len(f.Files), C: 3, H: size, W: size,
		Classes: len(f.Classes)}
	for {
		b, err := st.Next()
		if err != nil {
			return nil, err
		}
		if b == nil {
			break
		}
		s.Images = append(s.Images, b.Images...)
		for _, l := range b.Labels {
			s.Labels = append(s.Labels, uint8(l))
		}
	}
	return s, s.validate()
}

// DefaultFolderSize is the side of a folder dataset's images when --image-size is not given (Tiny-ImageNet's).
const DefaultFolderSize = 64

// ShapeOf returns a dataset's image shape and class count: from its name for the fixed datasets, and for an image
// folder (listing its train split's classes under dir, $SQNET_DATA when dir is empty) 3×size×size.
func ShapeOf(name, dir string, size int) (c, h, w, classes int, err error) {
	if name != "folder" {
		var ok bool
		if c, h, w, classes, ok = Shape(name); !ok {
			err = fmt.Errorf("--dataset %q: unknown", name)
		}
		return
	}
	root, err := Locate(name, dir)
	if err != nil {
		return
	}
	f, err := OpenFolder(root, Train)
	if err != nil {
		return
	}
	return 3, size, size, len(f.Classes), nil
}
