package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// BatchNormShape is a BatchNorm2d over x [N, C, P] (P = H·W): Eps is added to the variance, Momentum moves the
// running estimates in training mode (PyTorch's defaults: 1e-5 and 0.1).
type BatchNormShape struct {
	N, C, P  int
	Eps      float32
	Momentum float32
}

// BatchNormStatsWidth is the floats per channel of the stats tensor every batch-norm kernel shares: mean, invstd,
// scale = γ·invstd, shift = β − mean·scale.
const BatchNormStatsWidth = 4

// bnPush mirrors batchnorm.comp's push constants.
type bnPush struct {
	N, C, P       uint32
	Eps, Momentum float32
	Flags         uint32
}

func (s BatchNormShape) push(flags uint32) bnPush {
	return bnPush{uint32(s.N), uint32(s.C), uint32(s.P), s.Eps, s.Momentum, flags}
}

// check validates the shape; training mode needs two values per channel for the unbiased running variance.
func (s BatchNormShape) check(op string, training bool) error {
	if err := positive(op, Dim{"N", s.N}, Dim{"C", s.C}, Dim{"P", s.P}); err != nil {
		return err
	}
	if !(s.Eps > 0) || math.IsInf(float64(s.Eps), 0) {
		return fmt.Errorf("%s: eps = %v, want a finite eps > 0", op, s.Eps)
	}
	if !(s.Momentum >= 0 && s.Momentum <= 1) {
		return fmt.Errorf("%s: momentum = %v, want 0 ≤ momentum ≤ 1", op, s.Momentum)
	}
	if training && s.N*s.P < 2 {
		return fmt.Errorf("%s: training mode needs more than one value per channel, got N·H·W = %d", op, s.N*s.P)
	}
	if s.N*s.C*s.P > math.MaxInt32 {
		return fmt.Errorf("%s: %d elements; at most %d", op, s.N*s.C*s.P, math.MaxInt32)
	}
	return nil
}

// BatchNormStats records training mode's per-channel statistics of x into stats [C, BatchNormStatsWidth] from the
// batch (biased variance, two passes in a fixed order) and, with update, moves the running mean and variance
// (unbiased) by the momentum, as PyTorch's BatchNorm2d does in train(). It matches BatchNormTrainRef.
func (l *Lib) BatchNormStats(r *vk.Recorder, x, gamma, beta, runMean, runVar, stats vk.Range, s BatchNormShape,
	update bool) error {
	const op = "batch norm statistics"
	if err := s.check(op, true); err != nil {
		return err
	}
	if err := needEach(op, sized{"x", x, s.N * s.C * s.P}, sized{"gamma", gamma, s.C}, sized{"beta", beta, s.C},
		sized{"running mean", runMean, s.C}, sized{"running var", runVar, s.C},
		sized{"stats", stats, s.C * BatchNormStatsWidth}); err != nil {
		return err
	}
	if err := disjoint(op, named{"x", x}, named{"running mean", runMean}, named{"running var", runVar},
		named{"stats", stats}); err != nil {
		return err
	}
	flags := uint32(0)
	if update {
		flags = 1
	}
	return l.bnPerChannel(r, "bn_stats", s, flags, []vk.Access{vk.Read, vk.Read, vk.Read, vk.ReadWrite, vk.ReadWrite,
		vk.Write}, x, gamma, beta, runMean, runVar, stats)
}

// BatchNormEvalStats records eval mode's per-channel statistics from the running estimates into stats (mean =
// running mean, invstd = 1/√(running var + eps)). It matches BatchNormEvalRef.
func (l *Lib) BatchNormEvalStats(r *vk.Recorder, gamma, beta, runMean, runVar, stats vk.Range, s BatchNormShape) error {
	const op = "batch norm eval statistics"
	if err := s.check(op, false); err != nil {
		return err
	}
	if err := needEach(op, sized{"gamma", gamma, s.C}, sized{"beta", beta, s.C}, sized{"running mean", runMean, s.C},
		sized{"running var", runVar, s.C}, sized{"stats", stats, s.C * BatchNormStatsWidth}); err != nil {
		return err
	}
	if err := disjoint(op, named{"stats", stats}, named{"gamma", gamma}, named{"beta", beta},
		named{"running mean", runMean}, named{"running var", runVar}); err != nil {
		return err
	}
	return l.dispatch1D(r, "bn_eval_stats", s.C, s.push(0), []vk.Access{vk.Read, vk.Read, vk.Read, vk.Read, vk.Write},
		gamma, beta, runMean, runVar, stats)
}

