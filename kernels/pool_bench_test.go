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

// BenchmarkConvPool compares the first layers' conv → ReLU → pool as one pass (Conv2DReLUMaxPool) with the two
// passes it replaces (Conv2D through conv_direct, then ReLUMaxPool2x2), and its backward as far as the
// convolution's output gradient (Conv2DReLUMaxPoolBackward from the codes against ReLUMaxPool2x2Backward reading x),
// on small's and madry's first (conv_direct) and second (conv.comp) convolutions at batch 50, in ms a pass. Both
// record poolReps passes into one command buffer; on devices without the fused pass the benchmark is skipped.
func BenchmarkConvPool(b *testing.B) {
	for _, c := range mnistConvs {
		for _, pass := range []string{"fused", "two-pass", "unpool", "relu+maxpool-backward"} {
			b.Run(fmt.Sprintf("%s/b%d/%s", c.name, c.s.B, pass), func(b *testing.B) {
				l := openBenchLib(b)
				s := c.s
				if !l.ConvPoolOK(s) {
					b.Skip("no fused conv+ReLU+pool pass on this device")
				}
				out := s.OutLen()
				x, w, bias := benchBuf(b, l, s.InLen()), benchBuf(b, l, s.WLen()), benchBuf(b, l, s.Cout)
				conv, y, dx := benchBuf(b, l, out), benchBuf(b, l, out/4), benchBuf(b, l, out)
				codes := benchBuf(b, l, l.PoolCodesLen(s))
				o := ConvOpts{Bias: bias.All(), Scratch: benchBuf(b, l, l.ConvFwdScratch(s)).All()}
				benchReplay(b, l, func(r *vk.Recorder) error {
					for range poolReps {
						var err error
						switch pass {
						case "fused":
							err = l.Conv2DReLUMaxPool(r, x.All(), w.All(), y.All(), codes.All(), s, o)
						case "two-pass":
							if err = l.Conv2D(r, x.All(), w.All(), conv.All(), s, o); err == nil {
								err = l.ReLUMaxPool2x2(r, conv.All(), y.All(), s.B, s.Cout, s.OH(), s.OW())
							}
						case "unpool":
							err = l.Conv2DReLUMaxPoolBackward(r, codes.All(), y.All(), dx.All(), s)
						default:
							err = l.ReLUMaxPool2x2Backward(r, conv.All(), y.All(), dx.All(), s.B, s.Cout, s.OH(), s.OW())
						}
						if err != nil {
							return err
						}
					}
					return nil
				})
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N*poolReps)*1e3, "ms/pass")
			})
		}
	}
}

// mnistConvs are the MNIST models' convolutions at batch 50: small's (3×3, padding 1: 1→16 on 28×28, 16→32 on
// 14×14) and madry's (5×5, padding 2: 1→32 on 28×28, 32→64 on 14×14), first and second layers.
var mnistConvs = []struct {
	name string
	s    ConvShape
}{
	{"small1", ConvShape{B: 50, Cin: 1, H: 28, W: 28, Cout: 16, KH: 3, KW: 3, PadH: 1, PadW: 1}},
	{"madry1", ConvShape{B: 50, Cin: 1, H: 28, W: 28, Cout: 32, KH: 5, KW: 5, PadH: 2, PadW: 2}},
	{"small2", ConvShape{B: 50, Cin: 16, H: 14, W: 14, Cout: 32, KH: 3, KW: 3, PadH: 1, PadW: 1}},
	{"madry2", ConvShape{B: 50, Cin: 32, H: 14, W: 14, Cout: 64, KH: 5, KW: 5, PadH: 2, PadW: 2}},
}
