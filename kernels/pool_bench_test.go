package kernels

import (
	"fmt"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// poolReps is how many dispatches BenchmarkMaxPool records into one command buffer: one pooling pass is 0.1–1 ms,
// of the order of a submit and wait, which would otherwise dominate the figure.
const poolReps = 20

// BenchmarkMaxPool measures fused ReLU + 2×2 max pooling, forward and backward, on the pooling layers of the small
// (16×28×28, 32×14×14) and madry (32×28×28, 64×14×14) MNIST models at batch 50, in GB/s of the tensors each pass
// reads and writes once (forward: x and y; backward: x, dy and dx).
func BenchmarkMaxPool(b *testing.B) {
	for _, s := range []struct {
		name    string
		c, h, w int
	}{{"small1", 16, 28, 28}, {"small2", 32, 14, 14}, {"madry1", 32, 28, 28}, {"madry2", 64, 14, 14}} {
		const batch = 50
		in, out := batch*s.c*s.h*s.w, batch*s.c*(s.h/2)*(s.w/2)
		for _, pass := range []string{"forward", "backward"} {
			b.Run(fmt.Sprintf("%s/b%d/%s", s.name, batch, pass), func(b *testing.B) {
				l := openBenchLib(b)
				x, y, dx := benchBuf(b, l, in), benchBuf(b, l, out), benchBuf(b, l, in)
				benchReplay(b, l, func(r *vk.Recorder) error {
					for range poolReps {
						var err error
						if pass == "forward" {
							err = l.ReLUMaxPool2x2(r, x.All(), y.All(), batch, s.c, s.h, s.w)
						} else {
							err = l.ReLUMaxPool2x2Backward(r, x.All(), y.All(), dx.All(), batch, s.c, s.h, s.w)
						}
						if err != nil {
							return err
						}
					}
					return nil
				})
				bytes := 4 * float64(in+out)
				if pass == "backward" {
					bytes = 4 * float64(2*in+out)
				}
				b.ReportMetric(bytes*poolReps*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N*poolReps)*1e3, "ms/pass")
			})
		}
	}
}