// BatchNormApply records y = x·scale[c] + shift[c] with the stats of either mode. y may be x.
func (l *Lib) BatchNormApply(r *vk.Recorder, x, stats, y vk.Range, s BatchNormShape) error {
	const op = "batch norm"
	if err := s.check(op, false); err != nil {
		return err
	}
	n := s.N * s.C * s.P
	if err := needEach(op, sized{"x", x, n}, sized{"stats", stats, s.C * BatchNormStatsWidth}, sized{"y", y, n}); err != nil {
		return err
	}
	if err := disjoint(op, named{"stats", stats}, named{"y", y}); err != nil {
		return err
	}
	return l.dispatch1D(r, "bn_apply", n, s.push(0), []vk.Access{vk.Read, vk.Read, vk.Write}, x, stats, y)
}

// BatchNormBackward records the gradients of a batch norm given dy: dgamma = Σ dy·x̂ and dbeta = Σ dy per channel,
// and dx — in training mode through the batch statistics, dx = γ·invstd·(dy − dbeta/n − x̂·dgamma/n), in eval mode
// dx = γ·invstd·dy. stats are the forward's. It matches BatchNormBackwardRef.
func (l *Lib) BatchNormBackward(r *vk.Recorder, x, dy, stats, dgamma, dbeta, dx vk.Range, s BatchNormShape,
	training bool) error {
	const op = "batch norm backward"
	if err := s.check(op, training); err != nil {
		return err
	}
	n := s.N * s.C * s.P
	if err := needEach(op, sized{"x", x, n}, sized{"dy", dy, n}, sized{"stats", stats, s.C * BatchNormStatsWidth},
		sized{"dgamma", dgamma, s.C}, sized{"dbeta", dbeta, s.C}, sized{"dx", dx, n}); err != nil {
		return err
	}
	// What the kernels write must not overlap anything; the inputs may share memory (dy may be x).
	for _, w := range []named{{"dgamma", dgamma}, {"dbeta", dbeta}, {"dx", dx}} {
		for _, o := range []named{{"x", x}, {"dy", dy}, {"stats", stats}, {"dgamma", dgamma}, {"dbeta", dbeta}, {"dx", dx}} {
			if w.name != o.name {
				if err := disjoint(op, w, o); err != nil {
					return err
				}
			}
		}
	}
	if err := l.bnPerChannel(r, "bn_grad_params", s, 0, []vk.Access{vk.Read, vk.Read, vk.Read, vk.Write, vk.Write},
		x, dy, stats, dgamma, dbeta); err != nil {
		return err
	}
	flags := uint32(0)
	if !training {
		flags = 2
	}
	return l.dispatch1D(r, "bn_grad_x", n, s.push(flags), []vk.Access{vk.Read, vk.Read, vk.Read, vk.Read, vk.Read,
		vk.Write}, x, dy, stats, dgamma, dbeta, dx)
}

// bnPerChannel dispatches a workgroup per channel of a tree-reducing batch-norm variant.
func (l *Lib) bnPerChannel(r *vk.Recorder, shader string, s BatchNormShape, flags uint32, access []vk.Access,
	bufs ...vk.Range) error {
	p, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: access, PushSize: pushSize(bnPush{}),
		Local: [3]uint32{l.redWG(s.N * s.P), 1, 1}})
	if err != nil {
		return err
	}
	return r.Dispatch(p, l.rowGroups(s.C), s.push(flags), bufs...)
}

