// Package safetensors reads and writes the safetensors format: an 8-byte little-endian header length, a JSON
// header mapping each tensor name to its dtype, shape and byte range ("data_offsets", relative to the end of the
// header), an optional "__metadata__" map of strings, then the raw little-endian data. sqnet stores F32 tensors
// and I64 ones (batch norm's num_batches_tracked) and reads the header of any file.
//
// Files are written atomically (temp file, fsync, rename). Reading validates everything a corrupt or hostile file
// could get wrong — header size, JSON, dtypes, shapes, overlapping or out-of-range offsets — and never panics
// (FuzzRead).
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/sqnet/sqnet/internal/atomicfile"
)

// maxHeader bounds the JSON header (the reference implementation uses 100 MB).
const maxHeader = 100 << 20

// Tensor is one named F32 tensor, or I64 when Ints is set (then Data is unused).
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
	Ints  []int64
}

// entry is one tensor's header record.
type entry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// dtypeSize gives the element size of every safetensors dtype, so headers of other files can be validated.
var dtypeSize = map[string]int64{"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
	"F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}

// Encode serialises tensors (sorted by name, as the reference writer does) and metadata.
func Encode(tensors []Tensor, meta map[string]string) ([]byte, error) {
	sorted := append([]Tensor(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for i, t := range sorted {
		if t.Name == "" || t.Name == "__metadata__" {
			return nil, fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return nil, fmt.Errorf("safetensors: tensor %q twice", t.Name)
		}
		n := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors: %s has negative dimension in %v", t.Name, t.Shape)
			}
			n *= int64(d)
		}
		dtype, size, have := "F32", int64(4), len(t.Data)
		if t.Ints != nil {
			dtype, size, have = "I64", 8, len(t.Ints)
		}
		if n != int64(have) {
			return nil, fmt.Errorf("safetensors: %s has shape %v but %d values", t.Name, t.Shape, have)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = entry{Dtype: dtype, Shape: shape, DataOffsets: [2]int64{off, off + size*n}}
		off += size * n
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	// Pad the header with spaces to a multiple of 8 so the data that follows is aligned, as the reference does.
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	out := make([]byte, 8, 8+len(hj)+int(off))
	binary.LittleEndian.PutUint64(out, uint64(len(hj)))
	out = append(out, hj...)
	for _, t := range sorted {
		if t.Ints != nil {
			for _, v := range t.Ints {
				out = binary.LittleEndian.AppendUint64(out, uint64(v))
			}
			continue
		}
		for _, v := range t.Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}

// Write encodes tensors and metadata to path atomically.
func Write(path string, tensors []Tensor, meta map[string]string) error {
	b, err := Encode(tensors, meta)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, b, 0o644)
}

// File is a decoded safetensors file.
type File struct {
	Meta    map[string]string
	Tensors map[string]Tensor // F32 tensors
	Ints    map[string]Tensor // I64 tensors (Ints set)
	// Dtypes records every tensor's dtype, including ones this package does not decode.
	Dtypes map[string]string
}

// Decode parses a whole safetensors file from memory.
func Decode(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, errors.New("file is shorter than the 8-byte header length (truncated)")
	}
	hlen := binary.LittleEndian.Uint64(b)
	if hlen > maxHeader || hlen > uint64(len(b)-8) {
		return nil, fmt.Errorf("header length %d does not fit a %d-byte file (truncated or not safetensors)", hlen,
			len(b))
	}
	hdr := b[8 : 8+hlen]
	data := b[8+hlen:]
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("header is not a JSON object: %v", err)
	}
	f := &File{Meta: map[string]string{}, Tensors: map[string]Tensor{}, Ints: map[string]Tensor{},
		Dtypes: map[string]string{}}
	type span struct {
		lo, hi int64
		name   string
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Meta); err != nil {
				return nil, fmt.Errorf("__metadata__ is not a map of strings: %v", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		size, ok := dtypeSize[e.Dtype]
		if !ok {
			return nil, fmt.Errorf("tensor %q: unknown dtype %q", name, e.Dtype)
		}
		n := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && n > math.MaxInt64/int64(d)/size) {
				return nil, fmt.Errorf("tensor %q: bad shape %v", name, e.Shape)
			}
			n *= int64(d)
		}
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi < lo || hi > int64(len(data)) {
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d data bytes (truncated?)", name,
				lo, hi, len(data))
		}
		if hi-lo != n*size {
			return nil, fmt.Errorf("tensor %q: %d bytes for shape %v of %s", name, hi-lo, e.Shape, e.Dtype)
		}
		spans = append(spans, span{lo, hi, name})
		f.Dtypes[name] = e.Dtype
		if e.Dtype == "I64" {
			ints := make([]int64, n)
			for i := range ints {
				ints[i] = int64(binary.LittleEndian.Uint64(data[lo+8*int64(i):]))
			}
			f.Ints[name] = Tensor{Name: name, Shape: e.Shape, Ints: ints}
			continue
		}
		if e.Dtype != "F32" {
			continue
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[lo+4*int64(i):]))
		}
		f.Tensors[name] = Tensor{Name: name, Shape: e.Shape, Data: vals}
	}
	// The format requires the tensors to tile the data section exactly: no overlap, no gaps.
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	var end int64
	for _, s := range spans {
		if s.lo != end {
			return nil, fmt.Errorf("tensor %q starts at byte %d, expected %d (overlapping or gapped offsets)", s.name,
				s.lo, end)
		}
		end = s.hi
	}
	if end != int64(len(data)) {
		return nil, fmt.Errorf("%d data bytes, tensors cover %d (trailing bytes)", len(data), end)
	}
	return f, nil
}

// Read reads and decodes a safetensors file, naming it in any error.
func Read(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(fh)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	f, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid safetensors checkpoint: %w", path, err)
	}
	return f, nil
}
