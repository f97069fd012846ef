// Package data loads image-classification datasets (MNIST and Fashion-MNIST in IDX format, gzipped or not;
// CIFAR-10 binary batches), locates them on disk, and batches them with seeded shuffling.
//
// Every loader validates what it reads — magic numbers, dimensions, lengths, label ranges — and returns an error that
// names the file and says how to fix it; corrupt input never panics (the parsers have fuzz targets).
package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxIDXBytes bounds what an IDX header may claim, so a corrupt header cannot make the parser allocate gigabytes.
const maxIDXBytes = 1 << 30

// IDX is a parsed IDX file of unsigned bytes: its dimensions and its data, row-major.
type IDX struct {
	Dims []int
	Data []byte
}

// ParseIDX reads an IDX file of unsigned bytes (type code 0x08), gzip-compressed or not (detected by the gzip
// magic). It checks the magic number, the dimension count, and that the data is exactly as long as the
// dimensions say.
func ParseIDX(r io.Reader) (*IDX, error) {
	br := bufio.NewReader(r)
	if head, err := br.Peek(2); err == nil && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, fmt.Errorf("IDX header: %w", shortRead(err))
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("not an IDX file (magic %x)", magic)
	}
	if magic[2] != 0x08 {
		return nil, fmt.Errorf("IDX element type 0x%02x, want 0x08 (unsigned bytes)", magic[2])
	}
	nd := int(magic[3])
	if nd < 1 || nd > 4 {
		return nil, fmt.Errorf("IDX with %d dimensions, want 1 to 4", nd)
	}
	dims := make([]int, nd)
	total := int64(1)
	for i := range dims {
		var d uint32
		if err := binary.Read(br, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("IDX dimension %d: %w", i, shortRead(err))
		}
		dims[i] = int(d)
		total *= int64(d)
		if total > maxIDXBytes {
			return nil, fmt.Errorf("IDX dimensions %v claim more than %d bytes", dims[:i+1], maxIDXBytes)
		}
	}
	// Read at most one byte more than claimed, to detect trailing garbage without trusting the header's size.
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(br, total+1))
	if err != nil {
		return nil, fmt.Errorf("IDX data: %w", err)
	}
	switch {
	case n < total:
		return nil, fmt.Errorf("IDX data truncated: %d of %d bytes for dimensions %v", n, total, dims)
	case n > total:
		return nil, fmt.Errorf("IDX has data past the %d bytes its dimensions %v describe", total, dims)
	}
	return &IDX{Dims: dims, Data: buf.Bytes()}, nil
}

func shortRead(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("file ends early (truncated)")
	}
	return err
}
