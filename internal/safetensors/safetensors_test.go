package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func sample() []Tensor {
	return []Tensor{
		{Name: "fc1.weight", Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "conv1.bias", Shape: []int{2}, Data: []float32{-1, 0.5}},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
	}
}

func TestRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	meta := map[string]string{"arch": "small", "epoch": "3"}
	if err := Write(p, sample(), meta); err != nil {
		t.Fatal(err)
	}
	f, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta["arch"] != "small" || f.Meta["epoch"] != "3" {
		t.Errorf("metadata %v", f.Meta)
	}
	for _, want := range sample() {
		got, ok := f.Tensors[want.Name]
		if !ok || !slices.Equal(got.Shape, want.Shape) || !slices.Equal(got.Data, want.Data) {
			t.Errorf("%s: got %+v, want %+v", want.Name, got, want)
		}
	}
}

// TestInt64 round-trips an I64 scalar (batch norm's num_batches_tracked) next to F32 tensors, with its bytes where
// the format puts them.
func TestInt64(t *testing.T) {
	ts := append(sample(), Tensor{Name: "bn1.num_batches_tracked", Shape: []int{}, Ints: []int64{1 << 40}})
	b, err := Encode(ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := f.Ints["bn1.num_batches_tracked"]
	if !ok || len(got.Shape) != 0 || !slices.Equal(got.Ints, []int64{1 << 40}) || f.Dtypes[got.Name] != "I64" {
		t.Fatalf("I64 scalar read back as %+v (dtype %s)", got, f.Dtypes[got.Name])
	}
	if _, isF32 := f.Tensors[got.Name]; isF32 || len(f.Tensors) != len(sample()) {
		t.Fatalf("the I64 tensor landed among the F32 ones")
	}
	if _, err := Encode([]Tensor{{Name: "n", Shape: []int{2}, Ints: []int64{1}}}, nil); err == nil {
		t.Fatal("an I64 tensor with too few values was encoded")
	}
}

// TestHeaderIndependently parses the written bytes by hand, following the format's definition rather than this
// package's reader: what any safetensors reader would see.
func TestHeaderIndependently(t *testing.T) {
	b, err := Encode(sample(), map[string]string{"arch": "small"})
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if (8+n)%8 != 0 {
		t.Errorf("data starts at byte %d, not 8-aligned", 8+n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var w struct {
		Dtype   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(hdr["fc1.weight"], &w); err != nil {
		t.Fatal(err)
	}
	if w.Dtype != "F32" || !slices.Equal(w.Shape, []int{2, 3}) || w.Offsets[1]-w.Offsets[0] != 24 {
		t.Fatalf("fc1.weight header %+v", w)
	}
	data := b[8+n:]
	first := binary.LittleEndian.Uint32(data[w.Offsets[0]:])
	if first != 0x3f800000 { // 1.0
		t.Errorf("fc1.weight[0] bits %#x, want 1.0", first)
	}
	if string(hdr["__metadata__"]) != `{"arch":"small"}` {
		t.Errorf("metadata %s", hdr["__metadata__"])
	}
}

func TestCorrupt(t *testing.T) {
	good, _ := Encode(sample(), nil)
	n := binary.LittleEndian.Uint64(good[:8])
	bad := func(f func([]byte) []byte) []byte { return f(slices.Clone(good)) }
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"truncated data", good[:len(good)-3], "outside"},
		{"truncated header", good[:20], "does not fit"},
		{"huge header length", bad(func(b []byte) []byte { binary.LittleEndian.PutUint64(b, 1<<40); return b }), "does not fit"},
		{"not JSON", bad(func(b []byte) []byte { b[8] = 'x'; return b }), "not a JSON object"},
		{"trailing bytes", append(slices.Clone(good), 1, 2, 3, 4), "trailing"},
		{"wrong dtype", bad(func(b []byte) []byte {
			h := strings.Replace(string(b[8:8+n]), `"F32"`, `"F99"`, 1)
			return append(append(b[:8:8], h...), b[8+n:]...)
		}), "unknown dtype"},
		{"shape mismatch", bad(func(b []byte) []byte {
			h := strings.Replace(string(b[8:8+n]), `[2,3]`, `[3,3]`, 1)
			return append(append(b[:8:8], h...), b[8+n:]...)
		}), "bytes for shape"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Decode(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "cut.safetensors")
	os.WriteFile(p, good[:len(good)/2], 0o644)
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("Read of a truncated file: %v", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, ts := range [][]Tensor{
		{{Name: "a", Shape: []int{2}, Data: []float32{1}}},
		{{Name: "", Shape: []int{1}, Data: []float32{1}}},
		{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{2}}},
	} {
		if _, err := Encode(ts, nil); err == nil {
			t.Errorf("Encode(%+v) succeeded", ts)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(sample(), map[string]string{"k": "v"})
	f.Add(good)
	f.Add(good[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(mapValues(file.Tensors), file.Meta)
		if err != nil && len(file.Dtypes) == len(file.Tensors) {
			t.Fatalf("a decoded file does not re-encode: %v", err)
		}
		_ = again
	})
}

func mapValues(m map[string]Tensor) []Tensor {
	out := make([]Tensor, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	return out
}
