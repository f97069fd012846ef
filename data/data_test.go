package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// idxBytes builds an IDX file of unsigned bytes with the given dimensions and data.
func idxBytes(dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gz(p []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(p)
	w.Close()
	return b.Bytes()
}

func TestParseIDX(t *testing.T) {
	good := idxBytes([]uint32{2, 3}, []byte{1, 2, 3, 4, 5, 6})
	cases := []struct {
		name  string
		in    []byte
		error string
	}{
		{"plain", good, ""},
		{"gzipped", gz(good), ""},
		{"empty", nil, "truncated"},
		{"bad magic", append([]byte{1, 2}, good[2:]...), "not an IDX file"},
		{"float type", append([]byte{0, 0, 0x0d}, good[3:]...), "element type 0x0d"},
		{"zero dims", []byte{0, 0, 8, 0}, "0 dimensions"},
		{"truncated header", good[:6], "truncated"},
		{"truncated data", good[:len(good)-1], "5 of 6 bytes"},
		{"trailing data", append(slices.Clone(good), 9), "past the 6 bytes"},
		{"huge claim", idxBytes([]uint32{1 << 16, 1 << 16, 1 << 16}, nil), "claim more than"},
		{"corrupt gzip", gz(good)[:12], "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idx, err := ParseIDX(bytes.NewReader(c.in))
			if c.error == "" {
				if err != nil || !slices.Equal(idx.Dims, []int{2, 3}) || !bytes.Equal(idx.Data, good[12:]) {
					t.Fatalf("ParseIDX = %+v, %v", idx, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.error) {
				t.Fatalf("err = %v, want one containing %q", err, c.error)
			}
		})
	}
}

func FuzzParseIDX(f *testing.F) {
	f.Add(idxBytes([]uint32{2, 3}, []byte{1, 2, 3, 4, 5, 6}))
	f.Add(gz(idxBytes([]uint32{1, 1, 1}, []byte{7})))
	f.Add([]byte{0, 0, 8, 4, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		idx, err := ParseIDX(bytes.NewReader(in))
		if err != nil {
			return
		}
		n := 1
		for _, d := range idx.Dims {
			n *= d
		}
		if n != len(idx.Data) {
			t.Fatalf("accepted dims %v with %d bytes", idx.Dims, len(idx.Data))
		}
	})
}

func FuzzParseCIFAR10(f *testing.F) {
	f.Add(make([]byte, cifarRecord))
	f.Add([]byte{10})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Set{C: 3, H: 32, W: 32, Classes: 10}
		if err := ParseCIFAR10(bytes.NewReader(in), s); err != nil {
			return
		}
		if err := s.validate(); err != nil {
			t.Fatalf("accepted an inconsistent set: %v", err)
		}
	})
}

