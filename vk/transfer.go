package vk

import (
	"fmt"
	"unsafe"
)

// stagingSize is the size of the bounce buffer used where the host cannot map device memory; larger transfers
// go through it in pieces.
const stagingSize = 16 << 20

// Write copies data into the buffer at byte offset off. On unified-memory devices (integrated GPUs, lavapipe,
// SwiftShader) it writes the mapped memory directly; elsewhere it bounces through a host-visible staging buffer and
// a copy command. No submitted work may be using the buffer.
func (b *Buffer) Write(off uint64, data []byte) error {
	return b.transfer(off, data, true)
}

// Read copies bytes from the buffer at byte offset off into dst.
func (b *Buffer) Read(off uint64, dst []byte) error {
	return b.transfer(off, dst, false)
}

func (b *Buffer) transfer(off uint64, p []byte, write bool) error {
	verb := "read"
	if write {
		verb = "write"
	}
	if b == nil || b.freed {
		return fmt.Errorf("%s: buffer is nil or freed", verb)
	}
	if off > b.size || uint64(len(p)) > b.size-off {
		return fmt.Errorf("%s %d bytes at offset %d: outside a %d-byte buffer", verb, len(p), off, b.size)
	}
	if len(p) == 0 {
		return nil
	}
	d := b.dev
	if b.blk.mapped != nil {
		mem := unsafe.Slice((*byte)(unsafe.Add(b.blk.mapped, b.off+off)), len(p))
		if write {
			copy(mem, p)
		} else {
			copy(p, mem)
		}
		return nil
	}
	d.xferMu.Lock()
	defer d.xferMu.Unlock()
	st, rec, err := d.stagingRecorder()
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	stage := unsafe.Slice((*byte)(unsafe.Add(st.blk.mapped, st.off)), st.size)
	for done := uint64(0); done < uint64(len(p)); {
		n := min(uint64(len(p))-done, st.size)
		if write {
			copy(stage, p[done:done+n])
		}
		if err := rec.Reset(); err != nil {
			return err
		}
		src, dst := st.Range(0, n), b.Range(off+done, n)
		if !write {
			src, dst = b.Range(off+done, n), st.Range(0, n)
		}
		if err := rec.Copy(dst, src); err != nil {
			return err
		}
		if err := rec.Run(); err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		if !write {
			copy(p[done:done+n], stage[:n])
		}
		done += n
	}
	return nil
}

// stagingRecorder returns the device's staging buffer and the recorder its copies run on, creating them on first
// use. The caller holds xferMu.
func (d *Device) stagingRecorder() (*Buffer, *Recorder, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, nil, ErrClosed
	}
	if d.staging == nil {
		st, err := d.allocate(kindStaging, stagingSize)
		if err != nil {
			d.mu.Unlock()
			return nil, nil, err
		}
		d.staging = st
	}
	st := d.staging
	d.mu.Unlock()
	if d.xfer == nil {
		rec, err := d.NewRecorder()
		if err != nil {
			return nil, nil, err
		}
		d.xfer = rec
	}
	return st, d.xfer, nil
}

// Upload writes a slice of 32-bit values (float32, uint32 or int32) to the start of the buffer.
func Upload[T ~float32 | ~uint32 | ~int32](b *Buffer, src []T) error {
	if len(src) == 0 {
		return nil
	}
	return b.Write(0, unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), 4*len(src)))
}

// Download reads len(dst) 32-bit values from the start of the buffer.
func Download[T ~float32 | ~uint32 | ~int32](b *Buffer, dst []T) error {
	if len(dst) == 0 {
		return nil
	}
	return b.Read(0, unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)))
}