// BatchNormTrainRef is the CPU reference of training mode (float64 inside): y, the stats [C, 4] and the running
// estimates after the momentum update.
func BatchNormTrainRef(x, gamma, beta, runMean, runVar []float32, s BatchNormShape) (y, stats, rm, rv []float32) {
	stats = make([]float32, s.C*BatchNormStatsWidth)
	rm, rv = append([]float32(nil), runMean...), append([]float32(nil), runVar...)
	n := float64(s.N * s.P)
	for c := 0; c < s.C; c++ {
		var sum, m2 float64
		each(s, c, func(i int) { sum += float64(x[i]) })
		mean := sum / n
		each(s, c, func(i int) { d := float64(x[i]) - mean; m2 += d * d })
		invstd := 1 / math.Sqrt(m2/n+float64(s.Eps))
		setStats(stats, c, mean, invstd, float64(gamma[c]), float64(beta[c]))
		m := float64(s.Momentum)
		rm[c] = float32((1-m)*float64(runMean[c]) + m*mean)
		rv[c] = float32((1-m)*float64(runVar[c]) + m*m2/(n-1))
	}
	return BatchNormApplyRef(x, stats, s), stats, rm, rv
}

// BatchNormEvalRef is the CPU reference of eval mode: y and the stats.
func BatchNormEvalRef(x, gamma, beta, runMean, runVar []float32, s BatchNormShape) (y, stats []float32) {
	stats = make([]float32, s.C*BatchNormStatsWidth)
	for c := 0; c < s.C; c++ {
		setStats(stats, c, float64(runMean[c]), 1/math.Sqrt(float64(runVar[c])+float64(s.Eps)), float64(gamma[c]),
			float64(beta[c]))
	}
	return BatchNormApplyRef(x, stats, s), stats
}

// BatchNormApplyRef is the CPU reference of BatchNormApply.
func BatchNormApplyRef(x, stats []float32, s BatchNormShape) []float32 {
	y := make([]float32, len(x))
	for c := 0; c < s.C; c++ {
		sc, sh := float64(stats[c*BatchNormStatsWidth+2]), float64(stats[c*BatchNormStatsWidth+3])
		each(s, c, func(i int) { y[i] = float32(float64(x[i])*sc + sh) })
	}
	return y
}

// BatchNormBackwardRef is the CPU reference of BatchNormBackward (float64 inside).
func BatchNormBackwardRef(x, dy, stats []float32, s BatchNormShape, training bool) (dgamma, dbeta, dx []float32) {
	dgamma, dbeta, dx = make([]float32, s.C), make([]float32, s.C), make([]float32, len(x))
	n := float64(s.N * s.P)
	for c := 0; c < s.C; c++ {
		mean, invstd := float64(stats[c*BatchNormStatsWidth]), float64(stats[c*BatchNormStatsWidth+1])
		scale := float64(stats[c*BatchNormStatsWidth+2])
		var sdy, sdyx float64
		each(s, c, func(i int) {
			sdy += float64(dy[i])
			sdyx += float64(dy[i]) * (float64(x[i]) - mean) * invstd
		})
		dgamma[c], dbeta[c] = float32(sdyx), float32(sdy)
		each(s, c, func(i int) {
			if !training {
				dx[i] = float32(scale * float64(dy[i]))
				return
			}
			xhat := (float64(x[i]) - mean) * invstd
			dx[i] = float32(scale * (float64(dy[i]) - sdy/n - xhat*sdyx/n))
		})
	}
	return dgamma, dbeta, dx
}

// each calls f with the index of every value of channel c.
func each(s BatchNormShape, c int, f func(i int)) {
	for b := 0; b < s.N; b++ {
		for p := 0; p < s.P; p++ {
			f((b*s.C+c)*s.P + p)
		}
	}
}

// setStats writes channel c's (mean, invstd, scale, shift).
func setStats(stats []float32, c int, mean, invstd, gamma, beta float64) {
	scale := gamma * invstd
	stats[c*BatchNormStatsWidth] = float32(mean)
	stats[c*BatchNormStatsWidth+1] = float32(invstd)
	stats[c*BatchNormStatsWidth+2] = float32(scale)
	stats[c*BatchNormStatsWidth+3] = float32(beta - mean*scale)
}
