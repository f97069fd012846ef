package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// cifarRecord is the size of one CIFAR-10 binary record: a label byte, then 3×32×32 pixel bytes (R, G, B planes).
const cifarRecord = 1 + 3*32*32

// LoadCIFAR10 loads CIFAR-10's binary batches from dir: data_batch_1.bin … data_batch_5.bin for Train,
// test_batch.bin for Test.
func LoadCIFAR10(dir string, split Split) (*Set, error) {
	files := []string{"test_batch.bin"}
	if split == Train {
		files = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
			"data_batch_5.bin"}
	}
	s := &Set{Name: "cifar10/" + string(split), C: 3, H: 32, W: 32, Classes: 10}
	for _, name := range files {
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("CIFAR-10: %w (pass --data DIR pointing at the binary batches)", err)
		}
		err = ParseCIFAR10(f, s)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseCIFAR10 appends the records of one binary batch to s. The batch must be a whole number of records with
// labels below 10.
func ParseCIFAR10(r io.Reader, s *Set) error {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<28))
	if err != nil {
		return err
	}
	if len(raw) == 0 || len(raw)%cifarRecord != 0 {
		return fmt.Errorf("%d bytes is not a whole number of %d-byte CIFAR-10 records (truncated or corrupt)",
			len(raw), cifarRecord)
	}
	for off := 0; off < len(raw); off += cifarRecord {
		if raw[off] > 9 {
			return fmt.Errorf("record %d has label %d, want 0..9", off/cifarRecord, raw[off])
		}
		s.Labels = append(s.Labels, raw[off])
		for _, b := range raw[off+1 : off+cifarRecord] {
			s.Images = append(s.Images, float32(b)/255)
		}
		s.N++
	}
	return nil
}
