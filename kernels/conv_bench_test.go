package kernels

import (
	"fmt"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// BenchmarkConv measures the three passes of the madry MNIST convolutions (5×5, padding 2: 1→32 on 28×28 and
// 32→64 on 14×14, conv1 and conv2) and of the small model's (3×3, padding 1: 1→16 on 28×28 and 16→32 on 14×14,
// small1 and small2) at batch 50 and 128, each with the scratch the device's path takes (as the graph gives it).
func BenchmarkConv(b *testing.B) {
	for _, batch := range []int{50, 128} {
		for _, c := range []struct {
			name string
			s    ConvShape
		}{
			{"conv1", ConvShape{B: batch, Cin: 1, H: 28, W: 28, Cout: 32, KH: 5, KW: 5, PadH: 2, PadW: 2}},
			{"conv2", ConvShape{B: batch, Cin: 32, H: 14, W: 14, Cout: 64, KH: 5, KW: 5, PadH: 2, PadW: 2}},
			{"small1", ConvShape{B: batch, Cin: 1, H: 28, W: 28, Cout: 16, KH: 3, KW: 3, PadH: 1, PadW: 1}},
			{"small2", ConvShape{B: batch, Cin: 16, H: 14, W: 14, Cout: 32, KH: 3, KW: 3, PadH: 1, PadW: 1}},
		} {
			s := c.s
			for _, pass := range []string{"forward", "backward-data", "backward-filter"} {
				b.Run(fmt.Sprintf("%s/b%d/%s", c.name, batch, pass), func(b *testing.B) {
					l := openBenchLib(b)
					x, w, y := benchBuf(b, l, s.InLen()), benchBuf(b, l, s.WLen()), benchBuf(b, l, s.OutLen())
					n := map[string]int{"forward": l.ConvFwdScratch(s), "backward-data": l.ConvDataScratch(s),
						"backward-filter": l.ConvFilterScratch(s)}[pass]
					var o ConvOpts
					if n > 0 {
						o.Scratch = benchBuf(b, l, n).All()
					}
					benchRecorded(b, l, s.Flops(), func(r *vk.Recorder) error {
						switch pass {
						case "forward":
							return l.Conv2D(r, x.All(), w.All(), y.All(), s, o)
						case "backward-data":
							return l.Conv2DBackwardData(r, y.All(), w.All(), x.All(), s, o)
						}
						return l.Conv2DBackwardFilter(r, x.All(), y.All(), w.All(), s, o)
					})
				})
			}
		}
	}
}
