package kernels

import "encoding/binary"

// binarySize is the encoded size of a fixed-size push-constant value.
func binarySize(v any) int {
	if b, ok := v.([]byte); ok {
		return len(b)
	}
	return binary.Size(v)
}