// writeIDXSet writes a small MNIST-format split into dir.
func writeIDXSet(t *testing.T, dir string, split Split, n int, gzipped bool) {
	img, lbl := idxFiles(split)
	pix := make([]byte, n*4*5)
	labels := make([]byte, n)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	for i := range labels {
		labels[i] = byte(i % 10)
	}
	write := func(name string, p []byte) {
		if gzipped {
			name, p = name+".gz", gz(p)
		}
		if err := os.WriteFile(filepath.Join(dir, name), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(img, idxBytes([]uint32{uint32(n), 4, 5}, pix))
	write(lbl, idxBytes([]uint32{uint32(n)}, labels))
}

func TestLoadIDX(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := t.TempDir()
		writeIDXSet(t, dir, Test, 3, gzipped)
		s, err := LoadIDX("tiny", dir, Test, 10)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != 3 || s.H != 4 || s.W != 5 || s.Images[1] != 7.0/255 || s.Labels[2] != 2 {
			t.Fatalf("loaded %+v", s)
		}
	}
	// A label outside the classes, a missing file, and mismatched counts are errors naming the file.
	dir := t.TempDir()
	writeIDXSet(t, dir, Train, 12, false)
	if _, err := LoadIDX("tiny", dir, Train, 5); err == nil || !strings.Contains(err.Error(), "train-labels") {
		t.Errorf("labels ≥ classes: %v", err)
	}
	if _, err := LoadIDX("tiny", dir, Test, 10); err == nil || !strings.Contains(err.Error(), "t10k-images") {
		t.Errorf("missing split: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), idxBytes([]uint32{11}, make([]byte, 11)), 0o644)
	if _, err := LoadIDX("tiny", dir, Train, 10); err == nil || !strings.Contains(err.Error(), "for 12 images") {
		t.Errorf("mismatched counts: %v", err)
	}
}

// TestRealMNIST loads the real MNIST test split from the GoMNIST module that scripts/setup fetches.
func TestRealMNIST(t *testing.T) {
	t.Setenv(DataEnv, "")
	s, err := Load("mnist", "", Test)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 10000 || s.C != 1 || s.H != 28 || s.W != 28 {
		t.Fatalf("MNIST test split is %d×%d×%d×%d, want 10000×1×28×28", s.N, s.C, s.H, s.W)
	}
	// The first test digits are 7, 2, 1, 0, 4 (LeCun's file); every class appears about 1000 times.
	if !slices.Equal(s.Labels[:5], []uint8{7, 2, 1, 0, 4}) {
		t.Errorf("first labels %v, want [7 2 1 0 4]", s.Labels[:5])
	}
	var counts [10]int
	for _, l := range s.Labels {
		counts[l]++
	}
	for c, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("class %d has %d test examples", c, n)
		}
	}
	lo, hi := s.Images[0], s.Images[0]
	for _, v := range s.Images {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 1 {
		t.Errorf("pixels span [%v, %v], want [0, 1]", lo, hi)
	}
}

func TestLocateErrors(t *testing.T) {
	t.Setenv(DataEnv, "")
	if _, err := Locate("cifar10", ""); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Errorf("cifar10 without a folder: %v", err)
	}
	if _, err := Locate("mnist", "/nonexistent/folder"); err == nil {
		t.Error("a missing --data folder was accepted")
	}
	if _, err := Load("imagenet", t.TempDir(), Train); err == nil || !strings.Contains(err.Error(), "unknown dataset") {
		t.Errorf("unknown dataset: %v", err)
	}
	t.Setenv(DataEnv, t.TempDir())
	if _, err := Load("mnist", "", Train); err == nil || !strings.Contains(err.Error(), "train-images") {
		t.Errorf("SQNET_DATA pointing at an empty folder: %v", err)
	}
}

func TestOrderAndBatch(t *testing.T) {
	a, b := Order(100, 7, 3), Order(100, 7, 3)
	if !slices.Equal(a, b) {
		t.Fatal("the same (seed, epoch) gave two orders")
	}
	if slices.Equal(a, Order(100, 7, 4)) || slices.Equal(a, Order(100, 8, 3)) {
		t.Fatal("another epoch or seed gave the same order")
	}
	sorted := slices.Clone(a)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != i {
			t.Fatalf("order is not a permutation: %v", sorted)
		}
	}
	s := &Set{Name: "toy", N: 4, C: 1, H: 1, W: 2, Classes: 4, Images: []float32{0, 1, 2, 3, 4, 5, 6, 7},
		Labels: []uint8{0, 1, 2, 3}}
	imgs, lbls := make([]float32, 4), make([]uint32, 2)
	if err := s.Batch([]int{3, 1, 0, 2}, 0, 2, imgs, lbls); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(imgs, []float32{6, 7, 2, 3}) || !slices.Equal(lbls, []uint32{3, 1}) {
		t.Fatalf("batch %v %v", imgs, lbls)
	}
	if err := s.Batch([]int{3, 1, 0, 2}, 0, 3, imgs, lbls); err == nil {
		t.Fatal("a batch larger than its buffers was accepted")
	}
}
